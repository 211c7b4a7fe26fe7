"""The loss-weighting contract: per-task losses in, gradients out.

A weighting is an ``nn.Module`` (it may learn parameters, e.g. uncertainty weighting; the
trainer optimises them with the model) and it owns the backward pass of a training step:

- ``combine(task_losses)``: a differentiable scalar (for loss-weighting methods);
- ``backward(task_losses, extra_loss, model)``: fill the ``.grad`` of every trainable
  parameter. The default combines the task losses, adds the (already weighted) extra losses of
  the sharing method and calls ``backward()``. A gradient method overrides it: it may take the
  per-task gradients of ``model.shared_parameters()`` and project or aggregate them (TorchJD
  aggregators, GradNorm);
- ``on_step_end(state)`` / ``on_epoch_end(state)``: hooks with a
  :class:`~textmtl.training.state.TrainState` (DWA reads the epoch losses);
- ``current_weights()``: the task weights in force, logged per epoch in ``curves.json``.

Constructor: ``__init__(self, task_names, *, ...)``; the keyword-only arguments are the config
schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

import torch
from torch import nn

if TYPE_CHECKING:  # only for annotations: weightings never import the training loop
    from ..sharing.base import SharingMethod
    from ..training.state import TrainState


class LossWeighting(nn.Module):
    """Base class of loss weightings.

    Attributes:
        reads_task_gradients: its ``backward`` takes per-task gradients (a loss scale would
            reach them: fp16 training refuses such weightings, see training/precision.py).
        linear_in_losses: its step gradient is that of a weighted sum of the task losses
            whose weights do not depend on this step (data-parallel training, which splits
            every step's rows over processes, needs it: training/distributed.py).
    """

    reads_task_gradients: ClassVar[bool] = False
    linear_in_losses: ClassVar[bool] = False

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        self.task_names = list(task_names)

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the losses of the tasks present in this step."""
        raise NotImplementedError

    def backward(self, task_losses: dict[str, torch.Tensor], extra_loss: torch.Tensor | None,
                 model: "SharingMethod") -> None:
        """Accumulate the gradients of one step into ``.grad`` of the parameters.

        Args:
            task_losses: mean loss of each task present in the step.
            extra_loss: the weighted sum of the sharing method's extra losses (None if none).
            model: the sharing method (``shared_parameters()``, ``task_parameters(task)``,
                ``method_parameters()``).
        """
        total = self.combine(task_losses)
        if extra_loss is not None:
            total = total + extra_loss
        total.backward()

    def on_step_end(self, state: "TrainState") -> None:
        """Called after every optimiser step."""

    def on_epoch_end(self, state: "TrainState") -> None:
        """Called after every epoch, before the dev evaluation."""

    def current_weights(self) -> dict[str, float]:
        """The weight of each task in force now (logged per epoch); empty if not meaningful."""
        return {}
