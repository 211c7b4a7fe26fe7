"""Single-task learning: K independent networks, nothing shared (the MTL baseline)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.batching import Batch
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import MASKED_LOGIT, TaskHeads
from .stages import head_sources, head_widths, reads_final_output, run_for_heads


class TaskColumns(SharingMethod):
    """One encoder and one head per task; each task's rows go through its own network only.

    The base of single-task learning and of soft sharing (the same columns, tied by a
    penalty instead of trained apart).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 head_hidden: int = 0, split_heads: bool = False) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        self.encoders = nn.ModuleList(encoder_factory() for _ in tasks)
        self.sources = head_sources(self.encoders[0], tasks)
        # split_heads: output weights held as shared_part + specific_part (the dirty model)
        self.heads = TaskHeads(tasks, head_widths(self.encoders[0], self.sources), self.head_hidden,
                               split=split_heads)

    def forward(self, batch: Batch) -> torch.Tensor:
        outputs = None
        for k, encoder in enumerate(self.encoders):
            rows = (batch.task_index == k).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            inputs = batch.inputs.select(rows)
            if reads_final_output(encoder, self.sources[k:k + 1]):
                hidden = encoder(inputs)
            else:
                (hidden,) = run_for_heads(encoder, inputs, self.sources[k:k + 1])
            logits = self.heads(hidden, batch.task_index[rows])
            if logits.dim() == 3:  # the rows were trimmed to their own longest row
                logits = _fit_tokens(logits, batch.inputs.token_ids.shape[1])
            if outputs is None:
                outputs = logits.new_full((batch.size, *logits.shape[1:]), MASKED_LOGIT)
            outputs = outputs.index_copy(0, rows, logits)
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        return list(self.encoders[k].parameters()) + self.heads.task_parameters(k)


def _fit_tokens(logits: torch.Tensor, steps: int) -> torch.Tensor:
    """(R, T', C) token logits cut or padded (with MASKED_LOGIT) to T = ``steps`` positions.

    A task's rows are encoded alone and trimmed to their own longest row; positions past it are
    padding in the combined batch, which no loss or metric reads.
    """
    if logits.shape[1] >= steps:
        return logits[:, :steps]
    return torch.nn.functional.pad(logits, (0, 0, 0, steps - logits.shape[1]), value=MASKED_LOGIT)


@SHARING.register("single_task")
class SingleTask(TaskColumns):
    """One encoder and one head per task, each task trained alone with its own early stopping.

    Args:
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
    """

    # the honest baseline: the experiment trains each task in a run of its own
    trains_tasks_separately = True

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
