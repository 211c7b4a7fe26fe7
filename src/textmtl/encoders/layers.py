"""Building blocks shared by the sequence encoders: embeddings, a padding-invariant
bidirectional RNN, and masked pooling (max, mean, last, attention).

Padding invariance by construction
----------------------------------
Inputs are right-padded (B, T) batches with true lengths (B,). The bidirectional RNN does not
use ``pack_padded_sequence`` (slow on CPU: measured ~330 s vs ~85 s per FDU-MTL epoch, see
``benchmarks/bilstm_epoch.py``). Instead:

* the forward direction runs a unidirectional RNN over the padded batch as is: its output at
  position t < length only reads positions <= t, which are all real tokens;
* the backward direction runs a second unidirectional RNN over a per-sequence reversed copy
  (only the first ``length`` positions of each row are reversed, with a gather index), so the
  real tokens again come first and the padding last; its outputs are reversed back the same way.

So outputs at real positions never see padding, and every pooling masks padded positions: a
document encodes the same whatever batch it is in. Padded positions of every (B, T, D) output are
set to zero, so stage outputs mixed between columns (cross-stitch, sluice) stay clean too.

Glossary for shape comments: B batch, T tokens, S sentences, E embedding, H hidden (one
direction), D any feature width.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..data.inputs import InputSpec

RNNCell = Literal["lstm", "gru"]
Pooling = Literal["max", "mean", "last", "attention", "none"]


def length_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """(B, T) bool mask, True on the first ``lengths[b]`` positions of row b.

    Args:
        lengths: (B,) long tensor of true lengths.
        max_length: T, the padded length.

    Returns:
        (B, T) bool tensor on the device of ``lengths``.
    """
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` positions of each row of ``x``; padding stays in place.

    Applying it twice is the identity, so the same call reverses outputs back.

    Args:
        x: (B, T, D) right-padded sequences.
        lengths: (B,) true lengths (0 allowed: the row is left as is).

    Returns:
        (B, T, D) tensor with row b = x[b, length-1::-1] followed by x[b, length:].
    """
    batch, steps = x.shape[0], x.shape[1]
    positions = torch.arange(steps, device=x.device).expand(batch, steps)  # (B, T)
    lengths = lengths.to(x.device)[:, None]  # (B, 1)
    # position t < length reads length-1-t; padded positions read themselves
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))  # (B, T, D)


class BiRNNLayer(nn.Module):
    """One bidirectional RNN layer made of two unidirectional RNNs (padding-invariant).

    Args:
        input_dim: width of the input vectors.
        hidden_dim: H, width of each direction (output is 2H).
        cell: ``"lstm"`` or ``"gru"``.

    References:
        Graves & Schmidhuber 2005 (bidirectional RNNs); the reversal trick is ours (see module
        docstring).
    """

    def __init__(self, input_dim: int, hidden_dim: int, cell: RNNCell = "lstm") -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.forward_rnn = rnn(input_dim, hidden_dim, batch_first=True)
        self.backward_rnn = rnn(input_dim, hidden_dim, batch_first=True)
        self.hidden_dim = hidden_dim

    #: rows per length group when a batch is split (see ``forward``); None disables grouping
    group_rows: int | None = 64

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encode right-padded sequences.

        A large batch whose rows differ much in length (e.g. the combined batch of 16 tasks of
        the ``every_task`` sampler, padded to its longest row) is encoded in groups of
        ``group_rows`` rows of similar length, each cut to its own longest row: the RNN then
        runs over far fewer padded steps. Outputs are the same, since padding never reaches a
        real position.

        Args:
            x: (B, T, D) inputs; values at padded positions are ignored.
            lengths: (B,) true lengths.

        Returns:
            (B, T, 2H): [forward state, backward state] per position, zero at padded positions.
        """
        batch, steps = x.shape[0], x.shape[1]
        lengths = lengths.to(x.device)
        group = self.group_rows
        # group only when it saves real work: at least a quarter of the padded steps
        if group is None or batch <= group or int(lengths.sum()) > 0.75 * batch * steps:
            return self._encode(x, lengths)
        order = torch.argsort(lengths, descending=True)  # (B,) longest first
        pieces = []
        for start in range(0, batch, group):
            rows = order[start: start + group]
            longest = max(int(lengths[rows].max()), 1)
            piece = self._encode(x[rows, :longest], lengths[rows])  # (G, T_g, 2H)
            pieces.append(nn.functional.pad(piece, (0, 0, 0, steps - longest)))  # (G, T, 2H)
        return torch.cat(pieces)[torch.argsort(order)]  # (B, T, 2H), original row order

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        forward_out, _ = self.forward_rnn(x)  # (B, T, H)
        backward_out, _ = self.backward_rnn(reverse_padded(x, lengths))  # (B, T, H), reversed time
        backward_out = reverse_padded(backward_out, lengths)  # (B, T, H), original time
        out = torch.cat([forward_out, backward_out], dim=2)  # (B, T, 2H)
        mask = length_mask(lengths, x.shape[1])  # (B, T)
        # zero padding outputs: they are garbage (RNN state run over padding) and must not leak
        return out * mask[:, :, None].to(out.dtype)


class AttentionPooling(nn.Module):
    """Additive attention with a learned context vector, masked (Yang et al. 2016, eq. 5-7).

    ``u_t = tanh(W h_t + b)``, ``a_t = softmax_t(u_t . u_w)`` over real positions,
    output ``sum_t a_t h_t``.

    Args:
        input_dim: D, width of the vectors attended over.
        attention_dim: width of the hidden attention layer (``u_t``).

    References:
        Yang et al. 2016, "Hierarchical Attention Networks for Document Classification".
    """

    def __init__(self, input_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.projection = nn.Linear(input_dim, attention_dim)
        self.context = nn.Parameter(torch.empty(attention_dim).uniform_(-0.1, 0.1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: h (B, T, D); mask (B, T) bool with at least one True per row.

        Returns:
            (B, D) attention-weighted sums.
        """
        scores = torch.tanh(self.projection(h)) @ self.context  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, T), zero on padding
        return torch.bmm(weights[:, None, :], h)[:, 0]  # (B, D)


def masked_pool(h: torch.Tensor, lengths: torch.Tensor, pooling: str,
                attention: AttentionPooling | None = None) -> torch.Tensor:
    """Pool (B, T, D) sequence outputs of a :class:`BiRNNLayer` over real positions only.

    Args:
        h: (B, T, 2H) outputs, forward half first.
        lengths: (B,) true lengths, all >= 1.
        pooling: ``max``, ``mean``, ``last`` (forward state at the last token + backward state
            at the first token, i.e. the final states of both directions) or ``attention``.
        attention: the attention module when ``pooling == "attention"``.

    Returns:
        (B, D) pooled vectors.
    """
    mask = length_mask(lengths.to(h.device), h.shape[1])  # (B, T)
    if pooling == "max":
        return h.masked_fill(~mask[:, :, None], float("-inf")).max(dim=1).values  # (B, D)
    if pooling == "mean":
        total = (h * mask[:, :, None].to(h.dtype)).sum(dim=1)  # (B, D)
        return total / lengths.to(h.device, h.dtype)[:, None]
    if pooling == "last":
        half = h.shape[2] // 2
        last = (lengths.to(h.device) - 1)[:, None, None].expand(-1, 1, half)  # (B, 1, H)
        forward_final = h[:, :, :half].gather(1, last)[:, 0]  # (B, H)
        backward_final = h[:, 0, half:]  # (B, H): backward RNN ends at the first token
        return torch.cat([forward_final, backward_final], dim=1)  # (B, 2H)
    if pooling == "attention":
        assert attention is not None
        return attention(h, mask)  # (B, D)
    raise ValueError(f"unknown pooling {pooling!r}")


def build_embedding(input_spec: InputSpec, embedding_dim: int, freeze: bool) -> nn.Embedding:
    """Word embedding table for a token vocabulary, from pre-trained vectors when given.

    Args:
        input_spec: ``size`` ids (padding and OOV included); ``pretrained`` (size, E) or None.
        embedding_dim: E when there are no pre-trained vectors (ignored otherwise: the width is
            the vectors' width).
        freeze: keep the table fixed during training.

    Returns:
        ``nn.Embedding`` whose padding row is zero and receives no gradient.
    """
    if input_spec.pretrained is not None:
        weights = torch.as_tensor(input_spec.pretrained, dtype=torch.float32).clone()
        if weights.shape[0] != input_spec.size:
            raise ValueError(
                f"pre-trained embedding matrix has {weights.shape[0]} rows, "
                f"but the vocabulary has {input_spec.size} ids"
            )
        weights[input_spec.padding_id] = 0.0
        embedding = nn.Embedding.from_pretrained(weights, freeze=freeze,
                                                 padding_idx=input_spec.padding_id)
    else:
        embedding = nn.Embedding(input_spec.size, embedding_dim, padding_idx=input_spec.padding_id)
        embedding.weight.requires_grad_(not freeze)
    return embedding


def embed_tokens(embedding: nn.Embedding, token_ids: torch.Tensor,
                 mask: torch.Tensor) -> torch.Tensor:
    """Look up ids and zero the padded positions (robust even if the padding row was changed).

    Args:
        embedding: the table.
        token_ids: (..., T) ids.
        mask: (..., T) bool, True on real tokens.

    Returns:
        (..., T, E) vectors, zero at padded positions.
    """
    return embedding(token_ids) * mask[..., None].to(embedding.weight.dtype)


def check_positive(owner: str, **values: float) -> None:
    """Raise ``ValueError`` naming the first parameter that is not > 0."""
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"'{name}' of {owner} must be > 0, got {value}")


def check_dropout(owner: str, dropout: float) -> None:
    """Raise ``ValueError`` unless 0 <= dropout < 1."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"'dropout' of {owner} must be in [0, 1), got {dropout}")


__all__ = [
    "AttentionPooling", "BiRNNLayer", "Pooling", "RNNCell", "build_embedding", "check_dropout",
    "check_positive", "embed_tokens", "length_mask", "masked_pool", "reverse_padded",
]
