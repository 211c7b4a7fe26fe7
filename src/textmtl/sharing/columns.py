"""K task columns (one encoder per task) that share their embedding stage and are mixed between
stages: the machinery of cross-stitch and sluice networks.

``tie_stage`` makes every column use the first column's parameters of one stage (the sluice
paper's networks "share an embedding layer"): the stage then runs once per batch, not once per
column. ``mix_columns`` applies one mixing matrix to the stacked column outputs of a stage,
over tasks and, with subspaces, over (task, subspace) pairs, as one matrix product for all
columns (no loop over tasks).

Glossary for shape comments: K columns (tasks), S subspaces, B batch, D stage width,
``...`` the stage's own dimensions between batch and width (T tokens for token-level stages).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..encoders.base import Encoder


def tie_stage(columns: Sequence[Encoder], stage: int) -> None:
    """Make every column use the parameters of ``columns[0]`` for stage ``stage``.

    The other columns' own copies are dropped (replaced by the first column's parameter
    objects), so the stage's parameters exist once and ``parameters()`` lists them once.

    Args:
        columns: encoders built alike (same config), so their parameter names agree.
        stage: the stage to tie (e.g. 0, the embedding).
    """
    first = dict(columns[0].named_parameters())
    for column in columns[1:]:
        own = {id(p) for p in column.stage_parameters(stage)}
        for name, parameter in list(column.named_parameters()):
            if id(parameter) in own:
                owner_name, _, leaf = name.rpartition(".")
                owner = column.get_submodule(owner_name) if owner_name else column
                setattr(owner, leaf, first[name])  # nn.LSTM's __setattr__ keeps its flat weights


def subspace_layout(features: torch.Tensor) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
    """How to bring a stage output's subspaces side by side: by a reshape when they are strided
    blocks, by a gather otherwise.

    Args:
        features: (S, D / S) feature positions of each subspace (``Encoder.subspace_features``).
    Returns:
        (groups, order, inverse). When subspace s is block s of each of G equal groups of the
        width (feature ``g*S*d + s*d + i``: contiguous blocks have G = 1, a BiLSTM's
        per-direction halves G = 2), ``(G, None, None)``: a view splits the features as
        (G, S, d), no copy. Otherwise ``(1, order, inverse)``: the permutation that lays the
        features out subspace by subspace, and its inverse.
    """
    subspaces, width = features.shape[0], features.numel()
    for groups in range(1, width // subspaces + 1):
        if (width // subspaces) % groups:
            continue
        strided = torch.arange(width).view(groups, subspaces, -1).transpose(0, 1).reshape(subspaces, -1)
        if torch.equal(features, strided):
            return groups, None, None
    order = features.reshape(-1)
    return 1, order, torch.argsort(order)


def mix_columns(alpha: torch.Tensor, outputs: torch.Tensor, num_subspaces: int = 1,
                groups: int = 1, order: torch.Tensor | None = None,
                inverse: torch.Tensor | None = None) -> torch.Tensor:
    """``h~[k, s] = sum_(j, t) alpha[(k, s), (j, t)] * h[j, t]`` for every column k, subspace s.

    Args:
        alpha: (K*S, K*S) mixing matrix; row (k, s) = k * S + s is the input of subspace s of
            column k, column (j, t) the output of subspace t of column j.
        outputs: (K, B, ..., D) the stage outputs of the K columns, stacked.
        num_subspaces: S; S = 1 is cross-stitch's K x K mixing.
        groups, order, inverse: the layout of the subspaces, from :func:`subspace_layout`.
    Returns:
        (K, B, ..., D) mixed outputs, features in their original order.
    """
    if num_subspaces == 1:
        return torch.einsum("kj,j...->k...", alpha, outputs)  # (K, B, ..., D)
    columns = outputs.shape[0]
    x = outputs if order is None else outputs.index_select(-1, order)  # gathered: subspace-major
    x = x.unflatten(-1, (groups, num_subspaces, -1))  # (K, B, ..., G, S, d): a view
    blocks = alpha.view(columns, num_subspaces, columns, num_subspaces)  # (K, S, K, S)
    mixed = torch.einsum("ksjt,j...td->k...sd", blocks, x).flatten(-3)  # (K, B, ..., D)
    return mixed if inverse is None else mixed.index_select(-1, inverse)
