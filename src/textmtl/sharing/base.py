"""The sharing-method contract: how K tasks share parameters.

A sharing method is an ``nn.Module`` built from the task specs and an encoder factory. One
``forward`` receives the rows of *every* task trained in the step as one combined batch, with
``task_index`` saying which task each row belongs to, and returns logits over each row's own
label space. This lets methods that need inputs from all tasks at once (adversarial
shared-private, cluster layers, recurrent fusion) plug in without trainer changes.

The trainer only asks about capabilities, never names:

- ``shared_parameters()`` / ``task_parameters(task)``: for weightings, regularisers, analysis;
- ``extra_losses()``: named scalar losses computed in the last ``forward`` (adversarial loss,
  orthogonality, clustering penalty), added to the weighted task loss;
- ``on_step_end(step)``: a hook after each optimiser step (e.g. re-clustering task weights);
- ``needs_grads``: True when the method wants per-task gradients (gradient-based methods).

Constructor contract: ``__init__(self, tasks, encoder_factory, *, ...config...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Literal, Sequence

import torch
from torch import nn

from ..data.inputs import EncoderInput
from ..encoders.base import Encoder


@dataclass(frozen=True)
class TaskSpec:
    """What a sharing method needs to know about a task."""

    name: str
    num_classes: int
    level: Literal["sequence", "token"] = "sequence"


EncoderFactory = Callable[[], Encoder]


class SharingMethod(nn.Module):
    """Base class of sharing methods."""

    needs_grads: ClassVar[bool] = False

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a sharing method needs at least one task")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        self.tasks = list(tasks)
        self.task_names = names
        self._extra_losses: dict[str, torch.Tensor] = {}

    def task_id(self, name: str) -> int:
        return self.task_names.index(name)

    def forward(self, inputs: EncoderInput, task_index: torch.Tensor) -> torch.Tensor:
        """Logits (B, C_max) or (B, T, C_max); classes beyond a row's task are masked."""
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that more than one task trains."""
        raise NotImplementedError

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that only ``task`` trains."""
        raise NotImplementedError

    def method_parameters(self) -> list[nn.Parameter]:
        """Parameters of the method itself, neither one encoder's nor one task's: mixing
        matrices, adversaries, memories, cluster centres (empty for most methods)."""
        return []

    def task_named_parameters(self, task: str) -> dict[str, nn.Parameter]:
        """The parameters of ``task`` under names that are the same for every task.

        The name of a parameter inside a per-task container (``encoders.3.input_weight``,
        ``heads.heads.3.weight``) loses its task index (``encoders.input_weight``,
        ``heads.heads.weight``), so regularisers can stack the same layer of every task into
        one (K, P) matrix.
        """
        k = self.task_id(task)
        own = {id(p) for p in self.task_parameters(task)}
        named = {}
        for name, parameter in self.named_parameters():
            if id(parameter) in own:
                parts = name.split(".")
                if str(k) in parts:  # the first index component is the per-task container's
                    parts.remove(str(k))
                named[".".join(parts)] = parameter
        return named

    def extra_losses(self) -> dict[str, torch.Tensor]:
        """Named auxiliary losses of the last ``forward`` (empty for most methods)."""
        return dict(self._extra_losses)

    def on_step_end(self, step: int) -> None:
        """Called after every optimiser step."""
