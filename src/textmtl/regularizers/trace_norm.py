"""Trace (nuclear) norm of the task parameter matrix: the task copies span few directions.

``Omega(A) = ||A||_* = sum_i sigma_i(A)``, the sum of singular values. It is the same for A and
its transpose, so the literature's ``d x T`` matrix and our (K, P) matrices (rows = tasks, see
:func:`~textmtl.regularizers.base.aligned_task_parameters`) give one value; a low-rank A means
the K task vectors live in a low-dimensional subspace (Argyriou et al. 2007's convex form of
multi-task feature learning).

Proximal operator (singular-value thresholding): ``U max(Sigma - tau, 0) V^T``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Mode, Regularizer, check_mode

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod


@REGULARIZERS.register("trace_norm")
class TraceNorm(Regularizer):
    """``weight * sum_A ||A||_*`` over the aligned (K, P) matrices A.

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
        mode: ``proximal`` (singular-value thresholding after each optimiser step; the
            penalty is only logged) or ``subgradient`` (the penalty joins the loss; its
            gradient ``U V^T`` is undefined at repeated singular values).
    Returns:
        ``penalty(model)``: a scalar tensor; ``proximal_operator(matrix, tau)``: the (K, P)
        matrix with its singular values soft-thresholded by tau.
    References:
        Argyriou, Evgeniou & Pontil (2007), Multi-task feature learning (NIPS);
        Cai, Candès & Shen (2010), A singular value thresholding algorithm for matrix
        completion; Yang & Hospedales (2017), Trace norm regularised deep multi-task learning;
        Ruder (2017), An Overview of Multi-Task Learning, "Block-sparse regularization".
    """

    proximal = True

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [],
                 mode: Mode = "proximal") -> None:
        super().__init__(weight=weight, parameters=parameters)
        self.mode = check_mode(mode, "TraceNorm")

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for matrix in self.matrices(model).values():  # (K, P)
            total = total + torch.linalg.svdvals(matrix).sum()  # min(K, P) singular values
        return self.weight * total

    def proximal_operator(self, matrix: torch.Tensor, threshold: float) -> torch.Tensor:
        u, sigma, vh = torch.linalg.svd(matrix, full_matrices=False)  # (K, R), (R,), (R, P)
        return (u * (sigma - threshold).clamp_min(0)) @ vh  # (K, P)
