"""Single-task learning: K independent networks, nothing shared (the MTL baseline)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.inputs import EncoderInput
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import MASKED_LOGIT, TaskHeads


@SHARING.register("single_task")
class SingleTask(SharingMethod):
    """One encoder and one head per task; each task's rows go through its own network only."""

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory) -> None:
        super().__init__(tasks, encoder_factory)
        self.encoders = nn.ModuleList(encoder_factory() for _ in tasks)
        self.heads = TaskHeads(tasks, self.encoders[0].output_dim)

    def forward(self, inputs: EncoderInput, task_index: torch.Tensor) -> torch.Tensor:
        outputs = None
        for k, encoder in enumerate(self.encoders):
            rows = (task_index == k).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            logits = self.heads(encoder(inputs.select(rows)), task_index[rows])
            if outputs is None:
                outputs = logits.new_full((task_index.shape[0], *logits.shape[1:]), MASKED_LOGIT)
            outputs = outputs.index_copy(0, rows, logits)
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        return list(self.encoders[k].parameters()) + self.heads.task_parameters(k)
