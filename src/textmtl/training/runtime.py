"""Where and how a run computes: the device, the seeds and the CPU thread limits.

One module for all three, so the trainer, the meta-study's engine and the CLI agree.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import ConfigError


def resolve_device(name: str, key: str = "training.device") -> torch.device:
    """"auto" is CUDA when available, else CPU; anything else is passed to torch (``key`` names
    the setting in the error message)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"'{key}' must be auto, cpu or cuda[:N], got {name!r}") from error
    # torch accepts "cuda" on a machine without it and fails at the first tensor moved there
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"'{key}' is {name!r}, but this machine has no CUDA device (use auto or cpu)")
    return device


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); returns the run's NumPy generator."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)  # seeds every CUDA device too
    return np.random.default_rng(seed)


def limit_threads(threads: int | None) -> None:
    """Cap torch's CPU threads (None: leave torch's default)."""
    if threads:
        torch.set_num_threads(threads)
