"""Group lasso (l1/l2) over features: a feature is used by all tasks or by none.

The literature's task matrix is ``d x T`` (features x tasks) and the l1/l2 norm sums the l2
norms of its ROWS, one row = one feature across tasks. Our (K, P) matrices (see
:func:`~textmtl.regularizers.base.aligned_task_parameters`) are its transpose: a feature across
tasks is a COLUMN ``A[:, f]``, so

    Omega(A) = sum_f ||A[:, f]||_2,

and the penalty zeroes whole columns: an input feature (an entry of a flattened weight matrix)
that no task uses.

Proximal operator (group soft-thresholding, column by column):
``prox_tau(v) = v * max(0, 1 - tau / ||v||_2)``; a column shorter than tau becomes exactly 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Mode, Regularizer, check_mode

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod


@REGULARIZERS.register("group_lasso")
class GroupLasso(Regularizer):
    """``weight * sum_A sum_f ||A[:, f]||_2`` over the aligned (K, P) matrices A.

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
        mode: ``proximal`` (group soft-thresholding after each optimiser step; the penalty is
            only logged) or ``subgradient`` (the penalty joins the loss).
    Returns:
        ``penalty(model)``: a scalar tensor; ``proximal_operator(matrix, tau)``: the (K, P)
        matrix with each column group-soft-thresholded.
    References:
        Yuan & Lin (2006), Model selection and estimation in regression with grouped
        variables; Argyriou, Evgeniou & Pontil (2007), Multi-task feature learning (NIPS);
        Ruder (2017), An Overview of Multi-Task Learning, "Block-sparse regularization".
    """

    proximal = True

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [],
                 mode: Mode = "proximal") -> None:
        super().__init__(weight=weight, parameters=parameters)
        self.mode = check_mode(mode, "GroupLasso")

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for matrix in self.matrices(model).values():  # (K, P)
            total = total + torch.linalg.vector_norm(matrix, dim=0).sum()  # (P,) column norms
        return self.weight * total

    def proximal_operator(self, matrix: torch.Tensor, threshold: float) -> torch.Tensor:
        norms = torch.linalg.vector_norm(matrix, dim=0, keepdim=True)  # (1, P)
        # clamp: a zero column stays zero instead of dividing 0 by 0
        scale = (1 - threshold / norms.clamp_min(torch.finfo(matrix.dtype).tiny)).clamp_min(0)
        return matrix * scale  # (K, P)
