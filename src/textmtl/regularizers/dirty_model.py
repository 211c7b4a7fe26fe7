"""The dirty model: task weights = block-sparse shared part + element-sparse exceptions.

Jalali, Ravikumar, Sanghavi & Ruan write the task parameter matrix as ``A = B + S`` and solve

    min  L(B + S) + lambda_b ||B||_{1,inf} + lambda_s ||S||_1

``||B||_{1,inf}`` (sum over features of the largest weight across tasks, as in
:mod:`~textmtl.regularizers.l1_linf`) makes the features of B shared: a feature is used by all
tasks or by none; ``||S||_1`` lets a task keep a few features of its own. Neither a block-sparse
nor an element-sparse model alone fits "mostly shared supports with exceptions"; the sum does.

The model must hold both parts: ``soft`` sharing with ``split_heads: true`` keeps each task's
output layer as ``shared_part`` (B) + ``specific_part`` (S) (see
:class:`~textmtl.sharing.heads.SplitLinear`); with the ``linear`` encoder these are the task
logistic regressions of the paper. The regulariser pairs every aligned ``...shared_part`` matrix
with the ``...specific_part`` of the same layer and fails with a one-line error when the model
has none.

The penalty is separable in B and S, so its proximal operator is too: the l_inf prox on every
column of B (threshold ``tau * block_weight``) and soft-thresholding of S (``tau *
specific_weight``). With ``mode: subgradient`` both norms join the loss instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Mode, Regularizer, aligned_task_copies, check_mode
from .l1_linf import project_l1_ball

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod

SHARED_PART = "shared_part"
SPECIFIC_PART = "specific_part"


def soft_threshold(matrix: torch.Tensor, threshold: float) -> torch.Tensor:
    """``sign(x) max(|x| - threshold, 0)`` elementwise: the prox of ``threshold * ||.||_1``."""
    return matrix.sign() * (matrix.abs() - threshold).clamp_min(0)


@REGULARIZERS.register("dirty_model")
class DirtyModel(Regularizer):
    """``weight * (block_weight ||B||_{1,inf} + specific_weight ||S||_1)`` per split layer.

    Args:
        weight: overall multiplier (>= 0), the one a ``grid:`` over lambda varies.
        parameters: prefixes of the aligned names to look in (default: every aligned
            parameter); the split layers found there are penalised.
        block_weight: lambda_b / weight, on the shared part's l1/l_inf norm (>= 0).
        specific_weight: lambda_s / weight, on the specific part's l1 norm (>= 0). Jalali et
            al. tune the ratio; their theory asks for lambda_s < lambda_b (a feature in
            S costs less than one in B for a single task, more for many), so the default is
            0.5 of the block weight.
        mode: ``proximal`` (the separable prox after each optimiser step; the penalty is only
            logged) or ``subgradient`` (the penalty joins the loss).
    Returns:
        ``penalty(model)``: a scalar tensor.
    References:
        Jalali, Ravikumar, Sanghavi & Ruan (2010), A Dirty Model for Multi-task Learning
        (NIPS); Ruder (2017), An Overview of Multi-Task Learning, "Block-sparse
        regularization".
    """

    proximal = True

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [], block_weight: float = 1.0,
                 specific_weight: float = 0.5, mode: Mode = "proximal") -> None:
        super().__init__(weight=weight, parameters=parameters)
        for key, value in (("block_weight", block_weight), ("specific_weight", specific_weight)):
            if not value >= 0:
                raise ValueError(f"'{key}' of DirtyModel must be >= 0, got {value}")
        self.block_weight = float(block_weight)
        self.specific_weight = float(specific_weight)
        self.mode = check_mode(mode, "DirtyModel")

    def split_layers(self, model: "SharingMethod") -> list[tuple[list[torch.nn.Parameter],
                                                                   list[torch.nn.Parameter]]]:
        """(B copies, S copies) per split layer: the K tasks' ``shared_part`` and
        ``specific_part`` of each layer, in task order."""
        copies = aligned_task_copies(model, self.parameters or None)
        layers = []
        for name, shared in copies.items():
            if name.rsplit(".", 1)[-1] != SHARED_PART:
                continue
            specific = copies.get(name[: -len(SHARED_PART)] + SPECIFIC_PART)
            if specific is not None:
                layers.append((shared, specific))
        if not layers:
            raise ValueError(f"regularizer 'dirty_model' needs layers held as {SHARED_PART} + "
                             f"{SPECIFIC_PART} (sharing 'soft' with split_heads: true); the "
                             f"aligned parameters are {', '.join(copies) or '(none)'}")
        return layers

    def proximal_groups(self, model: "SharingMethod") -> list[list[torch.nn.Parameter]]:
        """One group per split layer: its K B copies, then its K S copies (a (2K, P) matrix)."""
        return [shared + specific for shared, specific in self.split_layers(model)]

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for shared, specific in self.split_layers(model):
            b = torch.stack([p.reshape(-1) for p in shared])  # (K, P)
            s = torch.stack([p.reshape(-1) for p in specific])  # (K, P)
            total = total + self.block_weight * b.abs().amax(dim=0).sum() \
                + self.specific_weight * s.abs().sum()
        return self.weight * total

    def proximal_operator(self, matrix: torch.Tensor, threshold: float) -> torch.Tensor:
        """The prox of ``threshold * penalty`` on ``[B; S]`` stacked as (2K, P): the l_inf prox
        on B's columns and soft-thresholding of S (the penalty is separable)."""
        b, s = matrix.chunk(2, dim=0)  # (K, P) each
        return torch.cat([b - project_l1_ball(b, threshold * self.block_weight),
                          soft_threshold(s, threshold * self.specific_weight)])

    def __repr__(self) -> str:
        return (f"DirtyModel(weight={self.weight}, parameters={self.parameters}, "
                f"block_weight={self.block_weight}, specific_weight={self.specific_weight}, "
                f"mode={self.mode!r})")
