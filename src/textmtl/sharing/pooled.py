"""Pooling the tasks: one network and ONE output layer for the rows of every task.

The first thing a practitioner tries with several datasets of the same kind (16 review domains
with the same positive/negative labels): throw them together and train one classifier. It is
hard sharing with the heads shared too, so the model cannot tell the tasks apart; the gap
between ``pooled`` and ``hard`` is what task-specific output layers buy. It is only meaningful
when class ``c`` means the same in every task; with label spaces of different sizes a task of
C_t classes reads the first C_t logits of the shared layer (the others are masked), which makes
the method runnable on any tasks but is a modelling choice the user must want.

References:
    Ruder (2017), ``mtl-overview.txt`` (the single-model baseline of hard sharing); Liu, Qiu &
    Huang (2017) report the same baseline for FDU-MTL; the scikit-learn ``logreg_pooled``
    baseline is its linear, tuned counterpart.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.batching import Batch
from . import SHARING
from .base import EncoderFactory, TaskSpec
from .hard import HardSharing
from .heads import MASKED_LOGIT, TaskHeads, class_mask


@SHARING.register("pooled")
class Pooled(HardSharing):
    """Shared encoder and one shared output layer (linear, or an MLP) for all tasks.

    Args:
        head_hidden: 0: one linear output layer; > 0: an MLP head with this many hidden units
            (ReLU), shared by all tasks.
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        if not self._fast:  # e.g. tagging and classification tasks mixed: no single output
            raise ValueError("sharing method 'pooled' needs every task to read the encoder's final "
                             "output (tasks of one level)")
        widest = max(tasks, key=lambda t: t.num_classes)
        # one head for everybody: the task-specific heads of HardSharing replaced
        self.heads = TaskHeads([widest], self.encoder.output_dim, self.head_hidden)
        # (K, C) True = not the task's class
        self.register_buffer("class_mask", class_mask(tasks), persistent=False)

    def forward(self, batch: Batch) -> torch.Tensor:
        task_index = batch.task_index
        logits = self.heads(self.encoder(batch.inputs), torch.zeros_like(task_index))  # (B[, T], C)
        mask = self.class_mask[task_index]  # (B, C)
        return logits.masked_fill(mask if logits.dim() == 2 else mask[:, None, :], MASKED_LOGIT)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters()) + list(self.heads.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        self.task_id(task)  # an unknown task is still an error
        return []
