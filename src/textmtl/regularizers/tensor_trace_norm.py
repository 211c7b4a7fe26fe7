"""Tensor trace norms of stacked task layers (Yang & Hospedales 2017).

A layer's weight is a (D1, D2) matrix per task; stacking the K copies gives a
(D1, D2, K) tensor W, task axis last as in the paper. The matrix trace norm
(:mod:`~textmtl.regularizers.trace_norm`) sees only the (K, D1 D2) unfolding along the task
axis. Yang & Hospedales' "Deep Multi-task Representation Learning: A Tensor Factorisation
Approach" relaxes the tensor rank of their factorised models by sums of nuclear norms of
unfoldings, three ways (``variant``):

- ``tucker``: ``sum_i ||W_(i)||_*`` over the mode-i unfoldings (each axis in turn brought
  to the front, the rest flattened): low Tucker rank in every mode;
- ``tt``: ``sum_{i=1}^{N-1} ||W_[i]||_*`` over the tensor-train unfoldings ``(D1...Di, D(i+1)...K)``:
  low TT rank;
- ``last_axis``: ``||W_(N)||_*``, the task-axis unfolding only (= ``trace_norm``).

For an N-way tensor the unfoldings are reshapes of one tensor, and every term is a nuclear
norm, so the penalty is convex. Each term is weighted equally (the paper's gamma_i = 1). A sum
of nuclear norms of different unfoldings has no closed-form proximal operator, so this
regulariser joins the loss (a subgradient: ``U V^T`` of each unfolding), which is how Yang &
Hospedales train it too. Bias vectors stack to (D, K) matrices, whose unfoldings all share one
nuclear norm.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch

from . import REGULARIZERS
from .base import Regularizer, aligned_task_copies

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod

Variant = Literal["tucker", "tt", "last_axis"]
VARIANTS = ("tucker", "tt", "last_axis")


def unfoldings(tensor: torch.Tensor, variant: str) -> list[torch.Tensor]:
    """The matrices whose nuclear norms the ``variant`` sums, of an N-way tensor (task axis last).

    Args:
        tensor: (D1, ..., D(N-1), K).
        variant: ``tucker``, ``tt`` or ``last_axis``.
    Returns:
        ``tucker``: N mode unfoldings, ``(D_i, prod of the others)``; ``tt``: N - 1 matrices
        ``(D1...Di, D(i+1)...K)``; ``last_axis``: one, ``(K, D1...D(N-1))``.
    """
    order = tensor.dim()
    if variant == "tucker":
        return [tensor.movedim(i, 0).reshape(tensor.shape[i], -1) for i in range(order)]
    if variant == "tt":
        return [tensor.reshape(math.prod(tensor.shape[:i]), -1) for i in range(1, order)]
    if variant == "last_axis":
        return [tensor.movedim(-1, 0).reshape(tensor.shape[-1], -1)]
    raise ValueError(f"'variant' of TensorTraceNorm must be one of {', '.join(VARIANTS)}, got {variant!r}")


@REGULARIZERS.register("tensor_trace_norm")
class TensorTraceNorm(Regularizer):
    """``weight * sum_layers sum_unfoldings ||W_(.)||_*`` of the stacked (..., K) task tensors.

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
        variant: ``tucker`` (every mode unfolding), ``tt`` (tensor-train unfoldings) or
            ``last_axis`` (the task axis only, the matrix trace norm).
    Returns:
        ``penalty(model)``: a scalar tensor, differentiable (a subgradient at repeated singular
        values).
    References:
        Yang & Hospedales (2017), Trace Norm Regularised Deep Multi-Task Learning (ICLR
        workshop) and Deep Multi-task Representation Learning: A Tensor Factorisation
        Approach (ICLR); Ruder (2017), An Overview of Multi-Task Learning, "Trace norm
        regularised deep MTL".
    """

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [],
                 variant: Variant = "tucker") -> None:
        super().__init__(weight=weight, parameters=parameters)
        if variant not in VARIANTS:
            raise ValueError(f"'variant' of TensorTraceNorm must be one of {', '.join(VARIANTS)}, "
                             f"got {variant!r}")
        self.variant = variant

    def tensors(self, model: "SharingMethod") -> dict[str, torch.Tensor]:
        """Aligned name -> the K copies stacked on a last axis, ``(*shape, K)``."""
        return {name: torch.stack(copies, dim=-1)
                for name, copies in aligned_task_copies(model, self.parameters or None).items()}

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for tensor in self.tensors(model).values():
            for matrix in unfoldings(tensor, self.variant):
                total = total + torch.linalg.svdvals(matrix).sum()
        return self.weight * total

    def __repr__(self) -> str:
        return (f"TensorTraceNorm(weight={self.weight}, parameters={self.parameters}, "
                f"variant={self.variant!r})")
