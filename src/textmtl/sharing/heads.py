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
        """(K, D, C) weights and (K, C) biases, zero-padded."""
        pad = [self.max_classes - h.out_features for h in self.heads]
        weight = torch.stack([F.pad(h.weight.t(), (0, p)) for h, p in zip(self.heads, pad)])
        bias = torch.stack([F.pad(h.bias, (0, p)) for h, p in zip(self.heads, pad)])
        return weight, bias

    def forward(self, hidden: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
        weight, bias = self.stacked()  # (K, D, C), (K, C)
        if hidden.dim() == 2:
            # one matmul for all tasks: (B, D) @ (D, K*C) -> (B, K, C), then each row's own task
            all_logits = hidden @ weight.permute(1, 0, 2).reshape(hidden.shape[1], -1)
            all_logits = all_logits.view(hidden.shape[0], len(self.heads), self.max_classes)
            logits = all_logits[torch.arange(hidden.shape[0], device=hidden.device), task_index]
            logits = logits + bias[task_index]  # (B, C)
            mask = self.class_mask[task_index]  # (B, C)
        else:
            logits = torch.bmm(hidden, weight[task_index]) + bias[task_index][:, None, :]  # (B, T, C)
            mask = self.class_mask[task_index][:, None, :]
        return logits.masked_fill(mask, MASKED_LOGIT)

    def task_parameters(self, task_id: int) -> list[nn.Parameter]:
        return list(self.heads[task_id].parameters())
