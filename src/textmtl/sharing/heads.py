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
    """

    def __init__(self, tasks: Sequence[TaskSpec], input_dim: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(input_dim, t.num_classes) for t in tasks)
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

    def forward(self, hidden: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
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

    def task_parameters(self, task_id: int) -> list[nn.Parameter]:
        return list(self.heads[task_id].parameters())
