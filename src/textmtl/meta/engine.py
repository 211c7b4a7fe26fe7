"""The study's training engine: many small TF-IDF MLPs, fast on a CPU.

The meta-study trains thousands of 10,000 -> 100 -> 100 -> 2 MLPs (single-task, or two tasks
hard-sharing the hidden layers with one batch from each task per step). The straightforward loop
(:mod:`textmtl.meta.reference`: ``nn.Linear`` on a densified batch, autograd, ``torch.optim.Adam``)
spends its time multiplying 32 x 10,000 mostly-zero inputs and in autograd's bookkeeping. This
engine computes the same model by hand:

* the first layer's forward is an embedding-bag sum of the rows of the words present in the batch
  (a batch of 32 cleaned posts holds about 1,500 of the 10,000 words), weighted by their TF-IDF
  values, and its weight gradient is the same sum the other way round;
* the backward pass is written out (cross-entropy, ReLU, linear), no autograd graph;
* words absent from a model's training rows never get a gradient, so Adam never moves their rows
  (m = v = 0): only the seen words' rows are trained, and the full layer is rebuilt to evaluate;
* every trained parameter takes exactly ``torch.optim.Adam``'s update, through its fused kernel
  (``torch._fused_adam_``), in one call per step.

A lazy ("sparse") Adam that defers the update of absent rows was built and measured first: its
deferred step is a closed form in the row's moments only if Adam's ε is dropped (which moved the
losses by up to 20 % within 100 steps), and the ε series plus step-by-step sums for tiny second
moments needed to match the reference to 1e-4 cost about 2 ms per step here, against 0.26-0.45 ms
for the fused update of the trained rows. So the engine is exact: from the same seed it follows
the reference to float32 rounding (tests/meta/test_engine.py).

Both engines share :func:`init_parameters`, :func:`batch_plan` and :func:`evaluate`, so from the
same seed they start from the same weights and see the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import f1_score


@dataclass(frozen=True)
class TaskArrays:
    """One binary (or k-way) task as the engine sees it: TF-IDF rows and labels."""

    name: str
    train_x: sp.csr_matrix
    train_y: np.ndarray
    test_x: sp.csr_matrix
    test_y: np.ndarray
    num_classes: int = 2


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one study run (the paper's §3.4 and §4.1 values are the defaults).

    Args:
        hidden: sizes of the hidden layers (shared between tasks in a multi-task run).
        lr, betas, eps: Adam's (PyTorch's defaults; the paper names Adam only).
        batch_size: rows per task per step.
        epochs: passes over the largest task's training rows.
        eval_every: evaluate test F1 every this many epochs (and at ``f1_epochs``).
        f1_epochs: epochs whose test F1 must be recorded (e.g. 100 inside a 150-epoch run).
        f1_average: scikit-learn ``average`` for F1 ("macro": both topics count).
    """

    hidden: tuple[int, ...] = (100, 100)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    batch_size: int = 32
    epochs: int = 100
    eval_every: int = 5
    f1_epochs: tuple[int, ...] = ()
    f1_average: str = "macro"


@dataclass
class RunResult:
    """What one training run reports.

    Attributes:
        train_loss: per task, the mean training loss of each epoch (the "loss curve").
        test_f1: per task, ``{epoch: F1}`` at the evaluated epochs.
        steps: optimiser steps taken.
    """

    train_loss: dict[str, list[float]] = field(default_factory=dict)
    test_f1: dict[str, dict[int, float]] = field(default_factory=dict)
    steps: int = 0


def init_parameters(n_features: int, hidden: tuple[int, ...], num_classes: list[int],
                    seed: int) -> dict[str, torch.Tensor]:
    """Initial weights of an MLP with per-task heads, as ``torch.nn.Linear`` draws them.

    Returns:
        ``{"hidden.0.weight": (out, in), "hidden.0.bias", ..., "head.0.weight", ...}`` in
        ``nn.Linear`` layout; both engines copy these so a seed means the same start.
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        params: dict[str, torch.Tensor] = {}
        sizes = (n_features, *hidden)
        for i in range(len(hidden)):
            layer = torch.nn.Linear(sizes[i], sizes[i + 1])
            params[f"hidden.{i}.weight"] = layer.weight.detach().clone()
            params[f"hidden.{i}.bias"] = layer.bias.detach().clone()
        for k, classes in enumerate(num_classes):
            layer = torch.nn.Linear(sizes[-1], classes)
            params[f"head.{k}.weight"] = layer.weight.detach().clone()
            params[f"head.{k}.bias"] = layer.bias.detach().clone()
    finally:
        torch.random.set_rng_state(generator_state)
    return params


def batch_plan(sizes: list[int], batch_size: int, epochs: int, seed: int) -> list[list[list[np.ndarray]]]:
    """Row indices of every batch: ``plan[epoch][step][task]``.

    An epoch is one pass over the largest task (``ceil(max(sizes) / batch_size)`` steps, the last
    one short); every step takes a batch from every task. A smaller task draws from a stream of
    fresh permutations, so it cycles instead of stopping early.
    """
    rng = np.random.default_rng(seed)
    largest = max(sizes)
    steps = math.ceil(largest / batch_size)
    streams: list[list[int]] = [[] for _ in sizes]
    plan = []
    for _ in range(epochs):
        epoch_batches: list[list[np.ndarray]] = [[] for _ in range(steps)]
        for k, n in enumerate(sizes):
            if n == largest:
                order = rng.permutation(n)
                for step in range(steps):
                    epoch_batches[step].append(order[step * batch_size:(step + 1) * batch_size])
            else:
                for step in range(steps):
                    while len(streams[k]) < batch_size:
                        streams[k].extend(rng.permutation(n).tolist())
                    epoch_batches[step].append(np.asarray(streams[k][:batch_size]))
                    del streams[k][:batch_size]
        plan.append(epoch_batches)
    return plan


def evaluate(first_layer: np.ndarray, params: dict[str, np.ndarray], task_index: int,
             test_x: sp.csr_matrix, test_y: np.ndarray, average: str) -> float:
    """Test F1 of one task head.

    Args:
        first_layer: the first hidden layer as ``(n_features, hidden)`` (rows = words).
        params: the other layers in ``nn.Linear`` layout, as numpy arrays.
    """
    h = np.maximum(test_x @ first_layer + params["hidden.0.bias"], 0.0)
    i = 1
    while f"hidden.{i}.weight" in params:
        h = np.maximum(h @ params[f"hidden.{i}.weight"].T + params[f"hidden.{i}.bias"], 0.0)
        i += 1
    logits = h @ params[f"head.{task_index}.weight"].T + params[f"head.{task_index}.bias"]
    return f1(np.asarray(test_y), logits.argmax(1), average)


def f1(gold: np.ndarray, predicted: np.ndarray, average: str = "macro") -> float:
    """F1 as scikit-learn's ``f1_score(..., zero_division=0)`` computes it, without its overhead.

    The study evaluates every model 20-30 times; scikit-learn's input validation took longer than
    the forward pass. ``average``: "macro" (over labels in gold or predictions) or "binary"
    (label 1); other values go to scikit-learn.
    """
    if average == "macro":
        labels = np.union1d(gold, predicted)
    elif average == "binary":
        labels = np.array([1])
    else:
        return float(f1_score(gold, predicted, average=average, zero_division=0))
    scores = []
    for label in labels:
        is_gold, is_predicted = gold == label, predicted == label
        true_positive = np.count_nonzero(is_gold & is_predicted)
        denominator = np.count_nonzero(is_gold) + np.count_nonzero(is_predicted)
        scores.append(2 * true_positive / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _eval_epochs(settings: TrainSettings) -> set[int]:
    epochs = set(range(settings.eval_every, settings.epochs + 1, settings.eval_every)) if settings.eval_every else set()
    return epochs | {e for e in settings.f1_epochs if e <= settings.epochs} | {settings.epochs}


class _CsrRows:
    """Fast row gathering from a CSR matrix (numpy index arithmetic, no scipy slicing)."""

    def __init__(self, matrix: sp.csr_matrix, column_map: np.ndarray | None = None) -> None:
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.sort_indices()
        self.indptr = matrix.indptr.astype(np.int64)
        self.indices = matrix.indices.astype(np.int64)
        if column_map is not None:  # e.g. word -> row of the model's stacked first layer
            self.indices = column_map[self.indices]
        self.data = matrix.data

    def entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entries per row, column, value) of every stored entry of ``rows``, row by row."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        total = int(lengths.sum())
        # position of each entry: start of its row + its offset within the row
        within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        where = np.repeat(starts, lengths) + within
        return lengths, self.indices[where], self.data[where]


def _adam(params: list[torch.Tensor], grads: list[torch.Tensor], ms: list[torch.Tensor],
          vs: list[torch.Tensor], step: int, settings: TrainSettings) -> None:
    """torch.optim.Adam's update (its fused kernel on CPU and CUDA, its formula elsewhere)."""
    beta1, beta2 = settings.betas
    if params[0].device.type in ("cpu", "cuda"):
        steps = [torch.tensor(float(step), device=params[0].device) for _ in params]
        torch._fused_adam_(params, grads, ms, vs, [], steps, lr=settings.lr, beta1=beta1, beta2=beta2,
                           weight_decay=0.0, eps=settings.eps, amsgrad=False, maximize=False)
        return
    for param, grad, m, v in zip(params, grads, ms, vs):
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = v.sqrt().div_(math.sqrt(1 - beta2 ** step)).add_(settings.eps)
        param.addcdiv_(m, denom, value=-settings.lr / (1 - beta1 ** step))


@dataclass(frozen=True)
class Job:
    """One model to train: its tasks (1: single-task, 2+: hard sharing) and its seed."""

    tasks: tuple[TaskArrays, ...]
    seed: int

    def shape(self) -> tuple[int, ...]:
        """Jobs with the same shape (training-set sizes) can be trained side by side."""
        return tuple(t.train_x.shape[0] for t in self.tasks)


class SparseMLPEngine:
    """Train study models, several side by side, with a hand-written sparse forward/backward.

    Models trained together are independent (own weights, seed, batches, Adam state); stacking
    them turns their per-step work into a few batched operations, so PyTorch's per-operation
    overhead is paid once per step instead of once per model -- on a CPU that is most of the time
    of such small models, and on a GPU it is what fills the device.

    Args:
        device: a torch device; "cpu" here, CUDA where present.
    """

    def __init__(self, *, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    def train(self, tasks: list[TaskArrays], settings: TrainSettings, seed: int,
              step_losses: list[float] | None = None) -> RunResult:
        """Train one model; if ``step_losses`` is given, append the total loss of every step."""
        return self.train_many([Job(tuple(tasks), seed)], settings,
                               None if step_losses is None else [step_losses])[0]

    def train_many(self, jobs: list[Job], settings: TrainSettings,
                   step_losses: list[list[float]] | None = None) -> list[RunResult]:
        """Train every job side by side; all must have the same :meth:`Job.shape`."""
        if len(settings.hidden) < 1:
            raise ValueError("the study MLP needs at least one hidden layer")
        if len({job.shape() for job in jobs}) != 1:
            raise ValueError("jobs trained together need the same number of tasks and training sizes")
        device = self.device
        n_models, n_tasks = len(jobs), len(jobs[0].tasks)
        n_features = jobs[0].tasks[0].train_x.shape[1]
        hidden = settings.hidden
        n_hidden = len(hidden)
        inits = [init_parameters(n_features, hidden, [t.num_classes for t in job.tasks], job.seed) for job in jobs]
        plans = [batch_plan(list(job.shape()), settings.batch_size, settings.epochs, job.seed) for job in jobs]

        # First layers as rows (one per word). A word absent from a model's training rows never gets
        # a gradient, so Adam never moves its row (m = v = 0): only the seen words' rows are
        # trained, stacked for all models; the full layer is rebuilt for evaluation.
        seen = [np.unique(np.concatenate([t.train_x.indices for t in job.tasks])).astype(np.int64) for job in jobs]
        seen_offsets = np.cumsum([0] + [len(s) for s in seen])
        compact_of = []
        for g, words in enumerate(seen):
            lookup = np.full(n_features, -1, dtype=np.int64)
            lookup[words] = np.arange(len(words)) + seen_offsets[g]
            compact_of.append(lookup)
        full_first = [init["hidden.0.weight"].T.contiguous().numpy() for init in inits]
        first = torch.cat([torch.from_numpy(full_first[g][seen[g]]) for g in range(n_models)]).to(device)
        first_grad = torch.zeros_like(first)
        # every other parameter lives in one flat buffer, as (models, ...) views
        small_names = [n for n in inits[0] if n != "hidden.0.weight"]
        shapes = {n: (n_models, *inits[0][n].shape) for n in small_names}
        for n in small_names:
            if any(init[n].shape != inits[0][n].shape for init in inits):
                raise ValueError("jobs trained together need the same label-space sizes")
        flat = torch.cat([torch.stack([init[n] for init in inits]).reshape(-1) for n in small_names]).to(device)
        flat_grad = torch.zeros_like(flat)
        sizes = [math.prod(shapes[n]) for n in small_names]
        views = {n: v.view(shapes[n]) for n, v in zip(small_names, flat.split(sizes))}
        grads = {n: g.view(shapes[n]) for n, g in zip(small_names, flat_grad.split(sizes))}
        params, param_grads = [first, flat], [first_grad, flat_grad]
        moments = [torch.zeros_like(p) for p in params]
        squares = [torch.zeros_like(p) for p in params]

        rows_of = [[_CsrRows(t.train_x, compact_of[g]) for t in job.tasks] for g, job in enumerate(jobs)]
        labels_of = [[np.asarray(t.train_y, dtype=np.int64) for t in job.tasks] for job in jobs]
        eval_at = _eval_epochs(settings)
        results = [RunResult(train_loss={t.name: [] for t in job.tasks}, test_f1={t.name: {} for t in job.tasks})
                   for job in jobs]
        previous = torch.zeros(0, dtype=torch.int64, device=device)

        step = 0
        for epoch in range(1, settings.epochs + 1):
            epoch_loss = np.zeros((n_models, n_tasks))
            epoch_rows = np.zeros(n_tasks)
            for step_in_epoch in range(len(plans[0][epoch - 1])):
                step += 1
                batches = [plans[g][epoch - 1][step_in_epoch] for g in range(n_models)]
                task_sizes = [len(b) for b in batches[0]]  # equal across models (same shape)
                task_offsets = np.cumsum([0] + task_sizes)
                rows_per_model = int(task_offsets[-1])
                # the step's rows: model-major, then task; columns: the present (model, word) rows
                lengths, cols, vals = [], [], []
                for g in range(n_models):
                    for k in range(n_tasks):
                        part = rows_of[g][k].entries(batches[g][k])
                        lengths.append(part[0])
                        cols.append(part[1])
                        vals.append(part[2])
                lengths, cols, vals = np.concatenate(lengths), np.concatenate(cols), np.concatenate(vals)
                n_rows = n_models * rows_per_model
                offsets_t = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
                cols_t, vals_t = torch.from_numpy(cols), torch.from_numpy(vals)
                # the transposed structure (entries grouped by word) for the weight gradient
                by_word = np.argsort(cols, kind="stable")
                sorted_cols = cols[by_word]
                starts = np.flatnonzero(np.concatenate([[True], sorted_cols[1:] != sorted_cols[:-1]]))
                idx = torch.from_numpy(sorted_cols[starts]).to(device)
                entry_rows = torch.from_numpy(np.repeat(np.arange(n_rows), lengths)[by_word]).to(device)
                labels = [torch.from_numpy(np.stack([labels_of[g][k][batches[g][k]] for g in range(n_models)])).to(device)
                          for k in range(n_tasks)]

                # forward: (models, rows, hidden) activations, keeping them for the ReLU masks;
                # x @ W for a sparse x is an embedding-bag sum of W's rows weighted by x's values
                pre = torch.nn.functional.embedding_bag(cols_t.to(device), first, offsets_t.to(device), mode="sum",
                                                        per_sample_weights=vals_t.to(device))
                pre = pre.view(n_models, rows_per_model, -1).add_(views["hidden.0.bias"][:, None, :])
                activations = []
                for i in range(1, n_hidden):
                    h = pre.clamp_min(0.0)
                    activations.append(h)
                    pre = torch.baddbmm(views[f"hidden.{i}.bias"][:, None, :], h,
                                        views[f"hidden.{i}.weight"].transpose(1, 2))
                top = pre.clamp_min(0.0)
                grad_top = torch.empty_like(top)
                step_total = np.zeros(n_models)
                for k in range(n_tasks):
                    lo, hi = int(task_offsets[k]), int(task_offsets[k + 1])
                    top_k = top[:, lo:hi]
                    logits = torch.baddbmm(views[f"head.{k}.bias"][:, None, :], top_k,
                                           views[f"head.{k}.weight"].transpose(1, 2))
                    log_prob = torch.log_softmax(logits, dim=2)
                    picked = log_prob.gather(2, labels[k][:, :, None])[:, :, 0]
                    losses = (-picked.mean(1)).double().cpu().numpy()
                    step_total += losses
                    epoch_loss[:, k] += losses * (hi - lo)
                    epoch_rows[k] += hi - lo
                    # d(mean cross-entropy)/d logits = (softmax - onehot) / batch rows
                    d_logits = log_prob.exp_()
                    d_logits.scatter_add_(2, labels[k][:, :, None], torch.full_like(picked[:, :, None], -1.0))
                    d_logits.div_(hi - lo)
                    torch.bmm(d_logits.transpose(1, 2), top_k, out=grads[f"head.{k}.weight"])
                    torch.sum(d_logits, 1, out=grads[f"head.{k}.bias"])
                    grad_top[:, lo:hi] = torch.bmm(d_logits, views[f"head.{k}.weight"])
                if step_losses is not None:
                    for g in range(n_models):
                        step_losses[g].append(float(step_total[g]))
                # backward through the hidden layers
                grad_pre = grad_top.mul_(top > 0)
                for i in range(n_hidden - 1, 0, -1):
                    h = activations[i - 1]
                    torch.bmm(grad_pre.transpose(1, 2), h, out=grads[f"hidden.{i}.weight"])
                    torch.sum(grad_pre, 1, out=grads[f"hidden.{i}.bias"])
                    grad_pre = torch.bmm(grad_pre, views[f"hidden.{i}.weight"]).mul_(h > 0)
                torch.sum(grad_pre, 1, out=grads["hidden.0.bias"])
                # the first layers' gradient is zero outside the present rows: clear only the
                # rows the previous step wrote
                first_grad.index_fill_(0, previous, 0.0)
                word_grads = torch.nn.functional.embedding_bag(
                    entry_rows, grad_pre.reshape(n_rows, -1), torch.from_numpy(starts).to(device), mode="sum",
                    per_sample_weights=torch.from_numpy(vals[by_word]).to(device))
                first_grad.index_copy_(0, idx, word_grads)
                previous = idx
                _adam(params, param_grads, moments, squares, step, settings)

            for g, job in enumerate(jobs):
                for k, t in enumerate(job.tasks):
                    results[g].train_loss[t.name].append(float(epoch_loss[g, k] / max(epoch_rows[k], 1)))
            if epoch in eval_at:
                first_np = first.detach().cpu().numpy()
                for g, job in enumerate(jobs):
                    model_params = {n: p[g].detach().cpu().numpy() for n, p in views.items()}
                    model_first = full_first[g]
                    model_first[seen[g]] = first_np[seen_offsets[g]:seen_offsets[g + 1]]
                    for k, t in enumerate(job.tasks):
                        results[g].test_f1[t.name][epoch] = evaluate(model_first, model_params, k, t.test_x,
                                                                     t.test_y, settings.f1_average)
        for result in results:
            result.steps = step
        return results
