"""The study's training engine: many small TF-IDF MLPs, fast on a CPU.

The meta-study trains thousands of 10,000 -> 100 -> 100 -> 2 MLPs (single-task, or two tasks
hard-sharing the hidden layers with one batch from each task per step). The straightforward loop
(:mod:`textmtl.meta.reference`: ``nn.Linear`` on a densified batch, autograd, ``torch.optim.Adam``)
spends its time multiplying 32 x 10,000 mostly-zero inputs and in autograd's bookkeeping. This
engine computes the same model by hand:

* the first layer's forward is an embedding-bag sum of the rows of the words present in the batch
  (a batch of 32 cleaned posts holds about 1,500 of the 10,000 words), weighted by their TF-IDF
  values, and its weight gradient is the same sum the other way round;
* the backward pass is written out (cross-entropy or binary cross-entropy, ReLU or sigmoid,
  dropout, linear), no autograd graph;
* words absent from a model's training rows never get a gradient, so Adam never moves their rows
  (m = v = 0): only the seen words' rows are trained, and the test rows' sums over the unseen
  words (their initial weights) are computed once per run;
* every trained parameter takes exactly ``torch.optim.Adam``'s update, through its fused kernel
  (``torch._fused_adam_``), in one call per step. Keras's Adam differs only in where ε sits
  (ε̂ = ε / sqrt(1 - β2^t) in PyTorch's form), so it is the same kernel with a per-step ε.

A lazy ("sparse") Adam that defers the update of absent rows was built and measured first: its
deferred step is a closed form in the row's moments only if Adam's ε is dropped (which moved the
losses by up to 20 % within 100 steps), and the ε series plus step-by-step sums for tiny second
moments needed to match the reference to 1e-4 cost about 2 ms per step here, against 0.26-0.45 ms
for the fused update of the trained rows. So the engine is exact: from the same seed it follows
the reference to float32 rounding (tests/meta/test_engine.py).

Both engines share :func:`init_parameters`, :func:`batch_plan`, :func:`dropout_masks` and
:func:`evaluate`, so from the same seed they start from the same weights, see the same batches
and drop the same units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import f1_score

from ..errors import ConfigError

ACTIVATIONS = ("relu", "sigmoid")
#: "softmax": one logit per class and cross-entropy; "sigmoid": one logit, binary cross-entropy
HEADS = ("softmax", "sigmoid")
#: "torch": ``nn.Linear``'s default draws; "keras": Keras 2's Dense defaults (Glorot-uniform
#: hidden kernels, zero biases) with a ``RandomUniform(-0.05, 0.05)`` output kernel (``init="uniform"``)
INITS = ("torch", "keras")
#: where Adam's ε sits: "torch" (sqrt(v̂) + ε) or "keras" (Keras 2: sqrt(v) + ε, bias-corrected step size)
ADAMS = ("torch", "keras")
#: "per_task": every task draws its own batch order; "shared": tasks of equal size take the same
#: rows, as Keras's multi-input ``fit`` slices every input with one shuffled index array
BATCH_ORDERS = ("per_task", "shared")
#: F1 averages with a fast path in :func:`f1` ("micro" of a single-label task is accuracy)
FAST_AVERAGES = ("macro", "binary", "micro")


@dataclass(frozen=True)
class TaskArrays:
    """One binary (or k-way) task as the engine sees it: TF-IDF rows and labels.

    ``dev_x``/``dev_y`` (optional, both or neither): a dev split, scored at the same epochs as
    the test split into :attr:`RunResult.dev_f1` (what ``textmtl advise --measure`` selects the
    epoch on). Without them a run is exactly what it was before they existed.
    """

    name: str
    train_x: sp.csr_matrix
    train_y: np.ndarray
    test_x: sp.csr_matrix
    test_y: np.ndarray
    num_classes: int = 2
    dev_x: sp.csr_matrix | None = None
    dev_y: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.dev_x is None) != (self.dev_y is None):
            raise ValueError(f"task {self.name!r}: dev_x and dev_y go together (both or neither)")


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one study run.

    The defaults are the "cleaned" protocol's (PyTorch conventions); the "authors" protocol's
    Keras values are set by :func:`textmtl.meta.study.protocol_settings` (docs/meta-study.md).

    Args:
        hidden: sizes of the hidden layers (shared between tasks in a multi-task run).
        lr, betas, eps: Adam's.
        batch_size: rows per task per step.
        epochs: passes over the largest task's training rows.
        eval_every: evaluate test F1 every this many epochs (and at ``f1_epochs``); 1 = every epoch.
        f1_epochs: epochs whose test F1 must be recorded (e.g. 100 inside a 150-epoch run).
        f1_average: scikit-learn ``average`` for F1 ("macro": both topics count; "micro": accuracy).
        activation: of the hidden layers (:data:`ACTIVATIONS`).
        head: the output layer and its loss (:data:`HEADS`).
        init: how the initial weights are drawn (:data:`INITS`).
        adam: which Adam (:data:`ADAMS`).
        dropout: rate of (inverted) dropout after every hidden activation, in training only.
        bce_clip: with the sigmoid head, clip the predicted probability to [clip, 1 - clip]
            before the loss, as Keras's ``binary_crossentropy`` does (1e-7): a clipped row adds
            a constant loss and no gradient. 0 = no clipping.
        batch_order: how tasks of a multi-task run are batched (:data:`BATCH_ORDERS`).
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
    activation: str = "relu"
    head: str = "softmax"
    init: str = "torch"
    adam: str = "torch"
    dropout: float = 0.0
    bce_clip: float = 0.0
    batch_order: str = "per_task"

    #: Fields added after the first study: a run key leaves them out while they hold their
    #: default, so the keys of runs made before they existed (same training) stay valid.
    ADDED_FIELDS: ClassVar[tuple[str, ...]] = ("activation", "head", "init", "adam", "dropout", "bce_clip",
                                               "batch_order")

    def __post_init__(self) -> None:
        for name, allowed in (("activation", ACTIVATIONS), ("head", HEADS), ("init", INITS), ("adam", ADAMS),
                              ("batch_order", BATCH_ORDERS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"'{name}' must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"'dropout' must be in [0, 1); got {self.dropout}")
        if not 0.0 <= self.bce_clip < 0.5:
            raise ConfigError(f"'bce_clip' must be in [0, 0.5); got {self.bce_clip}")
        if self.bce_clip and self.head != "sigmoid":
            raise ConfigError("'bce_clip' clips a sigmoid output: it needs head 'sigmoid'")
        if not self.eps > 0:
            raise ConfigError(f"'eps' must be > 0; got {self.eps}")

    def adam_eps(self, step: int) -> float:
        """The ε to hand PyTorch's Adam at ``step`` (1-based) for this setting's Adam.

        Keras 2's Adam steps ``lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)``; PyTorch's steps
        ``lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + ε')``. They are equal for
        ``ε' = ε / sqrt(1-β2^t)``, so one fused kernel serves both.
        """
        if self.adam == "torch":
            return self.eps
        return self.eps / math.sqrt(1.0 - self.betas[1] ** step)

    def clip_logit(self) -> float:
        """|logit| beyond which the sigmoid head's probability is clipped (inf: no clipping)."""
        return math.log((1.0 - self.bce_clip) / self.bce_clip) if self.bce_clip else math.inf

    def outputs(self, num_classes: int) -> int:
        """Output units of a task's head."""
        if self.head == "sigmoid":
            if num_classes != 2:
                raise ConfigError(f"head 'sigmoid' is for binary tasks; got a task of {num_classes} classes")
            return 1
        return num_classes


def key_fields(settings: object) -> dict:
    """The settings' fields as a run key sees them: every field, except those named in the
    class's ``ADDED_FIELDS`` while they hold their default (see :attr:`TrainSettings.ADDED_FIELDS`)."""
    added = getattr(settings, "ADDED_FIELDS", ())
    values = {}
    for f in fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, f.name)
        if f.name in added and value == f.default:
            continue
        values[f.name] = value
    return values


@dataclass
class RunResult:
    """What one training run reports.

    Attributes:
        train_loss: per task, the mean training loss of each epoch (the "loss curve").
        test_f1: per task, ``{epoch: F1}`` at the evaluated epochs.
        steps: optimiser steps taken.
        dev_f1: per task that has a dev split (:class:`TaskArrays` ``dev_x``), ``{epoch: F1}``
            at the same epochs; empty otherwise.
    """

    train_loss: dict[str, list[float]] = field(default_factory=dict)
    test_f1: dict[str, dict[int, float]] = field(default_factory=dict)
    steps: int = 0
    dev_f1: dict[str, dict[int, float]] = field(default_factory=dict)


def init_parameters(n_features: int, hidden: tuple[int, ...], num_classes: list[int],
                    seed: int, init: str = "torch") -> dict[str, torch.Tensor]:
    """Initial weights of an MLP with per-task heads.

    Args:
        num_classes: output units of each task's head (see :meth:`TrainSettings.outputs`).
        init: "torch" (as ``torch.nn.Linear`` draws them) or "keras" (Keras 2's defaults:
            Glorot-uniform hidden kernels ``U(±sqrt(6 / (fan_in + fan_out)))``, zero biases, and
            the authors' ``Dense(1, init="uniform")`` output, ``U(±0.05)``).

    Returns:
        ``{"hidden.0.weight": (out, in), "hidden.0.bias", ..., "head.0.weight", ...}`` in
        ``nn.Linear`` layout; both engines copy these so a seed means the same start.
    """
    if init not in INITS:
        raise ConfigError(f"'init' must be one of {', '.join(INITS)}; got {init!r}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        params: dict[str, torch.Tensor] = {}
        sizes = (n_features, *hidden)

        def layer(n_in: int, n_out: int, output: bool) -> tuple[torch.Tensor, torch.Tensor]:
            if init == "torch":
                linear = torch.nn.Linear(n_in, n_out)
                return linear.weight.detach().clone(), linear.bias.detach().clone()
            limit = 0.05 if output else math.sqrt(6.0 / (n_in + n_out))
            return torch.empty(n_out, n_in).uniform_(-limit, limit), torch.zeros(n_out)

        for i in range(len(hidden)):
            params[f"hidden.{i}.weight"], params[f"hidden.{i}.bias"] = layer(sizes[i], sizes[i + 1], False)
        for k, classes in enumerate(num_classes):
            params[f"head.{k}.weight"], params[f"head.{k}.bias"] = layer(sizes[-1], classes, True)
    finally:
        torch.random.set_rng_state(generator_state)
    return params


def batch_plan(sizes: list[int], batch_size: int, epochs: int, seed: int,
               order: str = "per_task") -> list[list[list[np.ndarray]]]:
    """Row indices of every batch: ``plan[epoch][step][task]``.

    An epoch is one pass over the largest task (``ceil(max(sizes) / batch_size)`` steps, the last
    one short); every step takes a batch from every task. A smaller task draws from a stream of
    fresh permutations, so it cycles instead of stopping early. With ``order="shared"`` and tasks
    of equal size, one permutation per epoch serves every task (Keras's multi-input ``fit``).
    """
    if order not in BATCH_ORDERS:
        raise ConfigError(f"'batch_order' must be one of {', '.join(BATCH_ORDERS)}; got {order!r}")
    rng = np.random.default_rng(seed)
    largest = max(sizes)
    steps = math.ceil(largest / batch_size)
    shared = order == "shared" and len(set(sizes)) == 1
    streams: list[list[int]] = [[] for _ in sizes]
    plan = []
    for _ in range(epochs):
        epoch_batches: list[list[np.ndarray]] = [[] for _ in range(steps)]
        shared_order = rng.permutation(largest) if shared else None
        for k, n in enumerate(sizes):
            if n == largest:
                permutation = shared_order if shared_order is not None else rng.permutation(n)
                for step in range(steps):
                    epoch_batches[step].append(permutation[step * batch_size:(step + 1) * batch_size])
            else:
                for step in range(steps):
                    while len(streams[k]) < batch_size:
                        streams[k].extend(rng.permutation(n).tolist())
                    epoch_batches[step].append(np.asarray(streams[k][:batch_size]))
                    del streams[k][:batch_size]
        plan.append(epoch_batches)
    return plan


def dropout_generator(seed: int) -> np.random.Generator:
    """The generator of a run's dropout masks: its own stream, apart from :func:`batch_plan`'s."""
    return np.random.default_rng([seed, 0x64726F70])  # "drop"


def dropout_masks(rng: np.random.Generator, task_rows: list[int], hidden: tuple[int, ...],
                  rate: float) -> list[list[np.ndarray]]:
    """One step's dropout masks, ``masks[task][layer]``: ``(rows, hidden[layer])`` float32 arrays
    of 0 (dropped) and ``1 / (1 - rate)`` (kept, scaled: inverted dropout, as Keras's).

    Drawn task by task, layer by layer, so an engine that batches all tasks together and one
    that runs them one after the other draw the same masks from the same generator.
    """
    scale = np.float32(1.0 / (1.0 - rate))
    return [[(rng.random((n, h), dtype=np.float32) >= rate).astype(np.float32) * scale for h in hidden]
            for n in task_rows]


def _activate(pre: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(pre, 0.0)
    return (1.0 / (1.0 + np.exp(-pre))).astype(pre.dtype, copy=False)


def predict(first_out: np.ndarray, params: dict[str, np.ndarray], task_index: int,
            activation: str = "relu") -> np.ndarray:
    """Predicted classes from the first layer's output before its bias (``x @ W0``).

    The head is read from its shape: one output unit is a sigmoid head (class 1 where its logit
    is > 0, i.e. p > 0.5, as the authors' ``turn_int``), several are a softmax head (argmax).
    """
    with np.errstate(over="ignore"):  # exp of a very negative pre-activation: sigmoid 0, as it should
        h = _activate(first_out + params["hidden.0.bias"], activation)
        i = 1
        while f"hidden.{i}.weight" in params:
            h = _activate(h @ params[f"hidden.{i}.weight"].T + params[f"hidden.{i}.bias"], activation)
            i += 1
    logits = h @ params[f"head.{task_index}.weight"].T + params[f"head.{task_index}.bias"]
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return logits.argmax(1)


def evaluate(first_layer: np.ndarray, params: dict[str, np.ndarray], task_index: int,
             test_x: sp.csr_matrix, test_y: np.ndarray, average: str, activation: str = "relu") -> float:
    """Test F1 of one task head (dropout off, as at inference).

    Args:
        first_layer: the first hidden layer as ``(n_features, hidden)`` (rows = words).
        params: the other layers in ``nn.Linear`` layout, as numpy arrays.
    """
    predicted = predict(np.asarray(test_x @ first_layer), params, task_index, activation)
    return f1(np.asarray(test_y), predicted, average)


def f1(gold: np.ndarray, predicted: np.ndarray, average: str = "macro") -> float:
    """F1 as scikit-learn's ``f1_score(..., zero_division=0)`` computes it, without its overhead.

    The study evaluates every model up to 150 times; scikit-learn's input validation took longer
    than the forward pass. ``average``: "macro" (over labels in gold or predictions), "binary"
    (label 1) or "micro" (of a single-label task: the share of correct predictions, accuracy);
    other values go to scikit-learn.
    """
    if average == "micro":
        return float(np.count_nonzero(gold == predicted) / len(gold)) if len(gold) else 0.0
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
          vs: list[torch.Tensor], step: int, settings: TrainSettings,
          steps: list[torch.Tensor] | None = None) -> None:
    """torch.optim.Adam's update (its fused kernel on CPU and CUDA, its formula elsewhere), with
    the ε of ``settings.adam`` at this step (:meth:`TrainSettings.adam_eps`).

    ``steps``: one 0-d tensor per parameter, reused from step to step (set to ``step`` here), so
    a step does not allocate them anew.
    """
    beta1, beta2 = settings.betas
    eps = settings.adam_eps(step)
    if params[0].device.type in ("cpu", "cuda"):
        if steps is None:
            steps = [torch.tensor(0.0, device=params[0].device) for _ in params]
        for counter in steps:
            counter.fill_(float(step))
        torch._fused_adam_(params, grads, ms, vs, [], steps, lr=settings.lr, beta1=beta1, beta2=beta2,
                           weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
        return
    for param, grad, m, v in zip(params, grads, ms, vs):
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = v.sqrt().div_(math.sqrt(1 - beta2 ** step)).add_(eps)
        param.addcdiv_(m, denom, value=-settings.lr / (1 - beta1 ** step))


def _activate_t(pre: torch.Tensor, activation: str) -> torch.Tensor:
    return pre.clamp_min(0.0) if activation == "relu" else torch.sigmoid(pre)


def _activation_grad_(grad: torch.Tensor, activated: torch.Tensor, activation: str) -> torch.Tensor:
    """``grad`` times the activation's derivative, from the activation's output, in place."""
    if activation == "relu":
        return grad.mul_(activated > 0)
    return grad.mul_(activated).mul_(1.0 - activated)


@dataclass(frozen=True)
class Job:
    """One model to train: its tasks (1: single-task, 2+: hard sharing) and its seed."""

    tasks: tuple[TaskArrays, ...]
    seed: int

    def shape(self) -> tuple[int, ...]:
        """Jobs with the same shape (training-set sizes) can be trained side by side."""
        return tuple(t.train_x.shape[0] for t in self.tasks)


class _TestRows:
    """A model's test rows of one task, split for a fast evaluation at every epoch.

    The words a model never saw in training keep their initial first-layer rows, so each test
    row's sum over them is computed once; each evaluation then only sums the trained rows of its
    seen words (an embedding bag over the stacked first layers, like the training forward).
    """

    def __init__(self, test_x: sp.csr_matrix, seen: np.ndarray, compact: np.ndarray, initial: np.ndarray,
                 device: torch.device) -> None:
        matrix = sp.csr_matrix(test_x, dtype=np.float32)
        is_seen = np.zeros(matrix.shape[1], dtype=bool)
        is_seen[seen] = True
        unseen_part = matrix[:, np.flatnonzero(~is_seen)]
        self.base = torch.from_numpy(np.asarray(unseen_part @ initial[~is_seen], dtype=np.float32)).to(device)
        seen_part = sp.csr_matrix(matrix[:, seen], dtype=np.float32)  # columns in the order of `seen`
        seen_part.sort_indices()
        self.lengths = np.diff(seen_part.indptr).astype(np.int64)
        self.cols = compact[seen[seen_part.indices.astype(np.int64)]]
        self.vals = seen_part.data.astype(np.float32)


class SparseMLPEngine:
    """Train study models, several side by side, with a hand-written sparse forward/backward.

    Models trained together are independent (own weights, seed, batches, dropout masks, Adam
    state); stacking them turns their per-step work into a few batched operations, so PyTorch's
    per-operation overhead is paid once per step instead of once per model -- on a CPU that is
    most of the time of such small models, and on a GPU it is what fills the device.

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
        activation, sigmoid_head = settings.activation, settings.head == "sigmoid"
        clip = settings.clip_logit()
        inits = [init_parameters(n_features, hidden, [settings.outputs(t.num_classes) for t in job.tasks], job.seed,
                                 settings.init) for job in jobs]
        plans = [batch_plan(list(job.shape()), settings.batch_size, settings.epochs, job.seed, settings.batch_order)
                 for job in jobs]
        droppers = [dropout_generator(job.seed) for job in jobs] if settings.dropout else []

        # First layers as rows (one per word). A word absent from a model's training rows never gets
        # a gradient, so Adam never moves its row (m = v = 0): only the seen words' rows are
        # trained, stacked for all models.
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
        step_counters = [torch.tensor(0.0, device=device) for _ in params]

        rows_of = [[_CsrRows(t.train_x, compact_of[g]) for t in job.tasks] for g, job in enumerate(jobs)]
        labels_of = [[np.asarray(t.train_y, dtype=np.int64) for t in job.tasks] for job in jobs]
        eval_at = _eval_epochs(settings)
        results = [RunResult(train_loss={t.name: [] for t in job.tasks}, test_f1={t.name: {} for t in job.tasks})
                   for job in jobs]
        # the test rows of every (model, task), in one embedding bag per evaluation
        tests = [[_TestRows(t.test_x, seen[g], compact_of[g], full_first[g], device) for t in job.tasks]
                 for g, job in enumerate(jobs)]
        test_lengths = np.concatenate([r.lengths for per_model in tests for r in per_model])
        test_cols = torch.from_numpy(np.concatenate([r.cols for per_model in tests for r in per_model])).to(device)
        test_vals = torch.from_numpy(np.concatenate([r.vals for per_model in tests for r in per_model])).to(device)
        test_offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(test_lengths)[:-1]]).astype(np.int64)).to(device)
        test_gold = [[np.asarray(t.test_y) for t in job.tasks] for job in jobs]
        # dev rows (optional) of the (model, task)s that have them: one more embedding bag per evaluation
        dev_of = [(g, k) for g, job in enumerate(jobs) for k, t in enumerate(job.tasks) if t.dev_x is not None]
        if dev_of:
            devs = [_TestRows(jobs[g].tasks[k].dev_x, seen[g], compact_of[g], full_first[g], device)
                    for g, k in dev_of]
            dev_lengths = np.concatenate([r.lengths for r in devs])
            dev_cols = torch.from_numpy(np.concatenate([r.cols for r in devs])).to(device)
            dev_vals = torch.from_numpy(np.concatenate([r.vals for r in devs])).to(device)
            dev_starts = np.concatenate([[0], np.cumsum(dev_lengths)[:-1]]).astype(np.int64)
            dev_offsets = torch.from_numpy(dev_starts).to(device)
            for g, k in dev_of:
                results[g].dev_f1[jobs[g].tasks[k].name] = {}
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
                masks = None
                if settings.dropout:
                    per_model = [dropout_masks(droppers[g], task_sizes, hidden, settings.dropout) for g in range(n_models)]
                    masks = [torch.from_numpy(np.stack([np.concatenate([per_model[g][k][i] for k in range(n_tasks)])
                                                        for g in range(n_models)])).to(device) for i in range(n_hidden)]

                # forward: (models, rows, hidden) activations, keeping them for the backward;
                # x @ W for a sparse x is an embedding-bag sum of W's rows weighted by x's values
                pre = torch.nn.functional.embedding_bag(cols_t.to(device), first, offsets_t.to(device), mode="sum",
                                                        per_sample_weights=vals_t.to(device))
                pre = pre.view(n_models, rows_per_model, -1).add_(views["hidden.0.bias"][:, None, :])
                activated, inputs = [], []  # per layer: activation, and what the next layer reads
                for i in range(n_hidden):
                    a = _activate_t(pre, activation)
                    activated.append(a)
                    inputs.append(a * masks[i] if masks is not None else a)
                    if i + 1 < n_hidden:
                        pre = torch.baddbmm(views[f"hidden.{i + 1}.bias"][:, None, :], inputs[i],
                                            views[f"hidden.{i + 1}.weight"].transpose(1, 2))
                top = inputs[-1]
                grad_top = torch.empty_like(top)
                step_total = np.zeros(n_models)
                for k in range(n_tasks):
                    lo, hi = int(task_offsets[k]), int(task_offsets[k + 1])
                    top_k = top[:, lo:hi]
                    logits = torch.baddbmm(views[f"head.{k}.bias"][:, None, :], top_k,
                                           views[f"head.{k}.weight"].transpose(1, 2))
                    if sigmoid_head:
                        z = logits[:, :, 0]
                        target = labels[k].to(z.dtype)
                        clipped = z.clamp(-clip, clip) if math.isfinite(clip) else z
                        per_row = torch.nn.functional.binary_cross_entropy_with_logits(clipped, target, reduction="none")
                        losses = per_row.mean(1).double().cpu().numpy()
                        # d(mean BCE)/d logit = (sigmoid - y) / rows, and 0 where the clip holds
                        d_z = torch.sigmoid(clipped).sub_(target)
                        if math.isfinite(clip):
                            d_z.mul_((z >= -clip) & (z <= clip))
                        d_logits = d_z.div_(hi - lo)[:, :, None]
                    else:
                        log_prob = torch.log_softmax(logits, dim=2)
                        picked = log_prob.gather(2, labels[k][:, :, None])[:, :, 0]
                        losses = (-picked.mean(1)).double().cpu().numpy()
                        # d(mean cross-entropy)/d logits = (softmax - onehot) / batch rows
                        d_logits = log_prob.exp_()
                        d_logits.scatter_add_(2, labels[k][:, :, None], torch.full_like(picked[:, :, None], -1.0))
                        d_logits.div_(hi - lo)
                    step_total += losses
                    epoch_loss[:, k] += losses * (hi - lo)
                    epoch_rows[k] += hi - lo
                    torch.bmm(d_logits.transpose(1, 2), top_k, out=grads[f"head.{k}.weight"])
                    torch.sum(d_logits, 1, out=grads[f"head.{k}.bias"])
                    grad_top[:, lo:hi] = torch.bmm(d_logits, views[f"head.{k}.weight"])
                if step_losses is not None:
                    for g in range(n_models):
                        step_losses[g].append(float(step_total[g]))
                # backward through the hidden layers: grad_input is d loss / d (layer i's output
                # after dropout); the mask, then the activation's derivative, give d loss / d pre_i
                grad_input = grad_top
                for i in range(n_hidden - 1, -1, -1):
                    if masks is not None:
                        grad_input.mul_(masks[i])
                    grad_pre = _activation_grad_(grad_input, activated[i], activation)
                    if i == 0:
                        break
                    torch.bmm(grad_pre.transpose(1, 2), inputs[i - 1], out=grads[f"hidden.{i}.weight"])
                    torch.sum(grad_pre, 1, out=grads[f"hidden.{i}.bias"])
                    grad_input = torch.bmm(grad_pre, views[f"hidden.{i}.weight"])
                torch.sum(grad_pre, 1, out=grads["hidden.0.bias"])
                # the first layers' gradient is zero outside the present rows: clear the rows the
                # previous step wrote (a whole-buffer memset is faster than an indexed fill once
                # they are more than a few percent of the rows)
                if len(previous) * 16 > first_grad.shape[0]:
                    first_grad.zero_()
                else:
                    first_grad.index_fill_(0, previous, 0.0)
                word_grads = torch.nn.functional.embedding_bag(
                    entry_rows, grad_pre.reshape(n_rows, -1), torch.from_numpy(starts).to(device), mode="sum",
                    per_sample_weights=torch.from_numpy(vals[by_word]).to(device))
                first_grad.index_copy_(0, idx, word_grads)
                previous = idx
                _adam(params, param_grads, moments, squares, step, settings, step_counters)

            for g, job in enumerate(jobs):
                for k, t in enumerate(job.tasks):
                    results[g].train_loss[t.name].append(float(epoch_loss[g, k] / max(epoch_rows[k], 1)))
            if epoch in eval_at:
                with torch.no_grad():
                    sums = torch.nn.functional.embedding_bag(test_cols, first, test_offsets, mode="sum",
                                                             per_sample_weights=test_vals)
                    parts = sums.split([len(r.lengths) for per_model in tests for r in per_model])
                for g, job in enumerate(jobs):
                    model_params = {n: p[g].detach().cpu().numpy() for n, p in views.items()}
                    for k, t in enumerate(job.tasks):
                        first_out = (parts[g * n_tasks + k] + tests[g][k].base).cpu().numpy()
                        predicted = predict(first_out, model_params, k, activation)
                        results[g].test_f1[t.name][epoch] = f1(test_gold[g][k], predicted, settings.f1_average)
                if dev_of:
                    with torch.no_grad():
                        dev_sums = torch.nn.functional.embedding_bag(dev_cols, first, dev_offsets, mode="sum",
                                                                     per_sample_weights=dev_vals)
                        dev_parts = dev_sums.split([len(r.lengths) for r in devs])
                    for (g, k), rows, part in zip(dev_of, devs, dev_parts):
                        t = jobs[g].tasks[k]
                        model_params = {n: p[g].detach().cpu().numpy() for n, p in views.items()}
                        predicted = predict((part + rows.base).cpu().numpy(), model_params, k, activation)
                        results[g].dev_f1[t.name][epoch] = f1(np.asarray(t.dev_y), predicted, settings.f1_average)
        for result in results:
            result.steps = step
        return results
