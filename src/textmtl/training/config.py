"""Optimisation, early stopping and model selection settings (the ``training:`` section).

Kept apart from the training loop so that reading a config imports neither torch nor any
component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError

AVERAGE = "average"
#: ``select_metric`` value that picks each task's own default metric (accuracy for
#: classification and POS-like tagging, chunk span-F1 for BIO tagging)
AUTO = "auto"
#: the metrics a task can be selected on (see :mod:`textmtl.training.metrics`)
SELECTABLE_METRICS = ("accuracy", "macro_f1", "span_f1")


@dataclass
class TrainingConfig:
    """Optimisation, early stopping and model selection settings.

    Attributes:
        optimizer: "adam" or "sgd".
        lr: learning rate (a method's parameter groups may scale it, e.g. cross-stitch α).
        momentum: SGD momentum.
        weight_decay: L2 penalty of the optimiser.
        lr_decay: the learning rate is multiplied by this after every epoch (1: constant).
        batch_size: rows per task per batch.
        max_epochs: upper bound on epochs.
        patience: stop after this many epochs without a better dev score (0: never stop early).
        clip_norm: clip the global gradient norm to this (None: no clipping).
        select_on: "average" (mean over tasks) or a task name: whose dev metric selects the
            best epoch and drives early stopping.
        select_metric: "auto" (each task's default metric), one metric name for every task
            ("accuracy", "macro_f1", "span_f1"), or a mapping task name -> metric name (tasks
            not named use their default).
        eval_batch_size: rows per evaluation batch.
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
        threads: torch CPU threads (None: torch's default).
        progress: show a progress bar.
        precision: "fp32", "bf16" or "fp16": the training forward pass under autocast, fp16
            with loss scaling on CUDA (:mod:`textmtl.training.precision`).
        tensorboard: a folder for TensorBoard event files of every training (one run per
            training, named after the experiment and the training; None: none). Extra
            ``textmtl[tracking]``. The run folder's ``curves.json`` holds the same values.
        train_max_tokens: cut every TRAINING text to its first this many tokens (token
            features only; None: no cut beyond the features' ``max_length``). Dev, test and
            prediction read the texts as featurized: a recurrence that is too slow over long
            training texts (Zhang et al.'s model over IMDB reviews) trains on their beginnings
            and is still reported on whole test texts.
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
    select_metric: str | dict[str, str] = AUTO
    eval_batch_size: int = 512
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    precision: str = "fp32"
    tensorboard: str | None = None
    train_max_tokens: int | None = None

    def validate(self) -> None:
        """Check the values that need no task names (those are checked with the tasks)."""
        metrics = list(self.select_metric.values()) if isinstance(self.select_metric, dict) \
            else [self.select_metric]
        allowed = (AUTO,) + SELECTABLE_METRICS
        checks = [
            (0 < self.lr < float("inf"), "lr", "> 0 and finite", self.lr),
            (self.batch_size >= 1, "batch_size", ">= 1", self.batch_size),
            (self.max_epochs >= 1, "max_epochs", ">= 1", self.max_epochs),
            (self.patience >= 0, "patience", ">= 0", self.patience),
            (0 < self.lr_decay <= 1, "lr_decay", "in (0, 1]", self.lr_decay),
            (self.clip_norm is None or self.clip_norm > 0, "clip_norm", "> 0 or null", self.clip_norm),
            (all(m in allowed for m in metrics), "select_metric",
             f"one of {', '.join(allowed)} (or a mapping task -> metric)", self.select_metric),
            (self.optimizer in ("adam", "sgd"), "optimizer", "'adam' or 'sgd'", self.optimizer),
            (self.eval_batch_size >= 1, "eval_batch_size", ">= 1", self.eval_batch_size),
            (self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay),
            (0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum),
            (self.threads is None or self.threads >= 1, "threads", ">= 1 or null", self.threads),
            (self.precision in ("fp32", "bf16", "fp16"), "precision", "one of fp32, bf16, fp16",
             self.precision),
            (self.train_max_tokens is None or (isinstance(self.train_max_tokens, int)
                                               and not isinstance(self.train_max_tokens, bool)
                                               and self.train_max_tokens >= 1),
             "train_max_tokens", "an integer >= 1 or null", self.train_max_tokens),
        ]
        for ok, key, expected, got in checks:
            if not ok:
                raise ConfigError(f"'training.{key}' must be {expected}, got {got!r}")

    def metric_of(self, task: str, default: str) -> str:
        """The dev metric that selects epochs for ``task`` (``default``: the task's own)."""
        chosen = self.select_metric.get(task, AUTO) if isinstance(self.select_metric, dict) \
            else self.select_metric
        return default if chosen == AUTO else chosen
