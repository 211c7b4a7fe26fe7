"""The loss-weighting contract: per-task losses in, one scalar out.

A weighting is an ``nn.Module`` (it may learn parameters, e.g. uncertainty weighting; the
trainer optimises them with the model). Constructor: ``__init__(self, task_names, *, ...)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class LossWeighting(nn.Module):
    """Base class of loss weightings."""

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        self.task_names = list(task_names)

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the losses of the tasks present in this step."""
        raise NotImplementedError
