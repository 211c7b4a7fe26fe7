"""Fixed task-loss weights (lambda_k), 1.0 for every task unless given."""

from __future__ import annotations

from typing import Sequence

import torch

from . import WEIGHTINGS
from .base import LossWeighting


@WEIGHTINGS.register("fixed")
class FixedWeights(LossWeighting):
    """``sum_k lambda_k * L_k`` with constant lambdas.

    Args:
        weights: lambda per task name; tasks not named get ``default``.
        default: lambda of tasks not in ``weights``.
    """

    linear_in_losses = True  # constant weights

    #: parameters whose keys are task names (checked against the experiment's tasks)
    task_references = ("weights",)

    def __init__(self, task_names: Sequence[str], *, weights: dict[str, float] = {},
                 default: float = 1.0) -> None:
        super().__init__(task_names)
        unknown = sorted(set(weights) - set(task_names))
        if unknown:
            raise ValueError(
                f"'weights' of FixedWeights names unknown task {unknown[0]!r}; tasks: {', '.join(task_names)}")
        if default < 0 or any(w < 0 for w in weights.values()):
            raise ValueError(f"task weights of FixedWeights must be >= 0, got {weights}, default {default}")
        self.lambdas = {name: float(weights.get(name, default)) for name in task_names}

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.lambdas[name] * loss for name, loss in task_losses.items())
