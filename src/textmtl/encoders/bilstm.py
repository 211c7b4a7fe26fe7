"""Bidirectional LSTM over word embeddings, pooled to one vector (or kept per token).

Padding-invariant without ``pack_padded_sequence``: see :mod:`textmtl.encoders.layers`.

Stages (for layer-wise mixing between task columns), C = ``char_hidden_dim``:

    0            embedding               (B, T, E), or (B, T, E + 2C) with character features
    1..L         one bi-LSTM layer each  (B, T, 2H)
    L+1          pooling                 (B, 2H)     (absent when pooling="none")

Optional character features (``char_dim > 0``, the ``tokens`` featurizer with
``characters: true``): a character bi-LSTM reads each word and its final states of both
directions (2C) are concatenated to the word embedding, as in the tagger of the sluice-network
paper (Plank et al. 2016's hierarchical bi-LSTM: 100-d character features).

References:
    Hochreiter & Schmidhuber 1997 (LSTM); Liu et al. 2016, "Recurrent Neural Network for Text
    Classification with Multi-Task Learning"; the "LSTM" baseline of the cluster-layer paper
    (``cluster-layers-ncmtl.txt``, embedding 200); Plank et al. 2016, "Multilingual
    Part-of-Speech Tagging with Bidirectional LSTM Models and Auxiliary Loss" (character
    bi-LSTM); Ruder et al. 2019 (sluice networks).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from ..data.inputs import InputSpec, TokenInput
from . import ENCODERS
from .base import Encoder, StageInfo, SubspaceWeights
from .layers import (AttentionPooling, BiRNNLayer, build_embedding, check_dropout,
                     check_positive, embed_tokens, length_mask, masked_pool)

_POOLINGS = ("max", "mean", "last", "attention", "none")


@ENCODERS.register("bilstm")
class BiLSTM(Encoder):
    """Bidirectional LSTM encoder over token ids, padding-invariant, one stage per layer.

    Args:
        input_spec: a ``tokens`` spec (vocabulary size, padding id, optional pre-trained vectors,
            character vocabulary size when the featurizer gives character ids).
        embedding_dim: E, width of the word embeddings. Ignored when ``input_spec.pretrained``
            is given: the width is then the pre-trained vectors' width.
        hidden_dim: H, width of each LSTM direction; outputs are 2H wide.
        num_layers: stacked bi-LSTM layers.
        pooling: ``max`` / ``mean`` over real tokens, ``last`` (final states of both
            directions), ``attention`` (Yang et al. 2016 context-vector attention, width 2H),
            or ``none``: return (B, T, 2H) token vectors (``token_level``, for tagging).
        dropout: dropout on every stage output (embeddings, each layer, the pooled vector).
        freeze_embeddings: keep the word embedding table fixed (the character features train).
        char_dim: width of the character embeddings; 0 (default) uses no character features.
        char_hidden_dim: C, width of each direction of the character bi-LSTM; each word gets
            2C character features.

    Returns (forward):
        (B, 2H), or (B, T, 2H) with zero rows at padded positions when ``pooling="none"``.

    References:
        Hochreiter & Schmidhuber 1997; Graves & Schmidhuber 2005 (bidirectional RNNs);
        Plank et al. 2016 (character bi-LSTM word features).
    """

    input_kind = "tokens"

    def __init__(self, input_spec: InputSpec, *, embedding_dim: int = 200, hidden_dim: int = 100,
                 num_layers: int = 1,
                 pooling: Literal["max", "mean", "last", "attention", "none"] = "max",
                 dropout: float = 0.0, freeze_embeddings: bool = False, char_dim: int = 0,
                 char_hidden_dim: int = 50) -> None:
        super().__init__(input_spec)
        check_positive("BiLSTM", embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                       num_layers=num_layers, char_hidden_dim=char_hidden_dim)
        check_dropout("BiLSTM", dropout)
        if pooling not in _POOLINGS:
            raise ValueError(f"'pooling' of BiLSTM must be one of {', '.join(_POOLINGS)}, "
                             f"got {pooling!r}")
        if char_dim < 0:
            raise ValueError(f"'char_dim' of BiLSTM must be >= 0 (0: no character features), "
                             f"got {char_dim}")
        if char_dim > 0 and input_spec.char_vocab_size == 0:
            raise ValueError("'char_dim' of BiLSTM needs character ids: "
                             "set features.characters: true")
        self.embedding = build_embedding(input_spec, embedding_dim, freeze_embeddings)
        width = self.embedding.embedding_dim
        # built only when asked: the default model creates (and draws random numbers for)
        # exactly the modules it did before character features existed
        self.char_embedding: nn.Embedding | None = None
        self.char_layer: BiRNNLayer | None = None
        if char_dim > 0:
            self.char_embedding = nn.Embedding(input_spec.char_vocab_size, char_dim,
                                               padding_idx=0)
            self.char_layer = BiRNNLayer(char_dim, char_hidden_dim, cell="lstm")
            width += 2 * char_hidden_dim
        self.embedding_width = width
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            self.layers.append(BiRNNLayer(width, hidden_dim, cell="lstm"))
            width = 2 * hidden_dim
        self.pooling = pooling
        self.attention = AttentionPooling(width, width) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.output_dim = width

    def stage_info(self) -> list[StageInfo]:
        """Embedding (token level), one ``bilstm_i`` layer per layer, then the pooling."""
        stages = [StageInfo(kind="embedding", width=self.embedding_width, level="token",
                            name="embedding")]
        stages += [StageInfo(kind="layer", width=2 * layer.hidden_dim, level="token",
                             name=f"bilstm_{i + 1}") for i, layer in enumerate(self.layers)]
        if self.pooling != "none":
            stages.append(StageInfo(kind="pooling", width=self.output_dim, level="sequence",
                                    name=f"{self.pooling}_pooling"))
        return stages

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """Stage 0: word (and character) embeddings and the character bi-LSTM; stage i: layer
        i's two LSTMs; the pooling stage: the attention's parameters (none for max/mean/last)."""
        self._check_stage(index)
        if index == 0:
            modules = [self.embedding, self.char_embedding, self.char_layer]
        elif index <= len(self.layers):
            modules = [self.layers[index - 1]]
        else:
            modules = [self.attention]
        return [p for module in modules if module is not None for p in module.parameters()]

    def subspace_features(self, index: int, num_subspaces: int) -> torch.Tensor:
        """Subspaces of a layer (or pooled) output [forward H | backward H]: each direction's
        units are cut into S equal blocks and subspace s takes block s of BOTH directions, so
        every subspace keeps a forward and a backward part. E.g. H = 100, S = 2: subspace 1 =
        features 0-49 and 100-149, subspace 2 = 50-99 and 150-199. The embedding stage
        [words | characters] is cut into contiguous blocks (the default)."""
        if index == 0:
            return super().subspace_features(index, num_subspaces)
        self._check_stage(index)
        half = self.output_dim // 2  # H, units per direction (every layer and the pooling)
        if num_subspaces < 1 or half % num_subspaces:
            raise ValueError(f"{num_subspaces} subspaces do not split the {half} units of each "
                             f"direction of stage {self.stage_info()[index].name} of BiLSTM into "
                             "equal parts")
        block = half // num_subspaces
        units = torch.arange(half).reshape(num_subspaces, block)  # (S, H/S) within a direction
        return torch.cat([units, units + half], dim=1)  # (S, 2H/S): forward block, backward block

    def subspace_weights(self, index: int, num_subspaces: int,
                         kinds: Sequence[str] | None = None) -> list[SubspaceWeights]:
        """For a bi-LSTM layer stage, per direction: the rows of ``weight_ih`` ("input"), of
        ``weight_hh`` ("recurrent") and of the input gate's part of ``weight_hh``
        ("input_gate") that produce each subspace's units (all four gates of a unit for the
        first two; PyTorch orders the gate rows i, f, g, o). Other stages: none."""
        self._check_stage(index)
        if not 1 <= index <= len(self.layers):
            return []
        self.subspace_features(index, num_subspaces)  # checks that S divides H
        layer = self.layers[index - 1]
        hidden = layer.hidden_dim
        name = self.stage_info()[index].name
        out = []
        for rnn in (layer.forward_rnn, layer.backward_rnn):
            weight_ih, weight_hh = rnn.weight_ih_l0, rnn.weight_hh_l0  # (4H, in), (4H, H)
            # rows are gate-major (i, f, g, o), then units: a view splits them (4, S, H/S, in)
            by_gate = {"input": weight_ih.view(4, num_subspaces, hidden // num_subspaces, -1),
                       "recurrent": weight_hh.view(4, num_subspaces, hidden // num_subspaces, -1)}
            for kind in ("input", "recurrent", "input_gate"):
                if kinds is not None and kind not in kinds:
                    continue
                if kind == "input_gate":  # the input gate's rows of weight_hh: gate 0
                    blocks = list(by_gate["recurrent"][0].unbind(0))  # S x (H/S, H)
                else:  # every gate's rows of the subspace's units: (4H/S, in)
                    blocks = [by_gate[kind][:, s].reshape(-1, by_gate[kind].shape[-1])
                              for s in range(num_subspaces)]
                out.append(SubspaceWeights(kind, blocks, name))
        return out

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: TokenInput) -> torch.Tensor:
        """Run one stage (see the module docstring for the stages and their shapes)."""
        lengths = inputs.lengths
        if index == 0:
            mask = inputs.mask()  # (B, T)
            h = embed_tokens(self.embedding, inputs.token_ids, mask)  # (B, T, E)
            if self.char_embedding is not None:
                h = torch.cat([h, self._character_features(inputs, mask)], dim=2)  # (B, T, E+2C)
        elif index <= len(self.layers):
            h = self.layers[index - 1](hidden, lengths)  # (B, T, 2H)
        elif index == len(self.layers) + 1 and self.pooling != "none":
            h = masked_pool(hidden, lengths, self.pooling, self.attention)  # (B, 2H)
        else:
            raise IndexError(f"BiLSTM has {self.num_stages} stages, got stage {index}")
        return self.dropout(h)

    def _character_features(self, inputs: TokenInput, mask: torch.Tensor) -> torch.Tensor:
        """Final states of the character bi-LSTM over each real token; zero on padding.

        Only real tokens are encoded (N of the B*T slots), each distinct word once. Each word
        is a right-padded row of character ids (0 = padding), so the character bi-LSTM is
        padding-invariant in both the word width W and the sentence length T.

        Args:
            inputs: the batch; ``inputs.char_ids`` (B, T, W).
            mask: (B, T) bool, True on real tokens.

        Returns:
            (B, T, 2C) character features.
        """
        if inputs.char_ids is None:
            raise ValueError("BiLSTM with 'char_dim' > 0 reads character ids, but the batch has "
                             "none: set features.characters: true")
        assert self.char_embedding is not None and self.char_layer is not None
        batch, steps = mask.shape
        char_ids = inputs.char_ids.to(mask.device)  # (B, T, W)
        real = torch.nonzero(mask.reshape(-1)).squeeze(1)  # (N,)
        words = char_ids.reshape(batch * steps, -1).index_select(0, real)  # (N, W)
        # a word's features depend on its characters only, so each distinct word of the batch
        # is encoded once (a batch of 32 CoNLL-2000 sentences has ~650 tokens but ~375 distinct
        # words: "the", ",", "." recur); the gather back sums duplicates' gradients, as before
        distinct, occurrence = torch.unique(words, dim=0, return_inverse=True)  # (U, W), (N,)
        # characters come first in each word; >= 1 so an all-padding word still has a last state
        word_lengths = (distinct != 0).sum(dim=1).clamp(min=1)  # (U,)
        char_mask = length_mask(word_lengths, distinct.shape[1])  # (U, W)
        chars = embed_tokens(self.char_embedding, distinct, char_mask)  # (U, W, char_dim)
        states = self.char_layer(chars, word_lengths)  # (U, W, 2C)
        features = masked_pool(states, word_lengths, "last").index_select(0, occurrence)  # (N, 2C)
        full = features.new_zeros(batch * steps, features.shape[1])  # (B*T, 2C)
        return full.index_copy(0, real, features).reshape(batch, steps, -1)  # (B, T, 2C)
