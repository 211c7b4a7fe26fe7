"""What the hooks of sharing methods and weightings see during training.

``on_step_end(state)`` runs after every optimiser step and ``on_epoch_end(state)`` after every
epoch (before the dev evaluation), on the sharing method and on the weighting. Methods that
re-cluster task weights every step (NCMTL), weightings that follow loss ratios between epochs
(DWA) or proximal steps all read the same state, so the trainer never needs to know who
they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TrainState:
    """The training run as a hook sees it.

    Attributes:
        epoch: the current epoch, from 1.
        step: optimiser steps taken so far in the run (after the step a hook is called for).
        steps_per_epoch: steps planned for the current epoch.
        step_in_epoch: steps taken so far in the current epoch.
        generator: a seeded torch generator for hooks that draw random numbers (so a run is
            reproducible whatever the hooks do), on the CPU.
        rng: the run's NumPy generator (the batches are drawn from it too).
        epoch_losses: per task (and per named extra loss), the losses of this epoch's steps
            so far, as floats.
        history: the learning-curve entries of the finished epochs (what ``curves.json`` holds).
        device: where the model lives.
        optimizer: the run's optimiser (None outside the trainer), for hooks that replace or
            reshape parameters and must keep its per-parameter state consistent (NCMTL's
            cluster layers average the momentum / moments of merged weights).
    """

    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    step_in_epoch: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    epoch_losses: dict[str, list[float]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    optimizer: torch.optim.Optimizer | None = None

    def mean_epoch_losses(self) -> dict[str, float]:
        """Mean of this epoch's losses so far, per task (and extra loss) name."""
        return {name: float(np.mean(values)) for name, values in self.epoch_losses.items() if values}

    def record(self, name: str, value: float) -> None:
        """Add one step's loss value under ``name``."""
        self.epoch_losses.setdefault(name, []).append(value)
