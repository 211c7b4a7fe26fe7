"""Writing and reading model weights: a checkpoint is the method's ``export_state()``.

Files are written to a temporary name and renamed, so an interrupted write never leaves a
truncated checkpoint behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` (tensors and plain values) to ``path`` atomically."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` onto ``device``."""
    return torch.load(path, map_location=device, weights_only=True)
