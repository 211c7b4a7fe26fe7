"""Cluster layers (NCMTL): between the shared encoder and the task heads, layers whose tasks are
grouped by their weights, every group sharing one set of weights.

The network is a hard-shared encoder (its pooled sequence features, or its token features for
tagging tasks), then L cluster layers (default widths 32, 32, 16 with 3, 5 and 10 clusters),
then one output layer per task (:class:`~textmtl.sharing.heads.TaskHeads`, ``head_hidden``
honoured). Every task owns a linear layer (weights and bias) in every cluster layer; layer l
stores the K tasks' weights as one (K, out, in) tensor, and one batched matmul runs every row
through its own task's layer (:func:`grouped_linear`, no loop over tasks). Activation after
each cluster layer: ReLU (default; the paper does not say, and the toolkit's other hidden layers
and MLP heads use it) or tanh.

Algorithm 1 of the paper, after every optimiser step (``on_step_end``) and for each cluster
layer: k-means++ groups the K tasks by their flattened weights (weights and bias) into
``min(clusters, K)`` clusters, and every task's weights are replaced by its cluster's centre,
so the tasks of a cluster hold equal weights. After ``freeze_after_epochs`` epochs
(``on_epoch_end``) the assignments are frozen: the layer then stores only the cluster centres,
(C, out, in) with an assignment index (K,), so its parameter count drops from K to C layers and
the gradients of all tasks of a cluster accumulate in their one centre.

Choices the paper leaves open (each tested in ``tests/core/test_cluster_layers.py``):

- **k-means.** On the K x K Gram matrix of the task vectors (float64, computed where the
  weights are; the clustering itself in NumPy on the host):
  k-means++ seeding (Arthur & Vassilvitskii 2007; the uniforms drawn from
  ``TrainState.generator``, so a seeded run clusters the same way), then Lloyd iterations until
  the assignment is stable (at most :data:`LLOYD_ITERATIONS`). With the Gram matrix every
  distance to a centre is a K x C expression, so the width of the layer only enters once, in
  one matmul. An empty cluster takes the task farthest from its centre (from a cluster with
  more than one task), so every cluster has a task whenever at least C task vectors differ.
  Cluster ids are renamed to overlap most with the previous clustering (Hungarian matching),
  so an id means the same group from step to step and "a task changed cluster" is counted
  against the previous clustering (the first clustering numbers clusters by their first task).
  With ``clusters >= K`` every task is its own cluster and nothing is clustered or replaced.
  Measured per call for 14 tasks (one CPU thread on a busy 2-core machine): k-means 0.28 ms
  for a 32-wide layer from 256 features (P = 8224), 0.13-0.14 ms for the 32- and 16-wide
  layers; the whole re-clustering with the replacement of the weights and their Adam state
  1.1, 0.45 and 0.4 ms. Per training step (every task, 32 rows each, Adam) that made NCMTL
  1.04 x hard sharing with a BiLSTM encoder (200 ms steps) and 1.5 x with a small TF-IDF MLP
  (8 ms steps; the three cluster layers alone, unclustered, 1.1 x).
- **The clustering loss** ``L_C = sum_l sum_k ||w_lk - c_l,r(k)||^2`` (squared distance of each
  task's weights to its cluster centre, summed over tasks and layers) is a *penalty*
  (``penalties()``, key ``clustering``, weighted by ``cluster_loss_weight``): it depends on the
  parameters only, so it is computed once per step, not once per forward. Because the
  replacement sets every task to its centre, measured against the latest clustering it would
  be 0 with no gradient at every step (Algorithm 1 minimises it by the clustering itself: line
  4 trains the cluster layers on the classification loss only). It therefore measures each
  task's distance to its centre in the *previous* clustering (the one before the clustering
  that gave the current weights; 0 until two clusterings exist and after the freeze). Its
  gradient ``2 alpha (w_k - c_previous)`` is negligible for a task that stayed in its cluster
  (the centre moved one optimiser step) and pulls a task that just changed cluster back
  toward its old one: switching cluster is made sticky, the stabilising regulariser the paper
  describes (assignments "relatively stable"). Default 0.001 (the paper gives no value):
  measured on a fresh 14-task model (TF-IDF MLP, default layers), the centres of the second
  layer lie 2.6-3.9 apart and one task's classification gradient on its cluster-layer weights
  has norm 0.01-0.04, so a task that switched is pulled back with a gradient of 0.005-0.008:
  felt, but below the classification gradient (0.01 would dominate it). 0 is Algorithm 1
  without the term.
- **Optimiser state of replaced weights.** Averaged over the cluster: every state tensor shaped
  like the parameter (SGD's momentum buffer, Adam's first and second moments) is replaced by
  its cluster mean, like the weights; scalars (Adam's step count) stay. For a cluster that keeps
  its tasks this makes the centre train exactly like one parameter driven by the mean of its
  tasks' updates, and resetting instead would zero Adam's second moment every step (steps of
  about 3 x lr). At the freeze the state of the merged centre is the cluster mean as well. The
  method reaches the optimiser through ``TrainState.optimizer`` (a field added for it; None:
  no state to keep consistent). ``optimizer_state: own`` leaves each task its own state (what
  an implementation that assigns the centre to each task's variable gets): the tasks of a
  cluster then keep their own momentum and can drift to another cluster. Measured on 10
  synthetic tasks over 200 Adam steps (the paper's layers; a test): with averaged state no
  task ever changed cluster (a cluster's tasks share most of their next step, Adam's beta1
  part of the shared moment), nor from a draw per task (``equal_init``); from equal starts
  with their own state, 24 changes in the first layer. At the freeze
  the merged centre takes the mean state either way.
- **Freeze mechanics.** The layer's ``nn.Parameter`` objects keep their identity and change
  shape (``parameter.data = centres``), so the optimiser and the trainer's clipping list,
  both built before training, keep training them; their optimiser state is averaged to the
  new shape. ``freeze_after_epochs: 0`` never freezes.
- **Export.** ``export_state()`` keeps, per cluster layer, only the centres (C, out, in), (C,
  out), the assignment (K,) and whether it is frozen (before the first clustering every task
  is its own cluster, C = K; so too if the weights changed since the last re-clustering, so
  nothing is lost), plus the encoder and the heads; ``load_exported_state`` rebuilds the
  per-task (or frozen) storage from them and predicts identically.

References:
    "Network Clustering for Multi-task Learning" (NCMTL), ``cluster-layers-ncmtl.txt``
    (section 2 and Algorithm 1; the freeze after four epochs in section 3.2);
    Arthur & Vassilvitskii (2007), "k-means++: The Advantages of Careful Seeding".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from ..data.batching import Batch
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import TaskHeads
from .stages import head_sources, head_widths, run_for_heads

if TYPE_CHECKING:
    from ..training.state import TrainState

#: Lloyd iterations after the seeding, at most (14 tasks settle in a few)
LLOYD_ITERATIONS = 20
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


# -- k-means on task vectors ----------------------------------------------------------------

def kmeans_plusplus(distances: np.ndarray, num_clusters: int, generator: torch.Generator) -> list[int]:
    """k-means++ seeds: the first uniformly, each next with probability proportional to its
    squared distance to the nearest seed so far.

    Args:
        distances: (N, N) squared distances between the points.
        num_clusters: number of seeds, <= N.
        generator: draws one uniform per seed (a seeded generator gives the same seeds).
    Returns:
        The seed indices, in the order drawn; distinct while some point is not a copy of a seed.
    References:
        Arthur & Vassilvitskii (2007), "k-means++: The Advantages of Careful Seeding".
    """
    n = distances.shape[0]
    uniforms = torch.rand(num_clusters, generator=generator, dtype=torch.float64).numpy()
    seeds = [min(int(uniforms[0] * n), n - 1)]
    nearest = distances[seeds[0]].copy()  # (N,) squared distance to the nearest seed
    for u in uniforms[1:]:
        cumulative = np.cumsum(nearest)
        if cumulative[-1] <= 0:  # every point is a copy of a seed: take one not chosen yet
            index = next(i for i in range(n) if i not in seeds)
        else:
            # side="right": the first point whose mass covers u * total, never one of mass 0
            index = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
        seeds.append(index)
        nearest = np.minimum(nearest, distances[index])
    return seeds


def _fill_empty(assignment: np.ndarray, own_distance: np.ndarray, num_clusters: int) -> np.ndarray:
    """Give each empty cluster the point farthest from its centre among clusters of > 1 point."""
    counts = np.bincount(assignment, minlength=num_clusters)
    for cluster in np.flatnonzero(counts == 0):
        movable = counts[assignment] > 1
        if not movable.any():
            break
        point = int(np.argmax(np.where(movable, own_distance, -np.inf)))
        counts[assignment[point]] -= 1
        assignment[point], counts[cluster], own_distance[point] = cluster, 1, -np.inf
    return assignment


def kmeans(points: torch.Tensor, num_clusters: int, generator: torch.Generator,
           max_iterations: int = LLOYD_ITERATIONS) -> np.ndarray:
    """Hard k-means of the rows of ``points``: k-means++ seeds, then Lloyd iterations.

    Works on the (N, N) Gram matrix in float64: the distance of point i to the mean of cluster
    c is ``G_ii - 2 sum_(j in c) G_ij / n_c + sum_(j, l in c) G_jl / n_c^2``, so after one matmul
    every step is on N x C arrays, whatever the width of the points.

    Args:
        points: (N, P) one row per point (any device; the N x N Gram matrix is read on the CPU).
        num_clusters: C, 1 <= C <= N.
        generator: seeds the k-means++ draws.
        max_iterations: Lloyd iterations at most (they stop when the assignment is stable).
    Returns:
        (N,) int64 cluster ids in [0, C); every cluster is non-empty when at least C rows differ.
    """
    x = points.detach().double()  # (N, P), float64: tasks a step apart differ by ~lr per entry
    gram = (x @ x.T).cpu().numpy()  # (N, N): only this crosses to the host
    norms = np.diag(gram).copy()  # (N,)
    scale = norms[:, None] + norms[None, :]
    distances = np.maximum(scale - 2 * gram, 0.0)  # (N, N)
    # equal rows leave ~1e-16 relative rounding: treat them as the copies they are
    distances[distances <= 1e-12 * scale] = 0.0
    seeds = kmeans_plusplus(distances, num_clusters, generator)
    to_seed = distances[:, seeds]  # (N, C)
    assignment = to_seed.argmin(1)
    rows = np.arange(len(norms))
    assignment = _fill_empty(assignment, to_seed[rows, assignment].copy(), num_clusters)
    for _ in range(max_iterations):
        members = np.eye(num_clusters)[assignment]  # (N, C) one-hot
        counts = members.sum(0)  # (C,)
        safe = np.maximum(counts, 1.0)
        cross = gram @ members  # (N, C): sum over j in c of x_i . x_j
        within = (members * cross).sum(0)  # (C,): sum over j, l in c of x_j . x_l
        to_centre = norms[:, None] - 2 * cross / safe + within / safe ** 2  # (N, C)
        to_centre[:, counts == 0] = np.inf
        update = to_centre.argmin(1)
        update = _fill_empty(update, to_centre[rows, update].copy(), num_clusters)
        if np.array_equal(update, assignment):
            break
        assignment = update
    return assignment.astype(np.int64)


def match_labels(assignment: np.ndarray, previous: np.ndarray, num_clusters: int) -> np.ndarray:
    """Rename the clusters of ``assignment`` to overlap most with ``previous`` (Hungarian).

    Args:
        assignment, previous: (N,) cluster ids in [0, num_clusters).
    Returns:
        (N,) the same partition as ``assignment`` under the ids of ``previous``.
    """
    overlap = np.zeros((num_clusters, num_clusters))
    np.add.at(overlap, (previous, assignment), 1.0)
    old, new = linear_sum_assignment(overlap, maximize=True)
    rename = np.empty(num_clusters, dtype=np.int64)
    rename[new] = old
    return rename[assignment]


def first_appearance_labels(assignment: np.ndarray, num_clusters: int) -> np.ndarray:
    """Number the clusters by their first point (the cluster of point 0 is 0, ...)."""
    rename = np.full(num_clusters, -1, dtype=np.int64)
    next_id = 0
    for cluster in assignment:
        if rename[cluster] < 0:
            rename[cluster], next_id = next_id, next_id + 1
    unused = rename < 0  # empty clusters take the ids left over
    rename[unused] = np.arange(next_id, num_clusters)
    return rename[assignment]


def _cluster_mean(values: torch.Tensor, index: torch.Tensor, counts: torch.Tensor,
                  num_clusters: int) -> torch.Tensor:
    """(K, ...) per-task values -> (C, ...) mean over each cluster's tasks (0 for an empty one)."""
    # a (C, K) averaging matrix and one matmul (index_add_ on CPU is far slower for this)
    average = F.one_hot(index, num_clusters).to(values.dtype).T / counts.to(values.dtype)[:, None]
    return (average @ values.reshape(values.shape[0], -1)).view(num_clusters, *values.shape[1:])


class RowBlocks(NamedTuple):
    """Rows sorted into one block per group present, for one batched matmul (see
    :func:`grouped_linear`): sorted row i is row ``order[i]``, at ``slot[i]`` of block
    ``block[i]``; block j holds the rows of group ``groups[j]``."""

    groups: torch.Tensor  # (G',) the groups with rows
    order: torch.Tensor  # (N,)
    block: torch.Tensor  # (N,)
    slot: torch.Tensor  # (N,)
    restore: torch.Tensor  # (N,) sorted position of each row
    size: int  # rows of the largest block


def row_blocks(group: torch.Tensor, num_groups: int) -> RowBlocks:
    """Sort N rows by their group (``group``: (N,) ids in [0, num_groups))."""
    counts = torch.bincount(group, minlength=num_groups)  # (G,)
    present = counts.nonzero().squeeze(1)  # (G',)
    order = torch.argsort(group, stable=True)  # (N,)
    sorted_group = group[order]
    block_of = torch.zeros_like(counts)
    block_of[present] = torch.arange(present.shape[0], device=group.device)
    first = torch.cumsum(counts, 0) - counts  # (G,) first sorted row of each group
    slot = torch.arange(group.shape[0], device=group.device) - first[sorted_group]
    restore = torch.empty_like(order)
    restore[order] = torch.arange(group.shape[0], device=group.device)
    return RowBlocks(present, order, block_of[sorted_group], slot, restore, int(counts.max()))


def grouped_linear(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                   blocks: RowBlocks) -> torch.Tensor:
    """Each row through its group's linear layer: (N, in) -> (N, out), no loop over groups.

    The rows are padded into a (G', n, in) block per group present and run through one
    ``bmm`` with those groups' weights: G' * n * in * out multiply-adds, about N * in * out for
    a batch of every task (one matmul with every group's weights would cost G times that;
    measured 4x slower for 14 tasks x 32 rows into a 32-wide layer from 256 features).

    Args:
        rows: (N, in).
        weight: (G, out, in); bias: (G, out).
        blocks: :func:`row_blocks` of the rows' groups.
    """
    padded = rows.new_zeros(blocks.groups.shape[0], blocks.size, rows.shape[1])
    padded = padded.index_put((blocks.block, blocks.slot), rows[blocks.order])  # (G', n, in)
    out = torch.baddbmm(bias[blocks.groups][:, None, :], padded,
                        weight[blocks.groups].transpose(1, 2))  # (G', n, out)
    return out[blocks.block, blocks.slot][blocks.restore]  # (N, out)


# -- one cluster layer ----------------------------------------------------------------------

class ClusterLayer(nn.Module):
    """One cluster layer: a linear layer per task (per cluster once frozen), in one batched op.

    Before the freeze ``weight`` is (K, out, in) and ``bias`` (K, out): row k is task k's layer,
    and after every re-clustering the tasks of a cluster hold equal rows. Frozen, they are
    (C, out, in) and (C, out): row c is cluster c's centre, and ``assignment`` (K,) maps each
    task to its row. ``assignment`` always holds the latest clustering (identity before the
    first one).

    Args:
        num_tasks: K.
        input_dim: width read.
        output_dim: width of the layer.
        num_clusters: clusters wanted; the layer uses ``min(num_clusters, K)``.
        equal_init: every task starts with the same draw (else one draw per task).
    """

    def __init__(self, num_tasks: int, input_dim: int, output_dim: int, num_clusters: int,
                 equal_init: bool = False) -> None:
        super().__init__()
        # nn.Linear's default init: a separate draw per task (the tasks start apart), or one
        # draw copied to every task
        bound = 1.0 / math.sqrt(input_dim)
        draws = 1 if equal_init else num_tasks
        weight = torch.empty(draws, output_dim, input_dim).uniform_(-bound, bound)
        bias = torch.empty(draws, output_dim).uniform_(-bound, bound)
        self.weight = nn.Parameter(weight.expand(num_tasks, -1, -1).clone())  # (K, out, in)
        self.bias = nn.Parameter(bias.expand(num_tasks, -1).clone())  # (K, out)
        self.num_tasks, self.input_dim, self.output_dim = num_tasks, input_dim, output_dim
        self.num_clusters = min(num_clusters, num_tasks)
        self.frozen = False
        self.clustered = False  # at least one clustering so far (ids then lie in [0, C))
        self.register_buffer("assignment", torch.arange(num_tasks))  # (K,) task -> cluster
        self._assignment = np.arange(num_tasks)  # host copy: change counts without a device sync
        # the clustering loss: each task's vector in the previous clustering, and in the latest
        vectors = self.task_vectors().detach()
        self.register_buffer("reference", vectors.clone(), persistent=False)  # (K, P)
        self.register_buffer("latest", vectors.clone(), persistent=False)  # (K, P)

    def layout(self, task_index: torch.Tensor, lead_shape: torch.Size) -> "RowBlocks":
        """The blocks of this layer's rows: (B,) or (B, T) rows, each of its task's group."""
        group = self.assignment[task_index] if self.frozen else task_index  # (B,) row of weight
        if len(lead_shape) == 2:  # tokens: every token of a row goes through the row's layer
            group = group[:, None].expand(lead_shape)
        return row_blocks(group.reshape(-1), self.weight.shape[0])

    def forward(self, hidden: torch.Tensor, task_index: torch.Tensor,
                blocks: "RowBlocks | None" = None) -> torch.Tensor:
        """(B, in) -> (B, out), or (B, T, in) -> (B, T, out): each row through its task's layer.

        Args:
            blocks: :meth:`layout` of these rows, when the caller computed it already.
        """
        lead = hidden.shape[:-1]
        blocks = self.layout(task_index, lead) if blocks is None else blocks
        rows = hidden.reshape(-1, hidden.shape[-1])  # (N, in)
        return grouped_linear(rows, self.weight, self.bias, blocks).view(*lead, -1)

    def task_vectors(self) -> torch.Tensor:
        """(K, P) each task's weights and bias, flattened (P = out * in + out); differentiable."""
        vectors = torch.cat([self.weight.flatten(1), self.bias], dim=1)  # (G, P)
        return vectors[self.assignment] if self.frozen else vectors

    def clustering_loss(self) -> torch.Tensor:
        """Sum over tasks of the squared distance to the task's centre in the previous clustering."""
        if self.frozen:
            return self.weight.new_zeros(())
        return (self.task_vectors() - self.reference).pow(2).sum()

    @torch.no_grad()
    def recluster(self, generator: torch.Generator, optimizer: torch.optim.Optimizer | None,
                  keep_reference: bool = True) -> np.ndarray:
        """Algorithm 1, lines 6-7: cluster the tasks, replace each task's weights (and their
        optimiser state) by its cluster's mean.

        Args:
            generator: seeds k-means++.
            optimizer: its per-element state of the replaced weights is averaged too (None: none).
            keep_reference: keep what the clustering loss needs (False: it is not computed).
        Returns:
            (K,) bool, the tasks whose cluster changed (none at the first clustering).
        """
        previous = self._assignment
        if self.num_clusters >= self.num_tasks:  # every task its own cluster: nothing to replace
            if keep_reference:  # each task is its own centre: the loss measures its last step
                vectors = self.task_vectors().detach().clone()
                self.reference, self.latest = (self.latest if self.clustered else vectors), vectors
            self.clustered = True
            return np.zeros(self.num_tasks, dtype=bool)
        assignment = kmeans(self.task_vectors(), self.num_clusters, generator)
        assignment = (match_labels(assignment, previous, self.num_clusters) if self.clustered
                      else first_appearance_labels(assignment, self.num_clusters))
        vectors = self._replace_by_means(assignment, optimizer)  # (K, P), a new tensor
        moved = assignment != previous if self.clustered else np.zeros(self.num_tasks, dtype=bool)
        if not np.array_equal(assignment, previous):
            self.assignment.copy_(torch.as_tensor(assignment))
        self._assignment = assignment
        # the loss of the next step measures the distance to the clustering before this one
        # (buffers swapped, not copied: this runs every step)
        self.reference, self.latest = (self.latest if self.clustered else vectors), vectors
        self.clustered = True
        return moved

    def _replace_by_means(self, assignment: np.ndarray, optimizer: torch.optim.Optimizer | None
                          ) -> torch.Tensor:
        """Set every task's weights, bias and their optimiser state to its cluster's mean;
        returns the new (K, P) task vectors."""
        counts = np.maximum(np.bincount(assignment, minlength=self.num_clusters), 1)
        average = np.zeros((self.num_clusters, self.num_tasks))
        average[assignment, np.arange(self.num_tasks)] = 1.0 / counts[assignment]
        tensors = [self.weight, self.bias, *_state_tensors(optimizer, self.weight),
                   *_state_tensors(optimizer, self.bias)]
        # one matmul for the weights and all their state (few ops per step: it runs every step)
        flat = torch.cat([t.reshape(self.num_tasks, -1) for t in tensors], dim=1)  # (K, P_all)
        average = torch.as_tensor(average, dtype=flat.dtype, device=flat.device)  # (C, K)
        index = torch.as_tensor(assignment, device=flat.device)
        # gathering one mean per cluster gives the tasks of a cluster bit-equal rows
        replaced = (average @ flat)[index]  # (K, P_all)
        offset = 0
        for tensor in tensors:
            size = tensor[0].numel()
            tensor.copy_(replaced[:, offset: offset + size].view_as(tensor))
            offset += size
        return replaced[:, : self.weight[0].numel() + self.bias[0].numel()]

    @torch.no_grad()
    def freeze(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Keep only the C centres; the tasks of a cluster now train one set of weights."""
        if self.frozen:
            return
        index = self.assignment
        # frozen before any clustering: every task is its own cluster
        groups = self.num_clusters if self.clustered else self.num_tasks
        counts = torch.bincount(index, minlength=groups).clamp_(min=1)
        for parameter in (self.weight, self.bias):
            for state in _states(optimizer, parameter):
                for key, value in state.items():
                    if torch.is_tensor(value) and value.shape == parameter.shape:
                        state[key] = _cluster_mean(value, index, counts, groups)
            # same Parameter object, new shape: the optimiser and the clipping list keep it
            parameter.data = _cluster_mean(parameter.data, index, counts, groups)
            parameter.grad = None
        self.frozen = True

    def exported(self) -> dict[str, torch.Tensor]:
        """Centres (C, out, in), (C, out), the assignment (K,) and the frozen flag."""
        if self.frozen:
            centre_weight, centre_bias = self.weight.detach().clone(), self.bias.detach().clone()
        else:
            # tasks of a cluster hold equal rows after each re-clustering: a member's row is the
            # centre, copied exactly (a mean could round); before the first clustering C = K
            count = self.num_clusters if self.clustered else self.num_tasks
            first = np.zeros(count, dtype=np.int64)
            present = np.zeros(count, dtype=bool)
            for task in range(self.num_tasks - 1, -1, -1):
                first[self._assignment[task]], present[self._assignment[task]] = task, True
            rows = torch.as_tensor(first, device=self.weight.device)
            centre_weight = self.weight.detach()[rows].clone()
            centre_bias = self.bias.detach()[rows].clone()
            empty = torch.as_tensor(~present, device=self.weight.device)
            centre_weight[empty], centre_bias[empty] = 0.0, 0.0  # an empty cluster has no centre
            vectors = torch.cat([centre_weight.flatten(1), centre_bias], 1)[self.assignment]
            if not torch.equal(vectors, self.task_vectors().detach()):
                # the weights changed after the last re-clustering (a step without on_step_end):
                # every task is exported as its own centre, so nothing is lost
                return {"centre_weight": self.weight.detach().clone(),
                        "centre_bias": self.bias.detach().clone(),
                        "assignment": torch.arange(self.num_tasks, device=self.weight.device),
                        "frozen": torch.tensor(False)}
        return {"centre_weight": centre_weight, "centre_bias": centre_bias,
                "assignment": self.assignment.detach().clone(),
                "frozen": torch.tensor(self.frozen)}

    @torch.no_grad()
    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`exported` (frozen storage, or per-task rows rebuilt from the centres)."""
        device = self.weight.device
        centre_weight = state["centre_weight"].to(device, self.weight.dtype)
        centre_bias = state["centre_bias"].to(device, self.bias.dtype)
        assignment = state["assignment"].to(device, torch.long)
        if centre_weight.shape[1:] != self.weight.shape[1:] or assignment.shape != (self.num_tasks,):
            raise ValueError(f"exported cluster layer has centres {tuple(centre_weight.shape)} and "
                             f"{assignment.shape[0]} task assignments; this layer needs (C, "
                             f"{self.output_dim}, {self.input_dim}) and {self.num_tasks}")
        self.frozen = bool(state["frozen"])
        self.weight.data = centre_weight.clone() if self.frozen else centre_weight[assignment]
        self.bias.data = centre_bias.clone() if self.frozen else centre_bias[assignment]
        self.assignment.copy_(assignment)
        self._assignment = assignment.cpu().numpy()
        self.clustered = centre_weight.shape[0] == self.num_clusters
        vectors = self.task_vectors().detach()
        self.reference, self.latest = vectors.clone(), vectors.clone()  # no clustering loss yet


def _states(optimizer: torch.optim.Optimizer | None, parameter: nn.Parameter) -> list[dict]:
    if optimizer is None or parameter not in optimizer.state:
        return []
    return [optimizer.state[parameter]]


def _state_tensors(optimizer: torch.optim.Optimizer | None, parameter: nn.Parameter
                   ) -> list[torch.Tensor]:
    """The optimiser's per-element state of ``parameter`` (momentum, moments); not step counts."""
    return [value for state in _states(optimizer, parameter) for value in state.values()
            if torch.is_tensor(value) and value.shape == parameter.shape]


# -- the sharing method ---------------------------------------------------------------------

@SHARING.register("cluster_layers")
class ClusterLayers(SharingMethod):
    """Shared encoder, cluster layers (tasks grouped by their weights), one head per task.

    Args:
        widths: width of each cluster layer (the paper: 32, 32, 16).
        clusters: clusters of each cluster layer, one per width (the paper: 3, 5, 10); a layer
            uses ``min(clusters, number of tasks)``.
        activation: after each cluster layer, ``relu`` (default) or ``tanh``.
        cluster_loss_weight: alpha, the weight of the clustering loss (the penalty
            ``clustering``: each task's squared distance to its centre in the previous
            clustering; see the module docstring); >= 0, 0: Algorithm 1 without it.
        freeze_after_epochs: the assignments are frozen after this many epochs (the paper: 4)
            and the layers keep only their centres; 0: never frozen.
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
        optimizer_state: what a replaced task's optimiser state becomes: ``mean`` (default)
            its cluster's mean, like the weights; ``own``: the task keeps its own (see the
            module docstring: with ``mean`` the clusters never change).
        equal_init: every task's layer starts as the same draw, so the clusterings group tasks
            by what their own data did to the weights. False (default, the paper is silent): a
            draw per task. Measured on the 14-domain table (docs/ncmtl.md): with a draw per
            task no task ever changed cluster; the first clustering, after one step, groups
            the tasks by their random starts (about 0.1 per weight apart, where an Adam step
            moves a weight by at most the learning rate), and replacing the weights by the
            centres every step keeps that grouping for good. Tasks move between clusters only with
            ``equal_init`` and ``optimizer_state: own`` together (a test).
    References:
        NCMTL, ``cluster-layers-ncmtl.txt`` (Algorithm 1); Arthur & Vassilvitskii (2007).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 widths: list[int] = [32, 32, 16], clusters: list[int] = [3, 5, 10],
                 activation: Literal["relu", "tanh"] = "relu", cluster_loss_weight: float = 0.001,
                 freeze_after_epochs: int = 4, head_hidden: int = 0,
                 optimizer_state: Literal["mean", "own"] = "mean", equal_init: bool = False) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        if optimizer_state not in ("mean", "own"):
            raise ValueError(f"'optimizer_state' of ClusterLayers must be 'mean' or 'own', "
                             f"got {optimizer_state!r}")
        self.optimizer_state = optimizer_state
        if not isinstance(equal_init, bool):
            raise ValueError(f"'equal_init' of ClusterLayers must be true or false, got {equal_init!r}")
        if (not isinstance(widths, (list, tuple)) or not widths
                or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths)):
            raise ValueError(f"'widths' of ClusterLayers must be a non-empty list of positive "
                             f"integers, got {widths!r}")
        if (not isinstance(clusters, (list, tuple)) or len(clusters) != len(widths)
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in clusters)):
            raise ValueError(f"'clusters' of ClusterLayers must be one cluster count >= 1 per "
                             f"cluster layer ({len(widths)} for widths {list(widths)}), "
                             f"got {clusters!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"'activation' of ClusterLayers must be one of "
                             f"{', '.join(ACTIVATIONS)}, got {activation!r}")
        if not cluster_loss_weight >= 0:
            raise ValueError(f"'cluster_loss_weight' of ClusterLayers must be >= 0, "
                             f"got {cluster_loss_weight}")
        if isinstance(freeze_after_epochs, bool) or not isinstance(freeze_after_epochs, int) \
                or freeze_after_epochs < 0:
            raise ValueError(f"'freeze_after_epochs' of ClusterLayers must be an integer >= 0 "
                             f"(0: never freeze), got {freeze_after_epochs!r}")
        self.activation = activation
        self.cluster_loss_weight = float(cluster_loss_weight)
        self.freeze_after_epochs = freeze_after_epochs
        self.encoder = encoder_factory()
        sources = head_sources(self.encoder, tasks)
        read = head_widths(self.encoder, sources)
        if len(set(read)) > 1:
            described = ", ".join(f"{t.name}: {w}" for t, w in zip(tasks, read))
            raise ValueError(f"cluster layers read one feature width for every task; the tasks "
                             f"read widths {described} of this encoder")
        # one source per level (a batch holds one level): tagging tasks read token features
        self.sources = {t.level: s for t, s in zip(tasks, sources)}
        dims = [read[0], *widths]
        self.cluster_layers = nn.ModuleList(
            ClusterLayer(len(tasks), a, b, c, equal_init) for a, b, c in zip(dims[:-1], dims[1:], clusters))
        self.heads = TaskHeads(tasks, widths[-1], self.head_hidden)
        self.frozen_after_epoch: int | None = None
        self._history: list[dict] = []
        self._reset_epoch_counts()

    def _reset_epoch_counts(self) -> None:
        self._clusterings = 0
        self._moves = [0] * len(self.cluster_layers)
        self._changed = [np.zeros(len(self.tasks), dtype=bool) for _ in self.cluster_layers]

    @property
    def frozen(self) -> bool:
        return all(layer.frozen for layer in self.cluster_layers)

    def forward(self, batch: Batch) -> torch.Tensor:
        source = self.sources[batch.level]
        if source.stage == self.encoder.num_stages - 1 and not source.pool:
            hidden = self.encoder(batch.inputs)  # (B, D) or (B, T, D)
        else:
            hidden = run_for_heads(self.encoder, batch.inputs, [source])[0]
        activate = ACTIVATIONS[self.activation]
        # before the freeze every layer groups the rows by task: one layout for all layers
        shared = (None if self.frozen
                  else self.cluster_layers[0].layout(batch.task_index, hidden.shape[:-1]))
        for layer in self.cluster_layers:
            blocks = None if layer.frozen else shared
            hidden = activate(layer(hidden, batch.task_index, blocks))  # (B, width) or (B, T, width)
        return self.heads(hidden, batch.task_index)

    # -- parameter groups -------------------------------------------------------------------

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return self.heads.task_parameters(self.task_id(task))

    def method_parameters(self) -> list[nn.Parameter]:
        # one tensor holds every task's (or cluster's) weights: neither one task's nor shared
        return [p for layer in self.cluster_layers for p in (layer.weight, layer.bias)]

    # -- losses and hooks -------------------------------------------------------------------

    def penalties(self) -> dict[str, torch.Tensor]:
        penalties = super().penalties()
        if self.cluster_loss_weight > 0:
            total = sum(layer.clustering_loss() for layer in self.cluster_layers)
            penalties["clustering"] = self.cluster_loss_weight * total
        return penalties

    def on_step_end(self, state: "TrainState") -> None:
        """Algorithm 1, lines 5-8: re-cluster every cluster layer (until the freeze)."""
        if self.frozen:
            return
        optimizer = getattr(state, "optimizer", None) if self.optimizer_state == "mean" else None
        for i, layer in enumerate(self.cluster_layers):
            moved = layer.recluster(state.generator, optimizer, self.cluster_loss_weight > 0)
            self._moves[i] += int(moved.sum())
            self._changed[i] |= moved
        self._clusterings += 1

    def on_epoch_end(self, state: "TrainState") -> None:
        """Record the epoch's cluster changes; freeze after ``freeze_after_epochs`` epochs."""
        self._history.append({"epoch": state.epoch, "clusterings": self._clusterings,
                              "changed_tasks": [int(c.sum()) for c in self._changed],
                              "moves": list(self._moves)})
        self._reset_epoch_counts()
        if not self.frozen and self.freeze_after_epochs and state.epoch >= self.freeze_after_epochs:
            optimizer = getattr(state, "optimizer", None)
            for layer in self.cluster_layers:
                layer.freeze(optimizer)
            self.frozen_after_epoch = state.epoch

    # -- what was learned -------------------------------------------------------------------

    def cluster_report(self) -> dict:
        """The clusters as plain values.

        Returns:
            ``tasks``; ``frozen`` and ``frozen_after_epoch``; ``layers``: per cluster layer its
            ``width``, ``clusters`` and ``assignments`` (task name -> cluster id; ids are kept
            consistent from step to step); ``epochs``: per finished epoch the number of
            ``clusterings``, and per layer ``changed_tasks`` (tasks that changed cluster at
            least once in the epoch) and ``moves`` (changes summed over its steps).
        """
        return {"tasks": list(self.task_names), "frozen": self.frozen,
                "frozen_after_epoch": self.frozen_after_epoch,
                "layers": [{"width": layer.output_dim, "clusters": layer.num_clusters,
                            "assignments": {name: int(c) for name, c in
                                            zip(self.task_names, layer.assignment.tolist())}}
                           for layer in self.cluster_layers],
                "epochs": [dict(entry) for entry in self._history]}

    def parameter_counts(self) -> list[dict]:
        """Per cluster layer: parameters ``stored`` now, those of its ``centres`` alone (what a
        frozen layer and the export keep) and of ``task_layers`` (K separate layers)."""
        counts = []
        for layer in self.cluster_layers:
            per_layer = layer.output_dim * layer.input_dim + layer.output_dim
            counts.append({"width": layer.output_dim, "input_width": layer.input_dim,
                           "clusters": layer.num_clusters,
                           "stored": layer.weight.numel() + layer.bias.numel(),
                           "centres": layer.num_clusters * per_layer,
                           "task_layers": layer.num_tasks * per_layer})
        return counts

    # -- saving -----------------------------------------------------------------------------

    def export_state(self) -> dict:
        """Encoder and heads state, and per cluster layer only its centres and assignment."""
        state = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        state.update({f"heads.{k}": v for k, v in self.heads.state_dict().items()})
        for i, layer in enumerate(self.cluster_layers):
            state.update({f"cluster_layers.{i}.{k}": v for k, v in layer.exported().items()})
        return state

    def load_exported_state(self, state: dict) -> None:
        known = ("encoder.", "heads.", "cluster_layers.")
        unknown = [k for k in state if not k.startswith(known)]
        if unknown:
            raise ValueError(f"exported state of ClusterLayers has unknown entries {unknown}; "
                             f"expected {', '.join(p + '*' for p in known)}")

        def part(prefix: str) -> dict:
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        self.encoder.load_state_dict(part("encoder."))
        self.heads.load_state_dict(part("heads."))
        for i, layer in enumerate(self.cluster_layers):
            layer.load_exported(part(f"cluster_layers.{i}."))
