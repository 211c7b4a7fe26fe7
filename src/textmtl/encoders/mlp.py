"""Multi-layer perceptron over sparse TF-IDF rows.

The first layer is a bag lookup (``F.embedding_bag`` with the TF-IDF values as weights), which
equals ``x @ W`` for a sparse row ``x`` without densifying the (B, V) input.

References:
    Bingel & Søgaard style TF-IDF MLPs in "When is multitask learning effective?"
    (``when-mtl-works-20newsgroups.txt``: two hidden layers of 100).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.inputs import InputSpec, TfidfInput
from . import ENCODERS
from .base import Encoder, StageInfo, SubspaceWeights


@ENCODERS.register("mlp")
class MLP(Encoder):
    """TF-IDF MLP: one stage per hidden layer (ReLU, dropout).

    Args:
        input_spec: a ``tfidf`` spec; ``size`` is the number of features V.
        hidden_dims: widths of the hidden layers.
        dropout: dropout after each hidden layer.
    """

    input_kind = "tfidf"

    def __init__(self, input_spec: InputSpec, *, hidden_dims: list[int] = [100, 100],
                 dropout: float = 0.0) -> None:
        super().__init__(input_spec)
        if not hidden_dims or any(h <= 0 for h in hidden_dims):
            raise ValueError(f"'hidden_dims' of MLP must be positive widths, got {hidden_dims}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'dropout' of MLP must be in [0, 1), got {dropout}")
        # (V, H0) input weights as a bag table; initialised like nn.Linear(V, H0)
        bound = 1.0 / math.sqrt(input_spec.size)
        self.input_weight = nn.Parameter(torch.empty(input_spec.size, hidden_dims[0]).uniform_(-bound, bound))
        self.input_bias = nn.Parameter(torch.empty(hidden_dims[0]).uniform_(-bound, bound))
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(hidden_dims[:-1], hidden_dims[1:])
        )
        self.dropout = nn.Dropout(dropout)
        self.output_dim = hidden_dims[-1]

    def stage_info(self) -> list[StageInfo]:
        """One ``layer`` stage per hidden layer, ``hidden_1`` (the bag lookup) first."""
        widths = [self.input_bias.shape[0]] + [h.out_features for h in self.hidden_layers]
        return [StageInfo(kind="layer", width=w, level="sequence", name=f"hidden_{i + 1}")
                for i, w in enumerate(widths)]

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """Stage 0: the (V, H0) bag table and its bias; stage i: ``hidden_layers[i - 1]``."""
        self._check_stage(index)
        if index == 0:
            return [self.input_weight, self.input_bias]
        return list(self.hidden_layers[index - 1].parameters())

    def subspace_weights(self, index: int, num_subspaces: int,
                         kinds: Sequence[str] | None = None) -> list[SubspaceWeights]:
        """The "input" weights of each subspace's units (contiguous blocks of the layer): rows
        of the layer's weight, (H_i / S, input width) each; the bag table is stored (V, H0),
        so its blocks are transposed views."""
        if kinds is not None and "input" not in kinds:
            return []
        width = self.subspace_features(index, num_subspaces).shape[1]  # contiguous blocks of H_i / S
        name = self.stage_info()[index].name
        if index == 0:  # the bag table is (V, H0): a subspace is a block of its columns
            blocks = [self.input_weight[:, s * width:(s + 1) * width].t() for s in range(num_subspaces)]
        else:
            weight = self.hidden_layers[index - 1].weight  # (H_i, H_{i-1})
            blocks = [weight[s * width:(s + 1) * width] for s in range(num_subspaces)]
        return [SubspaceWeights("input", blocks, name)]

    def run_stage(self, index: int, hidden: torch.Tensor | None, inputs: TfidfInput) -> torch.Tensor:
        """Stage 0 reads the sparse rows, stage i the (B, H_{i-1}) output of stage i - 1.

        Returns:
            (B, H_i) after ReLU and dropout.
        """
        self._check_stage(index)
        if index == 0:
            h = F.embedding_bag(inputs.indices, self.input_weight, inputs.offsets, mode="sum",
                                per_sample_weights=inputs.weights)  # (B, H0) = x @ W
            h = h + self.input_bias
        else:
            h = self.hidden_layers[index - 1](hidden)  # (B, H_i)
        return self.dropout(torch.relu(h))
