"""Fully-Adaptive Feature Sharing (FAFS): start thin and shared, widen greedily from the top,
branching groups of tasks that are easy and hard on the same examples.

The network is a shared encoder (its pooled sequence features, or its token features for
tagging tasks), a trunk of L fully connected layers (``widths``, ReLU after each) and one
output layer per task (:class:`~textmtl.sharing.heads.TaskHeads`, ``head_hidden`` honoured).
At the start every task shares every trunk layer: the thin network, hard sharing with an MLP
on top. The encoder itself always stays shared: it may be any encoder (BiLSTM, CNN, the TF-IDF
MLP), a black box with no layer this method could copy, so the widening stops at the trunk.
With the TF-IDF MLP, a one-layer encoder (``hidden_dims: [d]``) keeps only the sparse input
projection shared and FAFS decides the rest.

Widening (Lu et al., section 3 and Algorithm 1), one round at the end of each epoch listed in
``split_epochs``, from the top layer down, one layer per round. Top-down, every layer below the
current branching point is still one branch shared by all tasks, so a round at trunk layer l
looks at one junction: its children are the branches of layer l + 1 (at the top layer, the K
task heads). The children are grouped into c branches; layer l is replaced by c copies of
itself, each initialised from the parent (so the network computes the same function right
after the split) and feeding one group of children. A round that finds c = 1 stops the
widening (the layers below have only one child each). The optimiser learns about the new
copies through the ``changes_parameters`` capability: ``parameters_changed()`` is True once
after a split, and the trainer rebuilds the optimiser (fresh state for the copies).

Task affinity (the paper's criterion, adapted). Lu et al. call example n easy for task i when
its error ``e_i^n`` is below the task's mean error, and the affinity of tasks i and j is the
probability that an example is easy for both or hard for both. Their examples carry every
task's label; here a text usually has one task's label only, so the per-example quantity
defined for every task is the *expected* loss under the task's own prediction, the entropy
``H_i(x) = -sum_c p_i(c|x) log p_i(c|x)`` (what the cross-entropy would be on average if the
label were drawn from the task's prediction); for a tagging row, its mean over the row's
labelled tokens. During an epoch that ends with a round, every labelled training row of every
step goes through every task's current path (no gradient), and the expected losses (N, K) of
the last ``affinity_rows`` rows are kept. A task is hard on a row when its expected loss is at
least its mean over those rows; ``A_t(i, j)`` is the fraction of rows where i and j are both
easy or both hard (:func:`task_affinity`: 1 on the diagonal, 0.5 for independent tasks).
Children that are branches of several tasks are compared as in the paper: the affinity of
child k to child l is the mean over k's tasks of their least affine task in l, symmetrised
(:func:`branch_affinity`).

Grouping (a documented simplification of the paper's loss ``complexity + alpha * separation``,
which it minimises over groupings of each size d). For each d from 1 to
``min(max_branches, children)``, agglomerative complete-linkage clustering of the children
(merge the two groups whose least affine pair of children is most affine, until d groups
remain) gives a grouping; its score is ``complexity_weight * (d - 1)`` (each new branch costs
the same) plus the separation ``mean over groups of (1 - least affinity within the group)``
(0 for a group of one child). The lowest score wins, ties to fewer branches
(:func:`group_branches`). With the default weight 0.1, two groups whose within-affinity is
about 0.9 and whose cross-affinity is about 0.5 score 0.2 as two branches against 0.5 as one.

The branching tree (:meth:`FullyAdaptiveSharing.branching_tree`: each layer's branches with
their tasks and parent, and per round its affinities, grouping and scores) is part of
``export_state()``, so a saved model rebuilds the same tree; the experiment writes it as
``branching.json`` and ``textmtl branches RUN_DIR`` prints it
(:mod:`textmtl.report.branching`).

Parameter groups: a trunk branch that serves several tasks is shared, one that serves a
single task belongs to that task (before its head's parameters).

References:
    Lu, Kumar, Zhai, Cheng, Javidi & Feris (2017), "Fully-adaptive Feature Sharing in
    Multi-Task Networks with Applications in Person Attribute Classification" (CVPR;
    arXiv:1611.05377, 2016); Ruder (2017), ``mtl-overview.txt``, "Fully-Adaptive Feature
    Sharing".
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import IGNORE_LABEL, Batch
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import TaskHeads
from .stages import head_sources, head_widths, run_for_heads

if TYPE_CHECKING:
    from ..training.state import TrainState


# -- the criterion --------------------------------------------------------------------------

def task_affinity(expected_losses: torch.Tensor) -> torch.Tensor:
    """The probability that two tasks are both easy or both hard on an example.

    Args:
        expected_losses: (N, K) a loss of every task on every example.
    Returns:
        (K, K) float64, symmetric, 1 on the diagonal. A task is hard on an example when its
        loss is at least its mean over the N examples.
    References:
        Lu et al. (2016), "Fully-adaptive Feature Sharing in Multi-Task Networks", section 3.3.
    """
    hard = (expected_losses >= expected_losses.mean(0, keepdim=True)).double()  # (N, K)
    easy = 1.0 - hard
    return (hard.T @ hard + easy.T @ easy) / expected_losses.shape[0]  # (K, K)


def branch_affinity(affinity: torch.Tensor, children: Sequence[Sequence[int]]) -> torch.Tensor:
    """Affinity between branches (groups of tasks): the mean over one branch's tasks of their
    least affine task in the other, symmetrised.

    Args:
        affinity: (K, K) task affinity.
        children: the tasks of each branch.
    Returns:
        (n, n) float64, n = number of branches.
    """
    n = len(children)
    one_way = affinity.new_zeros(n, n)  # [k, l]: mean over i in k of min over j in l
    for k, tasks_k in enumerate(children):
        for l, tasks_l in enumerate(children):
            one_way[k, l] = affinity[list(tasks_k)][:, list(tasks_l)].min(1).values.mean()
    return (one_way + one_way.T) / 2


def _separation(affinity: torch.Tensor, groups: list[list[int]]) -> float:
    """Mean over groups of 1 - their least affine pair (0 for a group of one)."""
    costs = [0.0 if len(g) < 2 else 1.0 - float(min(affinity[a, b] for a in g for b in g if a != b))
             for g in groups]
    return sum(costs) / len(costs)


def group_branches(affinity: torch.Tensor, max_branches: int, complexity_weight: float
                   ) -> tuple[list[list[int]], list[dict]]:
    """Group n children into the branches of lowest ``complexity_weight * (d - 1) + separation``.

    Args:
        affinity: (n, n) branch affinity.
        max_branches: d is at most this.
        complexity_weight: the cost of each branch beyond the first (>= 0).
    Returns:
        The chosen groups (child indices, each sorted; groups ordered by their first child) and
        per size d considered ``{"branches": d, "groups": ..., "score": ...}``.
    """
    n = affinity.shape[0]
    groups = [[i] for i in range(n)]
    by_size = {n: [list(g) for g in groups]}
    while len(groups) > 1:  # complete linkage: merge the pair whose least affine children are closest
        best = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                link = float(min(affinity[i, j] for i in groups[a] for j in groups[b]))
                if best is None or link > best[0]:  # strict: ties keep the first pair
                    best = (link, a, b)
        _, a, b = best
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
        by_size[len(groups)] = sorted((list(g) for g in groups), key=lambda g: g[0])
    scores = []
    for d in range(1, min(max_branches, n) + 1):
        score = complexity_weight * (d - 1) + _separation(affinity, by_size[d])
        scores.append({"branches": d, "groups": by_size[d], "score": score})
    chosen = min(scores, key=lambda s: (s["score"], s["branches"]))
    return chosen["groups"], scores


def expected_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each row's entropy of the softmax of ``logits`` (the expected cross-entropy).

    Args:
        logits: (B, C) or (B, T, C) with masked classes at a large negative value.
        labels: (B,) or (B, T); for tokens, the mean is over those not IGNORE_LABEL.
    Returns:
        (B,).
    """
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)  # (B,) or (B, T)
    if entropy.dim() == 2:
        valid = (labels != IGNORE_LABEL).to(entropy.dtype)  # (B, T)
        entropy = (entropy * valid).sum(1) / valid.sum(1).clamp_min(1.0)
    return entropy


# -- the sharing method ---------------------------------------------------------------------

@SHARING.register("fully_adaptive")
class FullyAdaptiveSharing(SharingMethod):
    """A thin shared MLP trunk over a shared encoder, widened greedily from the top into
    branches of tasks that are easy and hard on the same examples.

    Args:
        widths: width of each trunk layer (bottom first); every branch of a layer keeps it.
        split_epochs: at the end of each of these epochs (increasing, at most one per trunk
            layer), one widening round, from the top layer down; empty: never widen (hard
            sharing with an MLP trunk).
        max_branches: branches one round may create at most (>= 1).
        complexity_weight: cost of each branch beyond the first in the grouping score (>= 0;
            larger: fewer branches).
        affinity_rows: the affinity is computed on the last this many labelled training rows
            of the epoch that ends with a round (>= 1).
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
    References:
        Lu et al. (2016/2017), "Fully-adaptive Feature Sharing in Multi-Task Networks with
        Applications in Person Attribute Classification".
    """

    changes_parameters = True

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 widths: list[int] = [64, 64], split_epochs: list[int] = [2, 3],
                 max_branches: int = 4, complexity_weight: float = 0.1, affinity_rows: int = 4000,
                 head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        if (not isinstance(widths, (list, tuple)) or not widths
                or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths)):
            raise ValueError(f"'widths' of FullyAdaptiveSharing must be a non-empty list of "
                             f"positive integers, got {widths!r}")
        if (not isinstance(split_epochs, (list, tuple)) or len(split_epochs) > len(widths)
                or any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in split_epochs)
                or list(split_epochs) != sorted(set(split_epochs))):
            raise ValueError(f"'split_epochs' of FullyAdaptiveSharing must be increasing epochs "
                             f">= 1, at most one per trunk layer ({len(widths)}), got {split_epochs!r}")
        if isinstance(max_branches, bool) or not isinstance(max_branches, int) or max_branches < 1:
            raise ValueError(f"'max_branches' of FullyAdaptiveSharing must be an integer >= 1, "
                             f"got {max_branches!r}")
        if not complexity_weight >= 0:
            raise ValueError(f"'complexity_weight' of FullyAdaptiveSharing must be >= 0, "
                             f"got {complexity_weight}")
        if isinstance(affinity_rows, bool) or not isinstance(affinity_rows, int) or affinity_rows < 1:
            raise ValueError(f"'affinity_rows' of FullyAdaptiveSharing must be an integer >= 1, "
                             f"got {affinity_rows!r}")
        levels = sorted({t.level for t in tasks})
        if len(levels) > 1:
            # the affinity compares every task on the same rows: one kind of row for all
            raise ValueError(f"FullyAdaptiveSharing needs tasks of one level (all sequence or all "
                             f"token), got {', '.join(f'{t.name}: {t.level}' for t in tasks)}")
        self.widths = list(widths)
        self.split_epochs = list(split_epochs)
        self.max_branches = max_branches
        self.complexity_weight = float(complexity_weight)
        self.affinity_rows = affinity_rows
        self.encoder = encoder_factory()
        sources = head_sources(self.encoder, tasks)
        read = head_widths(self.encoder, sources)
        if len(set(read)) > 1:
            described = ", ".join(f"{t.name}: {w}" for t, w in zip(tasks, read))
            raise ValueError(f"FullyAdaptiveSharing reads one feature width for every task; the "
                             f"tasks read widths {described} of this encoder")
        self.source = sources[0]
        self.input_dim = read[0]
        dims = [read[0], *widths]
        # trunk[l][b]: branch b of layer l; at the start one branch per layer, all tasks
        self.trunk = nn.ModuleList(nn.ModuleList([nn.Linear(a, b)]) for a, b in zip(dims[:-1], dims[1:]))
        self.heads = TaskHeads(tasks, widths[-1], self.head_hidden)
        all_tasks = list(range(len(tasks)))
        self.branch_tasks: list[list[list[int]]] = [[all_tasks] for _ in widths]
        self.register_buffer("branch_of", torch.zeros(len(widths), len(tasks), dtype=torch.long),
                             persistent=False)  # (L, K) the branch of each task in each layer
        self.next_layer = len(widths) - 1  # the layer the next round widens (-1: done)
        self.splits: list[dict] = []
        self._epochs_done = 0
        self._recorded: list[torch.Tensor] = []  # (R, K) expected losses of recorded rows
        self._changed = False

    # -- the tree ---------------------------------------------------------------------------

    def _parent(self, layer: int, branch: int) -> int | None:
        """The branch of layer ``layer - 1`` that feeds ``branch`` (None for the first layer)."""
        if layer == 0:
            return None
        return int(self.branch_of[layer - 1, self.branch_tasks[layer][branch][0]])

    def _set_tree(self, branch_tasks: list[list[list[int]]]) -> None:
        """Rebuild the trunk's branches (fresh layers where the structure differs)."""
        if len(branch_tasks) != len(self.widths):
            raise ValueError(f"a branching tree of FullyAdaptiveSharing needs {len(self.widths)} "
                             f"layers, got {len(branch_tasks)}")
        device = self.branch_of.device
        dims = [self.input_dim, *self.widths]
        for layer, branches in enumerate(branch_tasks):
            branches = [sorted(int(t) for t in b) for b in branches]
            if sorted(t for b in branches for t in b) != list(range(len(self.tasks))):
                raise ValueError(f"layer {layer + 1} of a branching tree must partition the "
                                 f"{len(self.tasks)} tasks, got {branches}")
            if branches != self.branch_tasks[layer]:
                self.trunk[layer] = nn.ModuleList(nn.Linear(dims[layer], dims[layer + 1]).to(device)
                                                  for _ in branches)
                self.branch_tasks[layer] = branches
            for b, members in enumerate(branches):
                self.branch_of[layer, members] = b

    # -- forward ----------------------------------------------------------------------------

    def _features(self, batch: Batch) -> torch.Tensor:
        if self.source.stage == self.encoder.num_stages - 1 and not self.source.pool:
            return self.encoder(batch.inputs)  # (B, D) or (B, T, D)
        return run_for_heads(self.encoder, batch.inputs, [self.source])[0]

    def forward(self, batch: Batch) -> torch.Tensor:
        hidden = self._features(batch)  # (B, D) or (B, T, D)
        features = hidden
        for layer, branches in enumerate(self.trunk):
            if len(branches) == 1:
                hidden = torch.relu(branches[0](hidden))  # (B, [T,] width)
                continue
            row_branch = self.branch_of[layer][batch.task_index]  # (B,)
            out = hidden.new_zeros(*hidden.shape[:-1], self.widths[layer])
            for b, linear in enumerate(branches):  # each row through its task's branch
                rows = (row_branch == b).nonzero(as_tuple=True)[0]
                if rows.numel():
                    out = out.index_copy(0, rows, torch.relu(linear(hidden[rows])))
            hidden = out
        if self.training and self._recording():
            self._record(features.detach(), batch)
        return self.heads(hidden, batch.task_index)

    def _recording(self) -> bool:
        """Rows are recorded in an epoch that ends with a round."""
        return self.next_layer >= 0 and (self._epochs_done + 1) in self.split_epochs

    @torch.no_grad()
    def all_task_logits(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Every row under every task's current path: K tensors (B, C_max) or (B, T, C_max).

        Each branch runs once on all rows (on its parent's output), then head k reads the top
        branch of task k.
        """
        previous = [features]
        for layer, branches in enumerate(self.trunk):
            previous = [torch.relu(linear(previous[self._parent(layer, b) or 0]))
                        for b, linear in enumerate(branches)]
        rows = features.shape[0]
        top = self.branch_of[-1].tolist()
        return [self.heads(previous[top[k]], torch.full((rows,), k, dtype=torch.long,
                                                        device=features.device))
                for k in range(len(self.tasks))]

    @torch.no_grad()
    def _record(self, features: torch.Tensor, batch: Batch) -> None:
        labelled = batch.labelled.nonzero(as_tuple=True)[0]
        if labelled.numel() == 0:
            return
        logits = self.all_task_logits(features[labelled])
        labels = batch.labels[labelled]
        self._recorded.append(torch.stack([expected_losses(l, labels) for l in logits], 1))  # (R, K)
        total = sum(r.shape[0] for r in self._recorded)
        while total - self._recorded[0].shape[0] >= self.affinity_rows:  # drop what is out of the window
            total -= self._recorded.pop(0).shape[0]

    # -- widening ---------------------------------------------------------------------------

    def on_epoch_end(self, state: "TrainState") -> None:
        """A widening round at the end of each epoch of ``split_epochs``."""
        super().on_epoch_end(state)
        self._epochs_done = state.epoch
        if state.epoch in self.split_epochs and self.next_layer >= 0:
            self.widen(state.epoch)
        self._recorded = []

    @torch.no_grad()
    def widen(self, epoch: int) -> bool:
        """One round: group the children of layer ``next_layer`` and split it. Returns whether
        the layer was split (False: no recorded rows, or one group: the widening stops)."""
        layer = self.next_layer
        if not self._recorded:
            self.splits.append({"epoch": epoch, "layer": layer + 1, "skipped": "no training rows recorded"})
            return False
        losses = torch.cat(self._recorded)[-self.affinity_rows:]  # (N, K)
        affinity = task_affinity(losses)
        top = layer == len(self.widths) - 1
        children = [[k] for k in range(len(self.tasks))] if top else self.branch_tasks[layer + 1]
        between = branch_affinity(affinity, children)
        groups, scores = group_branches(between, self.max_branches, self.complexity_weight)
        branches = [sorted(t for c in group for t in children[c]) for group in groups]
        names = lambda ids: [self.task_names[i] for i in ids]
        self.splits.append({
            "epoch": epoch, "layer": layer + 1, "rows": int(losses.shape[0]),
            "task_affinity": affinity.cpu().tolist(),
            "children": [names(c) for c in children], "branch_affinity": between.cpu().tolist(),
            "scores": [{"branches": s["branches"], "score": s["score"],
                        "groups": [names(t for c in g for t in children[c]) for g in s["groups"]]}
                       for s in scores],
            "branches": [names(b) for b in branches]})
        if len(branches) == 1:  # one group: every layer below has a single child, nothing to split
            self.next_layer = -1
            return False
        parent = self.trunk[layer][0]
        # copies of the parent: right after the split the network computes the same function
        self.trunk[layer] = nn.ModuleList(copy.deepcopy(parent) for _ in branches)
        self.branch_tasks[layer] = branches
        for b, members in enumerate(branches):
            self.branch_of[layer, members] = b
        self.next_layer = layer - 1
        self._changed = True
        return True

    def parameters_changed(self) -> bool:
        changed, self._changed = self._changed, False
        return changed

    def branching_tree(self) -> dict:
        """The tree as plain values.

        Returns:
            ``tasks``, ``widths``; ``layers``: per trunk layer (bottom first) its branches,
            each ``{"tasks": [...], "parent": index of the branch below or None}``;
            ``splits``: per round its ``epoch``, ``layer`` (from 1), the ``children`` grouped,
            ``task_affinity`` (K x K, task order), ``branch_affinity``, the ``scores`` of each
            number of branches and the ``branches`` made (or ``skipped``).
        """
        return {"tasks": list(self.task_names), "widths": list(self.widths),
                "layers": [[{"tasks": [self.task_names[t] for t in tasks], "parent": self._parent(l, b)}
                            for b, tasks in enumerate(branches)]
                           for l, branches in enumerate(self.branch_tasks)],
                "splits": copy.deepcopy(self.splits)}

    # -- parameter groups -------------------------------------------------------------------

    def _branches(self):
        for layer, branches in enumerate(self.trunk):
            for b, linear in enumerate(branches):
                yield self.branch_tasks[layer][b], linear

    def shared_parameters(self) -> list[nn.Parameter]:
        trunk = [p for tasks, linear in self._branches() if len(tasks) > 1 for p in linear.parameters()]
        return list(self.encoder.parameters()) + trunk

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        own = [p for tasks, linear in self._branches() if tasks == [k] for p in linear.parameters()]
        return own + self.heads.task_parameters(k)  # the output layer's bias stays last

    # -- saving -----------------------------------------------------------------------------

    def export_state(self) -> dict:
        """The state dict and, under ``tree``, the branches and the rounds taken."""
        state = dict(self.state_dict())
        state["tree"] = {"branch_tasks": copy.deepcopy(self.branch_tasks), "next_layer": self.next_layer,
                         "splits": copy.deepcopy(self.splits)}
        return state

    def load_exported_state(self, state: dict) -> None:
        if "tree" not in state:
            raise ValueError("exported state of FullyAdaptiveSharing has no 'tree' entry")
        tree = state["tree"]
        self._set_tree(tree["branch_tasks"])
        self.next_layer = int(tree["next_layer"])
        self.splits = copy.deepcopy(tree["splits"])
        self.load_state_dict({k: v for k, v in state.items() if k != "tree"})
