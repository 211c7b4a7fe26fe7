"""Mixed precision for training: ``training.precision: fp32 | bf16 | fp16``.

- ``bf16``: the forward pass and the losses run under ``torch.autocast`` in bfloat16 (CPU and
  CUDA); bfloat16 has float32's exponent range, so gradients need no scaling.
- ``fp16``: autocast in float16 with dynamic loss scaling (``torch.amp.GradScaler``): the losses
  are scaled before the weighting's backward pass, the gradients unscaled before clipping, and
  a step whose gradients overflowed is skipped. CUDA only (float16 on CPU is slow and gains
  nothing). A weighting that reads per-task gradients (``reads_task_gradients``: TorchJD
  aggregators, GradNorm) would see scaled gradients, so fp16 refuses it; bf16 serves it.
- ``fp32``: neither.

The parameters and the optimiser stay float32 (autocast casts per operation). Evaluation and
prediction always run in float32, so a saved model scores exactly as its ``metrics.json`` says.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")


class MixedPrecision:
    """The autocast context and (fp16) the loss scaler of one training run."""

    def __init__(self, precision: str, device: torch.device, weighting=None) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"'training.precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"'training.precision' fp16 needs a CUDA device, got {device}; use bf16 "
                              "(autocast in bfloat16, no loss scaling) or fp32 on the CPU")
        if precision == "fp16" and getattr(weighting, "reads_task_gradients", False):
            raise ConfigError(f"'training.precision' fp16 scales the losses, and weighting "
                              f"{type(weighting).__name__} reads per-task gradients; use bf16 or fp32")
        self.precision = precision
        self.device_type = device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def autocast(self):
        """The context the forward pass and the losses run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor | None) -> torch.Tensor | None:
        return loss if self.scaler is None or loss is None else self.scaler.scale(loss)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Before clipping: the gradients in their true size."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:  # skipped when the gradients overflowed; the scale adapts
            self.scaler.step(optimizer)
            self.scaler.update()

