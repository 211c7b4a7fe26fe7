"""Kim (2014) convolutional sentence/document encoder with padding-invariant max-over-time.

Stages (for layer-wise mixing between task columns):

    0   embedding                                       (B, T, E)
    1   convolutions + ReLU + masked max-over-time      (B, F * len(filter_widths))

References:
    Kim 2014, "Convolutional Neural Networks for Sentence Classification"; the "TextCNN"
    baseline of the cluster-layer paper (``cluster-layers-ncmtl.txt``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.inputs import InputSpec, TokenInput
from . import ENCODERS
from .base import Encoder, StageInfo
from .layers import build_embedding, check_dropout, check_positive, embed_tokens, length_mask


@ENCODERS.register("textcnn")
class TextCNN(Encoder):
    """Convolutions of several widths over word embeddings, max-pooled over real windows.

    Padding invariance: embeddings at padded positions are zero, and the input is extended by
    ``max(filter_widths) - 1`` zero vectors, so a window that runs past the end of a sequence
    sees exactly what it would see in any longer padding. Only windows starting before
    ``max(length - width + 1, 1)`` are pooled: windows fully inside the sequence, or for a
    sequence shorter than the filter, the single window at its start (then zero-extended).

    Args:
        input_spec: a ``tokens`` spec.
        embedding_dim: E (ignored when ``input_spec.pretrained`` is given: the vectors' width).
        filter_widths: convolution widths (in tokens).
        num_filters: F, filters per width.
        dropout: dropout on the embeddings and on the pooled vector (Kim uses 0.5 on the
            pooled vector).
        freeze_embeddings: keep the embedding table fixed (Kim's "CNN-static").

    Returns (forward):
        (B, F * len(filter_widths)).

    References:
        Kim 2014, "Convolutional Neural Networks for Sentence Classification".
    """

    input_kind = "tokens"

    def __init__(self, input_spec: InputSpec, *, embedding_dim: int = 300,
                 filter_widths: list[int] = [3, 4, 5], num_filters: int = 100,
                 dropout: float = 0.5, freeze_embeddings: bool = False) -> None:
        super().__init__(input_spec)
        check_positive("TextCNN", embedding_dim=embedding_dim, num_filters=num_filters)
        if not filter_widths or any(w <= 0 for w in filter_widths):
            raise ValueError(
                f"'filter_widths' of TextCNN must be a non-empty list of widths > 0, "
                f"got {filter_widths}"
            )
        check_dropout("TextCNN", dropout)
        self.embedding = build_embedding(input_spec, embedding_dim, freeze_embeddings)
        width = self.embedding.embedding_dim
        self.filter_widths = list(filter_widths)
        self.convolutions = nn.ModuleList(nn.Conv1d(width, num_filters, w) for w in filter_widths)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = num_filters * len(filter_widths)

    def stage_info(self) -> list[StageInfo]:
        """The embedding (token level), then convolutions + max-over-time (a pooling stage:
        it reduces the token level to one vector per row)."""
        return [StageInfo(kind="embedding", width=self.embedding.embedding_dim, level="token",
                          name="embedding"),
                StageInfo(kind="pooling", width=self.output_dim, level="sequence",
                          name="convolution_max_pooling")]

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """Stage 0: the embedding table; stage 1: every convolution."""
        self._check_stage(index)
        module = self.embedding if index == 0 else self.convolutions
        return list(module.parameters())

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: TokenInput) -> torch.Tensor:
        """Stage 0: (B, T, E) embeddings; stage 1: (B, F * len(filter_widths)) pooled features."""
        mask = inputs.mask()  # (B, T)
        if index == 0:
            return self.dropout(embed_tokens(self.embedding, inputs.token_ids, mask))  # (B, T, E)
        if index != 1:
            raise IndexError(f"TextCNN has 2 stages, got stage {index}")
        # re-mask: a mixed stage-0 output must still be zero on padding
        x = hidden * mask[:, :, None].to(hidden.dtype)  # (B, T, E)
        x = F.pad(x.transpose(1, 2), (0, max(self.filter_widths) - 1))  # (B, E, T + w_max - 1)
        lengths = inputs.lengths.to(x.device)
        pooled = []
        for width, convolution in zip(self.filter_widths, self.convolutions):
            c = torch.relu(convolution(x))  # (B, F, T + w_max - w)
            valid = length_mask(torch.clamp(lengths - width + 1, min=1), c.shape[2])  # (B, T')
            c = c.masked_fill(~valid[:, None, :], float("-inf"))
            pooled.append(c.max(dim=2).values)  # (B, F)
        return self.dropout(torch.cat(pooled, dim=1))  # (B, F * len(filter_widths))
