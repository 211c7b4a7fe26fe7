"""Cross-stitch units between the stages of K per-task networks.

Every row runs through all K columns (one encoder per task). After each encoder stage the
column outputs are mixed: ``h'_k = sum_j alpha[k, j] * h_j``, with one learned K x K matrix
per stage. The row's own column feeds its task head. With ``alpha = I`` the columns never
interact, so cross-stitch is then exactly K independent single-task networks (a tested property).

References:
    Misra, Shrivastava, Gupta & Hebert (2016), "Cross-stitch Networks for Multi-task
    Learning"; Ruder et al., "Latent Multi-task Architecture Learning"
    (``sluice-networks.txt``), which generalises cross-stitch to sluice networks.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.inputs import EncoderInput
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import TaskHeads


@SHARING.register("cross_stitch")
class CrossStitch(SharingMethod):
    """K task columns mixed by learned cross-stitch matrices after every encoder stage.

    Args:
        self_weight: initial alpha[k, k]; the rest of each row, ``1 - self_weight``, is split
            evenly over the other tasks, so every row of alpha starts as a convex combination
            (Misra et al. found 0.9 / 0.1 works best).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 self_weight: float = 0.9) -> None:
        super().__init__(tasks, encoder_factory)
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"'self_weight' of CrossStitch must be in [0, 1], got {self_weight}")
        self.encoders = nn.ModuleList(encoder_factory() for _ in tasks)
        self.heads = TaskHeads(tasks, self.encoders[0].output_dim)
        k = len(tasks)
        other = (1.0 - self_weight) / (k - 1) if k > 1 else 0.0
        init = torch.full((k, k), other)
        init.fill_diagonal_(self_weight if k > 1 else 1.0)
        num_stages = self.encoders[0].num_stages
        self.alphas = nn.Parameter(init.repeat(num_stages, 1, 1))  # (stages, K, K)

    def forward(self, inputs: EncoderInput, task_index: torch.Tensor) -> torch.Tensor:
        hidden: list[torch.Tensor | None] = [None] * len(self.encoders)
        for stage in range(self.alphas.shape[0]):
            outputs = torch.stack([
                encoder.run_stage(stage, hidden[k], inputs)
                for k, encoder in enumerate(self.encoders)
            ])  # (K, B, ...)
            mixed = torch.einsum("kj,j...->k...", self.alphas[stage], outputs)  # (K, B, ...)
            hidden = list(mixed.unbind(0))
        columns = torch.stack(hidden)  # (K, B, D) or (K, B, T, D)
        rows = torch.arange(task_index.shape[0], device=task_index.device)
        own = columns[task_index, rows]  # (B, D): each row from its own task's column
        return self.heads(own, task_index)

    def shared_parameters(self) -> list[nn.Parameter]:
        # alpha couples the columns; each column's encoder is trained by every task through it
        return [self.alphas]

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        return list(self.encoders[k].parameters()) + self.heads.task_parameters(k)
