"""Hard parameter sharing: one encoder for all tasks, task-specific output layers.

References:
    Caruana (1993); Ruder (2017), "An Overview of Multi-Task Learning in Deep Neural
    Networks" (``mtl-overview.txt``, section 3.1).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.inputs import EncoderInput
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import TaskHeads


@SHARING.register("hard")
class HardSharing(SharingMethod):
    """Shared encoder run once on the combined batch of all tasks; one head per task."""

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory) -> None:
        super().__init__(tasks, encoder_factory)
        self.encoder = encoder_factory()
        self.heads = TaskHeads(tasks, self.encoder.output_dim)

    def forward(self, inputs: EncoderInput, task_index: torch.Tensor) -> torch.Tensor:
        return self.heads(self.encoder(inputs), task_index)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return self.heads.task_parameters(self.task_id(task))
