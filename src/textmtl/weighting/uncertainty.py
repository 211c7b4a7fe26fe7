"""Homoscedastic uncertainty weighting.

References:
    Kendall, Gal & Cipolla (2018), "Multi-Task Learning Using Uncertainty to Weigh Losses for
    Scene Geometry and Semantics" (``mtl-overview.txt`` cites it among weighting methods).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import WEIGHTINGS
from .base import LossWeighting


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """``sum_k exp(-s_k) * L_k + s_k`` with learned ``s_k = log sigma_k^2``.

    Args:
        initial_log_variance: starting value of every ``s_k`` (0: all weights 1).
    """

    def __init__(self, task_names: Sequence[str], *, initial_log_variance: float = 0.0) -> None:
        super().__init__(task_names)
        self.log_variances = nn.Parameter(torch.full((len(task_names),), float(initial_log_variance)))

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for name, loss in task_losses.items():
            s = self.log_variances[self.task_names.index(name)]
            total = total + torch.exp(-s) * loss + s
        return total
