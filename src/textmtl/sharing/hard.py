"""Hard parameter sharing: one encoder for all tasks, task-specific output layers.

References:
    Caruana (1993); Ruder (2017), "An Overview of Multi-Task Learning in Deep Neural
    Networks" (``mtl-overview.txt``, section 3.1).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.batching import Batch
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import TaskHeads
from .stages import head_sources, head_widths, reads_final_output, run_for_heads


@SHARING.register("hard")
class HardSharing(SharingMethod):
    """Shared encoder run once on the combined batch of all tasks; one head per task.

    Args:
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        self.encoder = encoder_factory()
        self.sources = head_sources(self.encoder, tasks, self.task_stages())
        self.heads = TaskHeads(tasks, head_widths(self.encoder, self.sources), self.head_hidden)
        self._fast = reads_final_output(self.encoder, self.sources)

    def task_stages(self) -> dict[str, int]:
        """Task name -> encoder stage its head reads (none: every task reads its default)."""
        return {}

    def forward(self, batch: Batch) -> torch.Tensor:
        if self._fast:  # every head reads the final output: one tensor, one matmul
            return self.heads(self.encoder(batch.inputs), batch.task_index)
        return self.heads(run_for_heads(self.encoder, batch.inputs, self.sources), batch.task_index)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return self.heads.task_parameters(self.task_id(task))
