"""The training loop, written once for every encoder x sharing x weighting x sampler.

It only uses the contracts: ``model(inputs, task_index)``, ``model.extra_losses()``,
``model.on_step_end(step)``, ``weighting.combine(task_losses)`` and ``sampler.plan_epoch``.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.batching import IGNORE_LABEL, MultiTaskData
from ..data.samplers import TaskSampler, TaskStreams
from ..errors import ConfigError
from ..sharing.base import SharingMethod
from ..weighting.base import LossWeighting
from .metrics import METRICS, classification_metrics

AVERAGE = "average"


@dataclass
class TrainingConfig:
    """Optimisation, early stopping and model selection settings.

    Attributes:
        optimizer: "adam" or "sgd".
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty of the optimiser.
        lr_decay: the learning rate is multiplied by this after every epoch (1: constant).
        batch_size: rows per task per batch.
        max_epochs: upper bound on epochs.
        patience: stop after this many epochs without a better dev score (0: never stop early).
        clip_norm: clip the global gradient norm to this (None: no clipping).
        select_on: "average" (mean over tasks) or a task name: whose dev metric selects the
            best epoch and drives early stopping.
        select_metric: "accuracy" or "macro_f1".
        eval_batch_size: rows per evaluation batch.
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
        threads: torch CPU threads (None: torch's default).
        progress: show a progress bar.
    """

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_decay: float = 1.0
    batch_size: int = 32
    max_epochs: int = 30
    patience: int = 5
    clip_norm: float | None = 5.0
    select_on: str = AVERAGE
    select_metric: Literal["accuracy", "macro_f1"] = "accuracy"
    eval_batch_size: int = 512
    device: str = "auto"
    threads: int | None = None
    progress: bool = True

    def validate(self) -> None:
        checks = [
            (self.lr > 0, "lr", "> 0", self.lr),
            (self.batch_size >= 1, "batch_size", ">= 1", self.batch_size),
            (self.max_epochs >= 1, "max_epochs", ">= 1", self.max_epochs),
            (self.patience >= 0, "patience", ">= 0", self.patience),
            (0 < self.lr_decay <= 1, "lr_decay", "in (0, 1]", self.lr_decay),
            (self.clip_norm is None or self.clip_norm > 0, "clip_norm", "> 0 or null", self.clip_norm),
            (self.select_metric in METRICS, "select_metric", f"one of {METRICS}", self.select_metric),
            (self.optimizer in ("adam", "sgd"), "optimizer", "'adam' or 'sgd'", self.optimizer),
        ]
        for ok, key, expected, got in checks:
            if not ok:
                raise ConfigError(f"'training.{key}' must be {expected}, got {got!r}")


@dataclass
class TrainResult:
    """What one training run produced (test metrics are read at the dev-selected epoch)."""

    best_epoch: int
    dev: dict[str, dict[str, float]]
    test: dict[str, dict[str, float]]
    curves: list[dict] = field(default_factory=list)
    state_dict: dict | None = None
    steps: int = 0
    seconds_per_epoch: float = 0.0


def resolve_device(name: str, key: str = "training.device") -> torch.device:
    """"auto" is CUDA when available, else CPU; anything else is passed to torch (``key`` names
    the setting in the error message)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"'{key}' must be auto, cpu or cuda[:N], got {name!r}") from error
    # torch accepts "cuda" on a machine without it and fails at the first tensor moved there
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"'{key}' is {name!r}, but this machine has no CUDA device (use auto or cpu)")
    return device


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; returns the run's NumPy generator."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def task_losses(logits: torch.Tensor, labels: torch.Tensor, task_index: torch.Tensor,
                task_names: list[str]) -> dict[str, torch.Tensor]:
    """Mean cross-entropy of each task present in the batch (over its rows or tokens)."""
    if logits.dim() == 3:  # tagging: every token is an example of its row's task
        task_index = task_index[:, None].expand_as(labels)
        logits, labels, task_index = logits.flatten(0, 1), labels.flatten(), task_index.flatten()
    per_example = F.cross_entropy(logits, labels, reduction="none", ignore_index=IGNORE_LABEL)
    valid = (labels != IGNORE_LABEL).to(per_example.dtype)
    k = len(task_names)
    sums = per_example.new_zeros(k).index_add(0, task_index, per_example * valid)
    counts = per_example.new_zeros(k).index_add(0, task_index, valid)
    present = (counts > 0).nonzero(as_tuple=True)[0].tolist()
    return {task_names[i]: sums[i] / counts[i] for i in present}


@torch.no_grad()
def evaluate(model: SharingMethod, data: MultiTaskData, split: str, device: torch.device,
             batch_size: int = 512) -> dict[str, dict[str, float]]:
    """Accuracy, macro-F1 and mean cross-entropy ("loss") of every task on ``split``."""
    was_training = model.training
    model.eval()
    results = {}
    for k, task in enumerate(data.tasks):
        gold, predicted, loss_sum = [], [], 0.0
        size = len(data.rows[split][k])
        for start in range(0, size, batch_size):
            positions = np.arange(start, min(start + batch_size, size))
            inputs, task_index, labels = data.batch(split, [(k, positions)])
            logits = model(inputs.to(device), task_index.to(device)).cpu()
            keep = labels != IGNORE_LABEL
            loss_sum += float(F.cross_entropy(logits[keep], labels[keep], reduction="sum"))
            gold.append(labels[keep].numpy())
            predicted.append(logits.argmax(-1)[keep].numpy())
        gold_all = np.concatenate(gold)
        results[task.name] = {
            **classification_metrics(gold_all, np.concatenate(predicted), task.num_classes),
            "loss": loss_sum / len(gold_all)}
    model.train(was_training)
    return results


def selection_score(metrics: dict[str, dict[str, float]], config: TrainingConfig) -> tuple[float, float]:
    """(dev metric, minus dev loss) of the selected task(s); compared as a tuple.

    The loss breaks ties: on small dev sets accuracy often stays flat for epochs while the
    model still improves, and a strict metric-only rule would stop training there.
    """
    chosen = list(metrics.values()) if config.select_on == AVERAGE else [metrics[config.select_on]]
    return (float(np.mean([m[config.select_metric] for m in chosen])),
            -float(np.mean([m["loss"] for m in chosen])))


def build_optimizer(parameters: list[torch.nn.Parameter], config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # the fused kernel updates all tensors in one pass: the dense update of a wide first
        # layer dominates a TF-IDF MLP's step (same arithmetic as the loop version)
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters)
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay,
                                fused=fused)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def train(model: SharingMethod, weighting: LossWeighting, sampler: TaskSampler,
          data: MultiTaskData, config: TrainingConfig, seed: int,
          description: str = "train", stream_order: Callable | None = None) -> TrainResult:
    """Train ``model`` on ``data`` and return the metrics of the best dev epoch.

    Args:
        model: a sharing method built for ``data.tasks`` (same order).
        weighting: combines the per-task losses.
        sampler: plans the steps of each epoch.
        data: featurized tasks.
        config: training settings.
        seed: seeds the batches and dropout (the model is built by the caller, seeded too).
        description: progress-bar label.
        stream_order: optional per-task row order (see :class:`TaskStreams`).
    Returns:
        The best-dev-epoch metrics on dev and test, the learning curves and the best weights.
    """
    config.validate()
    if model.needs_grads or getattr(weighting, "needs_grads", False):
        # reserved capability: gradient-manipulating methods need per-task backward passes
        raise ConfigError("this trainer does not yet support methods with needs_grads=True")
    if config.select_on != AVERAGE and config.select_on not in data.task_names:
        raise ConfigError(f"'training.select_on' must be 'average' or a task name "
                          f"({', '.join(data.task_names)}), got {config.select_on!r}")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    rng = seed_everything(seed)
    model.to(device)
    weighting.to(device)
    parameters = [p for p in list(model.parameters()) + list(weighting.parameters()) if p.requires_grad]
    optimizer = build_optimizer(parameters, config)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    streams = TaskStreams(data.train_sizes(), rng, stream_order)

    best_score, best_epoch, best_state, best_dev = (-math.inf, -math.inf), 0, None, None
    curves, step, epochs_without_gain, started = [], 0, 0, time.perf_counter()
    # disable=None: shown on a terminal, silent in logs and CI
    bar = tqdm(desc=description, disable=not config.progress or None, leave=False,
               dynamic_ncols=True, unit="step")
    last_dev = "-"
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        plan = sampler.plan_epoch(data.train_sizes(), config.batch_size, rng)
        if bar.total is None:
            bar.total = len(plan) * config.max_epochs  # an upper bound: early stopping ends sooner
        loss_sums: dict[str, float] = {}
        loss_counts: dict[str, int] = {}
        for parts in plan:
            batch_parts = [(k, streams.take(k, n)) for k, n in parts]
            inputs, task_index, labels = data.batch("train", batch_parts)
            inputs, task_index, labels = inputs.to(device), task_index.to(device), labels.to(device)
            logits = model(inputs, task_index)
            losses = task_losses(logits, labels, task_index, data.task_names)
            total = weighting.combine(losses)
            for extra in model.extra_losses().values():
                total = total + extra
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if config.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(parameters, config.clip_norm)
            optimizer.step()
            step += 1
            model.on_step_end(step)
            for name, loss in losses.items():
                loss_sums[name] = loss_sums.get(name, 0.0) + loss.item()
                loss_counts[name] = loss_counts.get(name, 0) + 1
            bar.update(1)
            if bar.n % 10 == 1 or len(parts) == 1:
                task_label = data.task_names[parts[0][0]] if len(parts) == 1 else f"all {len(parts)}"
                running = sum(loss_sums.values()) / sum(loss_counts.values())
                bar.set_postfix_str(f"epoch {epoch} task {task_label} loss {running:.4f} "
                                    f"dev {config.select_metric} {last_dev}", refresh=False)
        scheduler.step()
        dev = evaluate(model, data, "dev", device, config.eval_batch_size)
        score = selection_score(dev, config)
        train_loss = {n: loss_sums[n] / loss_counts[n] for n in loss_sums}
        curves.append({"epoch": epoch, "train_loss": train_loss, "dev": dev,
                       "dev_score": score[0], "dev_loss": -score[1]})
        if score > best_score:
            best_score, best_epoch, best_dev = score, epoch, dev
            best_state = copy.deepcopy(model.state_dict())
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
        last_dev = f"{score[0]:.4f} (best {best_score[0]:.4f} @ {best_epoch})"
        if config.patience and epochs_without_gain >= config.patience:
            break
    bar.close()
    elapsed = (time.perf_counter() - started) / len(curves)
    model.load_state_dict(best_state)
    test = evaluate(model, data, "test", device, config.eval_batch_size)
    return TrainResult(best_epoch, best_dev, test, curves, best_state, step, elapsed)
