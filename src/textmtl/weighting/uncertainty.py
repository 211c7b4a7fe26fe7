"""Homoscedastic uncertainty weighting.

References:
    Kendall, Gal & Cipolla (2018), "Multi-Task Learning Using Uncertainty to Weigh Losses for
    Scene Geometry and Semantics", CVPR (``mtl-overview.txt`` cites it among weighting methods).
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

    The form used: with ``s = log sigma^2``, ``exp(-s) L + s = L / sigma^2 + 2 log sigma``. The
    paper derives ``L / (2 sigma^2) + log sigma`` for a Gaussian likelihood and, for a softmax
    likelihood with temperature ``sigma^2``, approximately ``L / sigma^2 + log sigma``
    (Sec. 3.2). Ours is twice the Gaussian form; it is the parameterisation of the authors'
    released example (yaringal/multi-task-learning-example: ``exp(-log_var) * L + log_var``) and
    learns ``log sigma^2``, which the paper advises for numerical stability. It is kept (not
    wrong) because the forms differ by an overall factor, not in the balance between tasks: at
    the optimum over ``s_k`` ours gives task k the effective weight ``exp(-s_k) = 1 / L_k``,
    both paper forms ``1 / (2 L_k)``, so ours is the paper's weighting with the task losses
    scaled by 2 (a learning-rate factor). One form for all tasks keeps every task on that same
    scale whatever its likelihood (all our tasks are classification).

    Args:
        initial_log_variance: starting value of every ``s_k`` (0: all weights 1).

    Returns:
        ``combine``: the weighted sum above over the tasks present; ``current_weights``:
        ``exp(-s_k) = 1 / sigma_k^2`` per task.

    References:
        Kendall, Gal & Cipolla (2018), "Multi-Task Learning Using Uncertainty to Weigh Losses
        for Scene Geometry and Semantics", Sec. 3.2.
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

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.task_names, torch.exp(-self.log_variances.detach()).cpu().tolist()))
