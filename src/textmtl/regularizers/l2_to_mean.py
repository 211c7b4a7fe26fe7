"""Mean-regularised multi-task learning: pull every task's copy of a layer to their mean."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Regularizer

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod


@REGULARIZERS.register("l2_to_mean")
class L2ToMean(Regularizer):
    """``weight * sum_A sum_k ||a_k - mean_k(a)||^2`` over the aligned (K, P) matrices A.

    The gradient on task k's copy is ``2 * weight * (a_k - mean)``: each copy is pulled toward
    the mean of all copies (soft parameter sharing with an l2 distance).

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
    Returns:
        ``penalty(model)``: a scalar tensor; 0 when all copies are equal or nothing is aligned.
    References:
        Evgeniou & Pontil (2004), Regularized multi-task learning (KDD);
        Duong et al. (2015), Low resource dependency parsing: cross-lingual parameter sharing
        in a neural network parser (ACL) -- l2 soft parameter sharing;
        Ruder (2017), An Overview of Multi-Task Learning, section "Soft parameter sharing".
    """

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = []) -> None:
        super().__init__(weight=weight, parameters=parameters)

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for matrix in self.matrices(model).values():  # (K, P)
            total = total + (matrix - matrix.mean(dim=0, keepdim=True)).pow(2).sum()
        return self.weight * total
