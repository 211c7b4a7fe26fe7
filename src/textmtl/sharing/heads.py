"""Task-specific output layers, applied to a combined batch of rows from several tasks.

A head is one linear layer (the default), or with ``hidden_dim > 0`` a small MLP: a linear
layer of ``hidden_dim`` units, ReLU, then the linear output layer (the sluice-networks
paper's tagger: "the output layer is an MLP with a dimensionality of 100"; the authors' code
uses a rectifier there). Either way every task owns its head.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import TaskSpec

#: logit given to classes outside a row's own label space; finite so no NaN can appear
MASKED_LOGIT = -1e9


class TaskHeads(nn.Module):
    """One output layer (linear, or an MLP) per task, evaluated for all rows in batched matmuls.

    Each task keeps its own ``nn.Linear`` (so ``task_parameters`` are real per-task tensors);
    the forward stacks them into a (K, D, C_max) tensor, zero-padded to the largest label space,
    and gathers each row's head. Padded classes get :data:`MASKED_LOGIT`.

    Heads may read different encoder stages of different widths (``input_dims`` per task, e.g.
    low supervision's POS head on the first layer); ``forward`` then takes one hidden tensor
    per task and applies each head to its own task's rows.

    Args:
        tasks: the task specs (label space sizes).
        input_dims: the width each head reads (one for all, or one per task).
        hidden_dim: 0 (default): each head is one ``nn.Linear``; > 0: each head is an
            :class:`MLPHead` with a hidden layer of this width (ReLU). The hidden layers are
            batched like the output layers.
        split: each output layer's weight is the sum of two parameters (:class:`SplitLinear`,
            the dirty model's ``B + S``); the function computed is the same.
    """

    def __init__(self, tasks: Sequence[TaskSpec], input_dims: int | Sequence[int],
                 hidden_dim: int = 0, split: bool = False) -> None:
        super().__init__()
        dims = [input_dims] * len(tasks) if isinstance(input_dims, int) else list(input_dims)
        if len(dims) != len(tasks):
            raise ValueError(f"TaskHeads needs one input width per task, got {len(dims)} for {len(tasks)}")
        check_head_hidden(hidden_dim)
        self.hidden_dim = hidden_dim
        output = SplitLinear if split else nn.Linear
        # a plain nn.Linear without a hidden layer: the parameter names of saved models stay
        self.heads = nn.ModuleList(MLPHead(d, hidden_dim, t.num_classes, output) if hidden_dim else
                                   output(d, t.num_classes) for d, t in zip(dims, tasks))
        self.max_classes = max(t.num_classes for t in tasks)
        # (K, C) True = padded class
        self.register_buffer("class_mask", class_mask(tasks), persistent=False)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, C, D) output weights and (K, C) biases; smaller label spaces are zero-padded.

        With MLP heads D is the hidden width (these are the output layers)."""
        weights, biases = [], []
        for head in self.heads:
            output = head.output if isinstance(head, MLPHead) else head
            pad = self.max_classes - output.out_features
            # no pad op when the label spaces agree (the common case): fewer ops per step
            weights.append(F.pad(output.weight, (0, 0, 0, pad)) if pad else output.weight)
            biases.append(F.pad(output.bias, (0, pad)) if pad else output.bias)
        return torch.stack(weights), torch.stack(biases)

    def _hidden(self, hidden: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
        """Each row's own task's hidden layer, ReLU: (B, D) -> (B, Hd), (B, T, D) -> (B, T, Hd)."""
        weight = torch.stack([head.hidden.weight for head in self.heads])  # (K, Hd, D)
        bias = torch.stack([head.hidden.bias for head in self.heads])  # (K, Hd)
        if hidden.dim() == 2:
            out = torch.bmm(hidden[:, None, :], weight[task_index].transpose(1, 2))[:, 0]  # (B, Hd)
            return torch.relu(out + bias[task_index])
        out = torch.bmm(hidden, weight[task_index].transpose(1, 2))  # (B, T, Hd)
        return torch.relu(out + bias[task_index][:, None, :])

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
        if self.hidden_dim:
            hidden = self._hidden(hidden, task_index)  # (B, Hd) or (B, T, Hd)
        if len(self.heads) > 1 and task_index.numel() and bool((task_index == task_index[0]).all()):
            # rows of one task (a task column's forward): its head alone, not all K heads'
            # logits for every row (K times the work when D is wide, e.g. a linear model's V)
            return self._one_task(hidden, int(task_index[0]))
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

    def _one_task(self, hidden: torch.Tensor, k: int) -> torch.Tensor:
        """Logits of rows that all belong to task ``k``: (B[, T], C_max), padding masked."""
        head = self.heads[k]
        output = head.output if isinstance(head, MLPHead) else head
        return self._pad_classes(F.linear(hidden, output.weight, output.bias))  # (B[, T], C_max)

    def _pad_classes(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., C_k) logits of one task padded to C_max with :data:`MASKED_LOGIT`."""
        pad = self.max_classes - logits.shape[-1]
        return F.pad(logits, (0, pad), value=MASKED_LOGIT) if pad else logits

    def _per_task(self, hidden: Sequence[torch.Tensor], task_index: torch.Tensor) -> torch.Tensor:
        output = None
        for k, head in enumerate(self.heads):
            rows = (task_index == k).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            logits = self._pad_classes(head(hidden[k][rows]))  # (R[, T], C_max)
            if output is None:
                output = logits.new_full((task_index.shape[0], *logits.shape[1:]), MASKED_LOGIT)
            output = output.index_copy(0, rows, logits)
        return output

    def task_parameters(self, task_id: int) -> list[nn.Parameter]:
        """Task ``task_id``'s head parameters; the output layer's bias is the last one."""
        return list(self.heads[task_id].parameters())


class MLPHead(nn.Module):
    """``output(relu(hidden(x)))``: one task's MLP head (``hidden`` then ``output``).

    Args:
        input_dim: width read.
        hidden_dim: width of the hidden layer.
        num_classes: the task's label space.
        output: the class of the output layer (``nn.Linear`` or :class:`SplitLinear`).
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_classes: int,
                 output: type[nn.Module] = nn.Linear) -> None:
        super().__init__()
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.output = output(hidden_dim, num_classes)
        self.out_features = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x)))


def class_mask(tasks: Sequence[TaskSpec]) -> torch.Tensor:
    """(K, C_max) bool: True where class c is outside task k's label space."""
    mask = torch.zeros(len(tasks), max(t.num_classes for t in tasks), dtype=torch.bool)
    for k, t in enumerate(tasks):
        mask[k, t.num_classes:] = True
    return mask


class SplitLinear(nn.Module):
    """A linear layer whose weight is the sum of two parameters: ``x (B + S)^T + b``.

    The dirty model (Jalali et al. 2010) writes each task's weights as ``a_t = b_t + s_t`` and
    penalises the two parts differently (block-sparse ``B``: features shared by the tasks;
    element-sparse ``S``: task-specific exceptions), so the model must hold both. ``shared_part``
    starts like ``nn.Linear``'s weight, ``specific_part`` at zero (no exception yet), so at
    initialisation the layer computes what an ``nn.Linear`` would.

    Args:
        in_features: input width D.
        out_features: output width C.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        template = nn.Linear(in_features, out_features)  # the usual initialisation
        self.shared_part = nn.Parameter(template.weight.detach().clone())  # (C, D), B
        self.specific_part = nn.Parameter(torch.zeros(out_features, in_features))  # (C, D), S
        self.bias = nn.Parameter(template.bias.detach().clone())  # (C,), last like nn.Linear's
        self.in_features, self.out_features = in_features, out_features

    @property
    def weight(self) -> torch.Tensor:
        """(C, D) the effective weight ``B + S`` (differentiable in both parts)."""
        return self.shared_part + self.specific_part

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def check_head_hidden(head_hidden: int, owner: str = "TaskHeads") -> None:
    """Raise ``ValueError`` unless ``head_hidden`` is an int >= 0 (0: linear heads)."""
    if isinstance(head_hidden, bool) or not isinstance(head_hidden, int) or head_hidden < 0:
        raise ValueError(f"'head_hidden' of {owner} must be an integer >= 0 (0: one linear layer "
                         f"per task; > 0: an MLP head with that many hidden units), got {head_hidden!r}")
