"""Batched encoder inputs and the feature tables they are gathered from.

An encoder declares the ``input_kind`` it reads. A featurizer of that kind turns the texts of
every task into one :class:`FeatureTable` per split (rows of all tasks stacked, so a step that
trains on several tasks gathers one combined batch with a single index array). Gathering rows
returns one of the input dataclasses below.

Glossary for shape comments: B batch, T tokens, S sentences, V vocabulary/features.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, Protocol

import numpy as np
import torch

InputKind = Literal["tfidf", "tokens", "sentences", "wordpiece", "vector"]


@dataclass
class InputSpec:
    """What an encoder needs to know about its input, fixed when features are fitted.

    Attributes:
        kind: the input kind.
        size: number of TF-IDF features, width of dense vectors, or vocabulary size (ids include
            padding and OOV).
        padding_id: id of the padding token (token inputs).
        pretrained: optional (size, E) float tensor of pre-trained word vectors, row = id.
        char_vocab_size: number of character ids (padding 0 and OOV 1 included) when the
            featurizer gives per-token character ids (``TokenInput.char_ids``); 0 when it does not.
    """

    kind: InputKind
    size: int
    padding_id: int = 0
    pretrained: torch.Tensor | None = None
    char_vocab_size: int = 0


class _ToDevice:
    def to(self, device: torch.device | str):
        """The same input with every tensor on ``device`` (optional fields may be None)."""
        return replace(self, **{f.name: None if getattr(self, f.name) is None
                                else getattr(self, f.name).to(device) for f in fields(self)})


@dataclass
class TfidfInput(_ToDevice):
    """Sparse TF-IDF rows in bag form (the CSR arrays), read with ``F.embedding_bag``.

    Row b holds features ``indices[offsets[b]:offsets[b+1]]`` with values ``weights[...]``.
    The bag form keeps 10,000+-wide rows sparse on CPU and CUDA, and its backward pass is
    several times faster than a sparse-matrix product on this CPU (measured: 7 ms vs 50 ms for
    512 rows x 50,000 features x 100 hidden).
    """

    indices: torch.Tensor  # (N,) long, feature ids of all rows concatenated
    offsets: torch.Tensor  # (B,) long, start of each row in ``indices``
    weights: torch.Tensor  # (N,) float, TF-IDF values

    @property
    def batch_size(self) -> int:
        return self.offsets.shape[0]

    def select(self, rows: torch.Tensor) -> "TfidfInput":
        """The sub-batch of ``rows`` (a (R,) long tensor), in that order."""
        ends = torch.cat([self.offsets[1:], self.offsets.new_tensor([self.indices.shape[0]])])
        sizes = (ends - self.offsets)[rows]  # (R,) features per selected row
        starts = self.offsets[rows]
        new_offsets = torch.cumsum(sizes, 0) - sizes
        # position of every kept feature: its row's old start + its rank within the row
        within = torch.arange(int(sizes.sum()), device=rows.device) - torch.repeat_interleave(new_offsets, sizes)
        positions = torch.repeat_interleave(starts, sizes) + within
        return TfidfInput(self.indices[positions], new_offsets, self.weights[positions])


@dataclass
class TokenInput(_ToDevice):
    """Right-padded token ids (B, T) and true lengths (B,). Every length is >= 1.

    ``char_ids`` (optional, the ``tokens`` featurizer with ``characters: true``): (B, T, W)
    int64 character ids of each token, right-padded with 0 within each word (W = the longest
    word of the batch) and 0 at padded token positions; every real token has >= 1 character.
    """

    token_ids: torch.Tensor
    lengths: torch.Tensor
    char_ids: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.token_ids.shape[0]

    def select(self, rows: torch.Tensor) -> "TokenInput":
        """The sub-batch of ``rows`` (a (R,) long tensor), in that order."""
        lengths = self.lengths[rows]
        # trim to the longest selected row; right padding beyond it carries nothing
        steps = int(lengths.max())
        char_ids = None
        if self.char_ids is not None:
            char_ids = self.char_ids[rows, :steps]  # (R, T', W)
            # and to the longest selected word
            used = (char_ids != 0).flatten(0, 1).any(dim=0)  # (W,)
            width = int(used.nonzero().max()) + 1 if bool(used.any()) else 1
            char_ids = char_ids[:, :, :width]
        return TokenInput(self.token_ids[rows, :steps], lengths, char_ids)

    def mask(self) -> torch.Tensor:
        """(B, T) bool, True on real tokens."""
        positions = torch.arange(self.token_ids.shape[1], device=self.token_ids.device)
        return positions[None, :] < self.lengths[:, None]


@dataclass
class SentenceInput(_ToDevice):
    """Documents as sentences: ids (B, S, T), sentence lengths (B, S), sentence counts (B,).

    Padded sentences have length 0; every document has at least one sentence of length >= 1.
    """

    token_ids: torch.Tensor
    sentence_lengths: torch.Tensor
    num_sentences: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.token_ids.shape[0]

    def select(self, rows: torch.Tensor) -> "SentenceInput":
        return SentenceInput(self.token_ids[rows], self.sentence_lengths[rows],
                             self.num_sentences[rows])


@dataclass
class VectorInput(_ToDevice):
    """Dense feature rows (B, D), e.g. frozen sentence embeddings (the ``vector`` featurizer)."""

    values: torch.Tensor  # (B, D) float

    @property
    def batch_size(self) -> int:
        return self.values.shape[0]

    def select(self, rows: torch.Tensor) -> "VectorInput":
        return VectorInput(self.values[rows])


EncoderInput = TfidfInput | TokenInput | SentenceInput | VectorInput


class FeatureTable(Protocol):
    """Featurized rows of one split (all tasks stacked); ``gather`` builds a batch."""

    def __len__(self) -> int: ...

    def gather(self, rows: np.ndarray) -> EncoderInput: ...


class Featurizer(Protocol):
    """Fitted once on the training texts of all tasks (one vocabulary across tasks)."""

    input_kind: InputKind

    def fit(self, texts: list) -> "Featurizer": ...

    def transform(self, texts: list) -> FeatureTable: ...

    def spec(self) -> InputSpec: ...

    def state(self) -> dict:
        """JSON-serialisable settings and fitted state (``from_state`` restores the featurizer)."""
        ...

    @classmethod
    def from_state(cls, state: dict) -> "Featurizer": ...
