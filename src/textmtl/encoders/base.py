"""The encoder contract: text features in, vectors (or token vectors) out, in stages.

An encoder is a stack of *stages*. ``forward`` runs them in order; sharing methods that mix
tasks layer by layer (cross-stitch, sluice, cluster layers) run the stages of several encoders
side by side and mix their outputs between stages, so every encoder exposes them:

    hidden = None
    for i in range(encoder.num_stages):
        hidden = encoder.run_stage(i, hidden, inputs)

Stage 0 reads ``inputs``; later stages read ``hidden`` (and may read lengths/masks from
``inputs``). Every stage output has the batch as its first dimension, so element-wise mixing
between columns is always defined. The last stage returns (B, output_dim) for sequence-level
tasks, or (B, T, output_dim) when ``token_level`` is True (tagging).

Constructor contract: ``__init__(self, input_spec, *, ...keyword-only config...)``; the
keyword-only arguments are the config schema (see :mod:`textmtl.registry`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..data.inputs import EncoderInput, InputKind, InputSpec


class Encoder(nn.Module):
    """Base class of all encoders. Subclasses set ``input_kind`` and ``output_dim``."""

    input_kind: ClassVar[InputKind]
    #: True when the encoder returns one vector per token (B, T, D) instead of (B, D).
    token_level: bool = False

    def __init__(self, input_spec: InputSpec) -> None:
        super().__init__()
        if input_spec.kind != self.input_kind:
            raise ValueError(
                f"{type(self).__name__} reads {self.input_kind!r} inputs, got {input_spec.kind!r}"
            )
        self.input_spec = input_spec
        self.output_dim: int = 0

    @property
    def num_stages(self) -> int:
        raise NotImplementedError

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: EncoderInput) -> torch.Tensor:
        """Run stage ``index`` on the previous stage's output (None for stage 0)."""
        raise NotImplementedError

    def forward(self, inputs: EncoderInput) -> torch.Tensor:
        hidden = None
        for index in range(self.num_stages):
            hidden = self.run_stage(index, hidden, inputs)
        return hidden
