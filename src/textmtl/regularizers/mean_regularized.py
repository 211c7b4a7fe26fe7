"""Mean-regularised multi-task learning: small task copies, clustered around their mean.

Evgeniou & Pontil (2004) write task t's parameters as ``w_t = w_0 + v_t`` and penalise
``||w_0||^2`` and the deviations ``||v_t||^2``; eliminating ``w_0`` gives (Ruder 2017, "Learning
task relationships")

    Omega = ||a_bar||^2 + lambda / T * sum_t ||a_t - a_bar||^2,   a_bar = mean_t a_t.

In the literature's ``d x T`` matrix A the task vectors ``a_t`` are its columns; in our (K, P)
matrices (see :func:`~textmtl.regularizers.base.aligned_task_parameters`) they are the ROWS
(T = K tasks), so ``a_bar`` is the mean over dim 0.

Relation to ``l2_to_mean``: ``l2_to_mean`` is ``weight * sum_k ||a_k - a_bar||^2``, the spread
term alone, without the 1/K and without ``||a_bar||^2``. So ``mean_regularized(weight=w,
spread=lam)`` equals ``w * ||a_bar||^2 + l2_to_mean(weight=w * lam / K)``: it also shrinks the
shared mean toward zero, and ``spread`` sets how strongly the tasks cluster relative to that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Regularizer

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod


@REGULARIZERS.register("mean_regularized")
class MeanRegularized(Regularizer):
    """``weight * sum_A (||a_bar||^2 + spread / K * sum_k ||a_k - a_bar||^2)`` over (K, P) A.

    Smooth: it joins the loss like ``l2_to_mean`` (no proximal step).

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
        spread: lambda, the weight of the tasks' spread around their mean relative to the
            norm of the mean (>= 0; larger clusters the task copies more tightly).
    Returns:
        ``penalty(model)``: a scalar tensor.
    References:
        Evgeniou & Pontil (2004), Regularized multi-task learning (KDD);
        Ruder (2017), An Overview of Multi-Task Learning, "Learning task relationships".
    """

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [],
                 spread: float = 1.0) -> None:
        super().__init__(weight=weight, parameters=parameters)
        if not spread >= 0:
            raise ValueError(f"'spread' of MeanRegularized must be >= 0, got {spread}")
        self.spread = float(spread)

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for matrix in self.matrices(model).values():  # (K, P), row k = task k
            mean = matrix.mean(dim=0, keepdim=True)  # (1, P)
            deviations = (matrix - mean).pow(2).sum()
            total = total + mean.pow(2).sum() + self.spread / matrix.shape[0] * deviations
        return self.weight * total

    def __repr__(self) -> str:
        return (f"MeanRegularized(weight={self.weight}, parameters={self.parameters}, "
                f"spread={self.spread})")
