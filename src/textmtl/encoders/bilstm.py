"""Bidirectional LSTM over word embeddings, pooled to one vector (or kept per token).

Padding-invariant without ``pack_padded_sequence``: see :mod:`textmtl.encoders.layers`.

Stages (for layer-wise mixing between task columns):

    0            embedding               (B, T, E)
    1..L         one bi-LSTM layer each  (B, T, 2H)
    L+1          pooling                 (B, 2H)     (absent when pooling="none")

References:
    Hochreiter & Schmidhuber 1997 (LSTM); Liu et al. 2016, "Recurrent Neural Network for Text
    Classification with Multi-Task Learning"; the "LSTM" baseline of the cluster-layer paper
    (``cluster-layers-ncmtl.txt``, embedding 200).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..data.inputs import InputSpec, TokenInput
from . import ENCODERS
from .base import Encoder
from .layers import (AttentionPooling, BiRNNLayer, build_embedding, check_dropout,
                     check_positive, embed_tokens, masked_pool)

_POOLINGS = ("max", "mean", "last", "attention", "none")


@ENCODERS.register("bilstm")
class BiLSTM(Encoder):
    """Bidirectional LSTM encoder over token ids, padding-invariant, one stage per layer.

    Args:
        input_spec: a ``tokens`` spec (vocabulary size, padding id, optional pre-trained vectors).
        embedding_dim: E, width of the word embeddings. Ignored when ``input_spec.pretrained``
            is given: the width is then the pre-trained vectors' width.
        hidden_dim: H, width of each LSTM direction; outputs are 2H wide.
        num_layers: stacked bi-LSTM layers.
        pooling: ``max`` / ``mean`` over real tokens, ``last`` (final states of both
            directions), ``attention`` (Yang et al. 2016 context-vector attention, width 2H),
            or ``none``: return (B, T, 2H) token vectors (``token_level``, for tagging).
        dropout: dropout on every stage output (embeddings, each layer, the pooled vector).
        freeze_embeddings: keep the embedding table fixed.

    Returns (forward):
        (B, 2H), or (B, T, 2H) with zero rows at padded positions when ``pooling="none"``.

    References:
        Hochreiter & Schmidhuber 1997; Graves & Schmidhuber 2005 (bidirectional RNNs).
    """

    input_kind = "tokens"

    def __init__(self, input_spec: InputSpec, *, embedding_dim: int = 200, hidden_dim: int = 100,
                 num_layers: int = 1,
                 pooling: Literal["max", "mean", "last", "attention", "none"] = "max",
                 dropout: float = 0.0, freeze_embeddings: bool = False) -> None:
        super().__init__(input_spec)
        check_positive("BiLSTM", embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                       num_layers=num_layers)
        check_dropout("BiLSTM", dropout)
        if pooling not in _POOLINGS:
            raise ValueError(f"'pooling' of BiLSTM must be one of {', '.join(_POOLINGS)}, "
                             f"got {pooling!r}")
        self.embedding = build_embedding(input_spec, embedding_dim, freeze_embeddings)
        width = self.embedding.embedding_dim
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            self.layers.append(BiRNNLayer(width, hidden_dim, cell="lstm"))
            width = 2 * hidden_dim
        self.pooling = pooling
        self.attention = AttentionPooling(width, width) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.token_level = pooling == "none"
        self.output_dim = width

    @property
    def num_stages(self) -> int:
        return 1 + len(self.layers) + (0 if self.pooling == "none" else 1)

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: TokenInput) -> torch.Tensor:
        lengths = inputs.lengths
        if index == 0:
            h = embed_tokens(self.embedding, inputs.token_ids, inputs.mask())  # (B, T, E)
        elif index <= len(self.layers):
            h = self.layers[index - 1](hidden, lengths)  # (B, T, 2H)
        elif index == len(self.layers) + 1 and self.pooling != "none":
            h = masked_pool(hidden, lengths, self.pooling, self.attention)  # (B, 2H)
        else:
            raise IndexError(f"BiLSTM has {self.num_stages} stages, got stage {index}")
        return self.dropout(h)
