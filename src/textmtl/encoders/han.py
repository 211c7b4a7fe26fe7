"""Hierarchical Attention Network: words -> sentence vectors -> document vector.

A word-level bidirectional RNN with attention turns each sentence into a vector; a
sentence-level bidirectional RNN with attention turns the sentence vectors into the document
vector. Both levels are padding-invariant (per-sequence reversed inputs for the backward
direction, masked attention; see :mod:`textmtl.encoders.layers`). Padded sentence slots are
skipped at the word level (not computed) and produce zero vectors.

Stages (for layer-wise mixing between task columns), Lw word layers and Ls sentence layers:

    0                   word embedding                 (B, S, T, E)
    1..Lw               word bi-RNN layer each         (B, S, T, 2Hw)
    Lw+1                word attention                 (B, S, 2Hw)   sentence vectors
    Lw+2..Lw+Ls+1       sentence bi-RNN layer each     (B, S, 2Hs)
    Lw+Ls+2             sentence attention             (B, 2Hs)      document vector

References:
    Yang et al. 2016, "Hierarchical Attention Networks for Document Classification" (GRU of 50
    per direction, attention width 100, embedding 200); the HAN base model of the cluster-layer
    paper (``cluster-layers-ncmtl.txt``: two word-level and two sentence-level LSTM layers as
    hard layers, i.e. ``cell="lstm", num_word_layers=2, num_sentence_layers=2``).
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import nn

from ..data.inputs import InputSpec, SentenceInput
from . import ENCODERS
from .base import Encoder, StageInfo
from .layers import (AttentionPooling, BiRNNLayer, build_embedding, check_dropout,
                     check_positive, embed_tokens, length_mask)


@ENCODERS.register("han")
class HAN(Encoder):
    """Hierarchical attention network over documents split into sentences.

    Args:
        input_spec: a ``sentences`` spec (vocabulary, padding id, optional pre-trained vectors).
        embedding_dim: E (ignored when ``input_spec.pretrained`` is given: the vectors' width).
        word_hidden_dim: Hw, width of each direction of the word-level RNN.
        sentence_hidden_dim: Hs, width of each direction of the sentence-level RNN.
        word_attention_dim: width of the word attention layer.
        sentence_attention_dim: width of the sentence attention layer.
        num_word_layers: stacked word-level bi-RNN layers.
        num_sentence_layers: stacked sentence-level bi-RNN layers.
        cell: ``gru`` (Yang et al.) or ``lstm`` (the cluster-layer paper's base model).
        dropout: dropout on every stage output.
        freeze_embeddings: keep the embedding table fixed.

    Returns (forward):
        (B, 2Hs) document vectors.

    References:
        Yang et al. 2016, "Hierarchical Attention Networks for Document Classification".
    """

    input_kind = "sentences"

    def __init__(self, input_spec: InputSpec, *, embedding_dim: int = 200,
                 word_hidden_dim: int = 50, sentence_hidden_dim: int = 50,
                 word_attention_dim: int = 100, sentence_attention_dim: int = 100,
                 num_word_layers: int = 1, num_sentence_layers: int = 1,
                 cell: Literal["gru", "lstm"] = "gru", dropout: float = 0.0,
                 freeze_embeddings: bool = False) -> None:
        super().__init__(input_spec)
        check_positive("HAN", embedding_dim=embedding_dim, word_hidden_dim=word_hidden_dim,
                       sentence_hidden_dim=sentence_hidden_dim,
                       word_attention_dim=word_attention_dim,
                       sentence_attention_dim=sentence_attention_dim,
                       num_word_layers=num_word_layers, num_sentence_layers=num_sentence_layers)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"'cell' of HAN must be one of gru, lstm, got {cell!r}")
        check_dropout("HAN", dropout)
        self.embedding = build_embedding(input_spec, embedding_dim, freeze_embeddings)
        width = self.embedding.embedding_dim
        self.word_layers = nn.ModuleList()
        for _ in range(num_word_layers):
            self.word_layers.append(BiRNNLayer(width, word_hidden_dim, cell=cell))
            width = 2 * word_hidden_dim
        self.word_attention = AttentionPooling(width, word_attention_dim)
        self.sentence_layers = nn.ModuleList()
        for _ in range(num_sentence_layers):
            self.sentence_layers.append(BiRNNLayer(width, sentence_hidden_dim, cell=cell))
            width = 2 * sentence_hidden_dim
        self.sentence_attention = AttentionPooling(width, sentence_attention_dim)
        self.dropout = nn.Dropout(dropout)
        self.cell = cell
        self.output_dim = width

    def stage_info(self) -> list[StageInfo]:
        """Word embedding and word layers (sentence_token level), word attention (to sentence
        vectors), sentence layers (sentence level), sentence attention (to the document)."""
        rnn = f"bi{self.cell}"
        stages = [StageInfo(kind="embedding", width=self.embedding.embedding_dim,
                            level="sentence_token", name="embedding")]
        stages += [StageInfo(kind="layer", width=2 * layer.hidden_dim, level="sentence_token",
                             name=f"word_{rnn}_{i + 1}")
                   for i, layer in enumerate(self.word_layers)]
        word_width = 2 * self.word_layers[-1].hidden_dim
        stages.append(StageInfo(kind="pooling", width=word_width, level="sentence",
                                name="word_attention"))
        stages += [StageInfo(kind="layer", width=2 * layer.hidden_dim, level="sentence",
                             name=f"sentence_{rnn}_{i + 1}")
                   for i, layer in enumerate(self.sentence_layers)]
        stages.append(StageInfo(kind="pooling", width=self.output_dim, level="sequence",
                                name="sentence_attention"))
        return stages

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """The parameters of the stage's module (embedding, a bi-RNN layer or an attention)."""
        self._check_stage(index)
        modules = ([self.embedding] + list(self.word_layers) + [self.word_attention]
                   + list(self.sentence_layers) + [self.sentence_attention])
        return list(modules[index].parameters())

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: SentenceInput) -> torch.Tensor:
        """Run one stage (see the module docstring for the stages and their shapes)."""
        num_word = len(self.word_layers)
        if index == 0:
            mask = inputs.sentence_lengths.to(inputs.token_ids.device)[:, :, None] > torch.arange(
                inputs.token_ids.shape[2], device=inputs.token_ids.device)  # (B, S, T)
            h = embed_tokens(self.embedding, inputs.token_ids, mask)  # (B, S, T, E)
        elif index <= num_word:
            layer = self.word_layers[index - 1]
            h = self._per_sentence(hidden, inputs, lambda x, n: layer(x, n))  # (B, S, T, 2Hw)
        elif index == num_word + 1:
            h = self._per_sentence(hidden, inputs, self._attend_words)  # (B, S, 2Hw)
        elif index <= num_word + 1 + len(self.sentence_layers):
            layer = self.sentence_layers[index - num_word - 2]
            h = layer(hidden, inputs.num_sentences)  # (B, S, 2Hs)
        elif index == self.num_stages - 1:
            sentence_mask = length_mask(inputs.num_sentences.to(hidden.device), hidden.shape[1])
            h = self.sentence_attention(hidden, sentence_mask)  # (B, 2Hs)
        else:
            raise IndexError(f"HAN has {self.num_stages} stages, got stage {index}")
        return self.dropout(h)

    def _attend_words(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.word_attention(x, length_mask(lengths, x.shape[1]))  # (N, 2Hw)

    @staticmethod
    def _per_sentence(hidden: torch.Tensor, inputs: SentenceInput,
                      function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                      ) -> torch.Tensor:
        """Apply ``function(x (N, T, D), lengths (N,))`` to the real sentences only.

        Padded sentence slots are not computed (saves the word-level RNN most of its work on
        documents of uneven sentence counts) and come out as zeros.

        Returns:
            (B, S, T, D') or (B, S, D'), as ``function`` returns (N, T, D') or (N, D').
        """
        batch, sentences, steps = hidden.shape[0], hidden.shape[1], hidden.shape[2]
        lengths = inputs.sentence_lengths.to(hidden.device).reshape(-1)  # (B*S,)
        real = torch.nonzero(lengths > 0).squeeze(1)  # (N,)
        flat = hidden.reshape(batch * sentences, steps, hidden.shape[3])  # (B*S, T, D)
        out = function(flat.index_select(0, real), lengths.index_select(0, real))  # (N, [T,] D')
        full = out.new_zeros((batch * sentences,) + tuple(out.shape[1:]))  # (B*S, [T,] D')
        full = full.index_copy(0, real, out)
        return full.reshape((batch, sentences) + tuple(out.shape[1:]))  # (B, S, [T,] D')
