"""Encoders: text features -> vectors. One file per encoder, registered here explicitly."""

from ..registry import Registry
from .base import Encoder

ENCODERS: Registry[Encoder] = Registry("encoder")

from . import mlp, bilstm, textcnn, han, minilm, vector_mlp, linear  # noqa: E402,F401  (registration side effects)

__all__ = ["ENCODERS", "Encoder"]
