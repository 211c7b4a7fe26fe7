"""Dynamic Weight Average: task weights from the rate at which each task's loss falls.

References:
    Liu, Johns & Davison (2019), "End-to-End Multi-Task Learning with Attention", CVPR
    (Dynamic Weight Average).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from . import WEIGHTINGS
from .base import LossWeighting

if TYPE_CHECKING:
    from ..training.state import TrainState


@WEIGHTINGS.register("dwa")
class DWA(LossWeighting):
    """``sum_k lambda_k L_k`` with ``lambda_k(t) = K exp(w_k(t-1)/T) / sum_j exp(w_j(t-1)/T)``.

    ``w_k(t-1) = L_k(t-1) / L_k(t-2)`` is the ratio of task k's mean training losses over the
    last two epochs (``state.mean_epoch_losses()`` at each epoch end), so a task whose loss
    falls slowly gets more weight. The lambdas sum to K; they are 1 in epochs 1 and 2, before
    two epochs of losses exist. A task with no loss in one of the two epochs gets ``w_k = 1``.

    Args:
        temperature: ``T`` (> 0); larger T makes the weights more uniform. The paper uses 2.

    Returns:
        ``combine``: ``sum_k lambda_k L_k``; ``current_weights``: ``lambda_k`` per task.

    References:
        Liu, Johns & Davison (2019), "End-to-End Multi-Task Learning with Attention", CVPR,
        section "Dynamic Weight Average".
    """

    linear_in_losses = True  # weights from past epochs only

    def __init__(self, task_names: Sequence[str], *, temperature: float = 2.0) -> None:
        super().__init__(task_names)
        if not temperature > 0:
            raise ValueError(f"'temperature' of DWA must be > 0, got {temperature}")
        self.temperature = float(temperature)
        K = len(self.task_names)
        # buffers, so a checkpoint resumes with the same weights and loss history
        self.register_buffer("lambdas", torch.ones(K))
        self.register_buffer("epoch_losses", torch.full((2, K), float("nan")))  # rows: t-2, t-1
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.lambdas[self.task_names.index(name)] * loss
                   for name, loss in task_losses.items())

    def on_epoch_end(self, state: "TrainState") -> None:
        means = state.mean_epoch_losses()  # also holds extra-loss names: only tasks are read
        latest = torch.tensor([means.get(name, float("nan")) for name in self.task_names],
                              dtype=self.epoch_losses.dtype, device=self.epoch_losses.device)
        self.epoch_losses.copy_(torch.stack([self.epoch_losses[1], latest]))
        self.epochs_seen += 1
        if self.epochs_seen < 2:
            return
        before, last = self.epoch_losses  # (K,), (K,)
        ratios = last / before  # w_k(t-1)
        ratios = torch.where(torch.isfinite(ratios) & (before > 0), ratios, torch.ones_like(ratios))
        K = len(self.task_names)
        self.lambdas.copy_(K * torch.softmax(ratios / self.temperature, dim=0))

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.task_names, self.lambdas.cpu().tolist()))
