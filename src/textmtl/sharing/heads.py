"""Task-specific output layers, applied to a combined batch of rows from several tasks."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import TaskSpec

#: logit given to classes outside a row's own label space; finite so no NaN can appear
MASKED_LOGIT = -1e9


class TaskHeads(nn.Module):
    """One linear layer per task, evaluated for all rows in one batched matmul.

    Each task keeps its own ``nn.Linear`` (so ``task_parameters`` are real per-task tensors);
    the forward stacks them into a (K, D, C_max) tensor, zero-padded to the largest label space,
    and gathers each row's head. Padded classes get :data:`MASKED_LOGIT`.

    Heads may read different encoder stages of different widths (``input_dims`` per task, e.g.
    low supervision's POS head on the first layer); ``forward`` then takes one hidden tensor
    per task and applies each head to its own task's rows.
    """

    def __init__(self, tasks: Sequence[TaskSpec], input_dims: int | Sequence[int]) -> None:
        super().__init__()
        dims = [input_dims] * len(tasks) if isinstance(input_dims, int) else list(input_dims)
        if len(dims) != len(tasks):
            raise ValueError(f"TaskHeads needs one input width per task, got {len(dims)} for {len(tasks)}")
        self.heads = nn.ModuleList(nn.Linear(d, t.num_classes) for d, t in zip(dims, tasks))
        self.max_classes = max(t.num_classes for t in tasks)
        mask = torch.zeros(len(tasks), self.max_classes, dtype=torch.bool)
        for k, t in enumerate(tasks):
            mask[k, t.num_classes:] = True
        self.register_buffer("class_mask", mask, persistent=False)  # (K, C) True = padded class

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, C, D) weights and (K, C) biases; smaller label spaces are zero-padded."""
        weights, biases = [], []
        for head in self.heads:
            pad = self.max_classes - head.out_features
            # no pad op when the label spaces agree (the common case): fewer ops per step
            weights.append(F.pad(head.weight, (0, 0, 0, pad)) if pad else head.weight)
            biases.append(F.pad(head.bias, (0, pad)) if pad else head.bias)
        return torch.stack(weights), torch.stack(biases)

    def forward(self, hidden: torch.Tensor | Sequence[torch.Tensor],
                task_index: torch.Tensor) -> torch.Tensor:
        """Logits (B, C_max) or (B, T, C_max) of each row under its own task's head.

        Args:
            hidden: (B, D) or (B, T, D) for every row; or a list with one such tensor per task
                (rows of task k are read from ``hidden[k]``, widths may differ).
            task_index: (B,) the task of each row.
        """
        if not isinstance(hidden, torch.Tensor):
            return self._per_task(hidden, task_index)
        weight, bias = self.stacked()  # (K, C, D), (K, C)
        num_tasks, classes, width = weight.shape
        if hidden.dim() == 2:
            # one matmul for all tasks: (B, D) x (K*C, D)^T -> (B, K, C), then each row's own task
            all_logits = F.linear(hidden, weight.reshape(num_tasks * classes, width),
                                  bias.reshape(-1)).view(hidden.shape[0], num_tasks, classes)
            logits = all_logits[torch.arange(hidden.shape[0], device=hidden.device), task_index]  # (B, C)
            mask = self.class_mask[task_index]  # (B, C)
        else:
            row_weight = weight[task_index].transpose(1, 2)  # (B, D, C)
            logits = torch.bmm(hidden, row_weight) + bias[task_index][:, None, :]  # (B, T, C)
            mask = self.class_mask[task_index][:, None, :]
        return logits.masked_fill(mask, MASKED_LOGIT)

    def _per_task(self, hidden: Sequence[torch.Tensor], task_index: torch.Tensor) -> torch.Tensor:
        output = None
        for k, head in enumerate(self.heads):
            rows = (task_index == k).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            logits = head(hidden[k][rows])  # (R, C_k) or (R, T, C_k)
            pad = self.max_classes - head.out_features
            logits = F.pad(logits, (0, pad), value=MASKED_LOGIT) if pad else logits
            if output is None:
                output = logits.new_full((task_index.shape[0], *logits.shape[1:]), MASKED_LOGIT)
            output = output.index_copy(0, rows, logits)
        return output

    def task_parameters(self, task_id: int) -> list[nn.Parameter]:
        return list(self.heads[task_id].parameters())
