"""The training loop, written once for every encoder x sharing x weighting x sampler.

It only uses the contracts: the sampler's ``plan_epoch``, the method's ``param_groups()``,
``forward(batch)``, ``extra_losses()``, ``penalties()``, ``evaluation_plan`` and hooks, the
weighting's ``backward`` and hooks (:func:`~textmtl.training.step.train_step` does one step).
It never asks which method, weighting or sampler it runs.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.batching import MultiTaskData
from ..data.samplers import TaskSampler, TaskStreams
from ..errors import ConfigError, TrainingError
from .config import AVERAGE, TrainingConfig
from .evaluation import evaluate, selection_metrics, selection_score
from .runtime import limit_threads, resolve_device, seed_everything
from .precision import MixedPrecision
from .state import TrainState
from .step import build_optimizer, train_step

if TYPE_CHECKING:
    from .distributed import DataParallel

# re-exported for callers of the old module layout
__all__ = ["TrainResult", "TrainingConfig", "evaluate", "train"]


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


def check_compatible(model, sampler: TaskSampler, data: MultiTaskData) -> None:
    """A method's needs against what the sampler and the data give (one-line errors)."""
    name = getattr(type(model), "registry_name", type(model).__name__)
    sampler_name = getattr(type(sampler), "registry_name", type(sampler).__name__)
    if model.needs_collections and not sampler.draws_collections:
        raise ConfigError(f"method {name!r} reads collections (one row of every task together); "
                          f"sampler {sampler_name!r} does not draw them")
    if model.needs_every_task_per_step and not (sampler.trains_every_task_per_step
                                                or sampler.draws_collections):
        raise ConfigError(f"method {name!r} needs every task in every step; sampler "
                          f"{sampler_name!r} draws one task per step (use every_task)")
    if model.needs_unlabelled_rows:
        if not sampler.unlabelled_per_step:
            raise ConfigError(f"method {name!r} reads unlabelled rows; set the sampler's "
                              f"'unlabelled_per_step' > 0 (sampler {sampler_name!r})")
        if not any(data.unlabelled_sizes()):
            raise ConfigError(f"method {name!r} reads unlabelled rows, but no task has unlabelled "
                              f"texts ({', '.join(data.task_names)})")
    if sampler.draws_collections and len({data.level(k) for k in range(len(data.tasks))}) > 1:
        raise ConfigError(f"sampler {sampler_name!r} draws collections, which need tasks of one "
                          "level (all classification or all tagging)")


def build_run_optimizer(model, weighting, config: TrainingConfig, lr: float,
                        previous: torch.optim.Optimizer | None = None):
    """The clipping list, the optimiser and its learning-rate schedule of a run.

    Args:
        model, weighting: their trainable parameters are optimised (groups: the model's
            ``param_groups()``, then the weighting's).
        config: the optimiser settings and the decay.
        lr: the base learning rate now (``config.lr`` decayed by the epochs so far).
        previous: the optimiser this one replaces (a ``changes_parameters`` method changed its
            parameters): the state of every parameter still trained (Adam's moments and step,
            momentum) is kept; new parameters start without state.
    Returns:
        (parameters to clip, optimizer, scheduler).
    """
    # clipping reads the parameters in module order (the order the global norm is summed in)
    parameters = [p for p in list(model.parameters()) + list(weighting.parameters()) if p.requires_grad]
    groups = model.param_groups() + [{"name": "weighting",
                                      "params": [p for p in weighting.parameters() if p.requires_grad]}]
    optimizer = build_optimizer(groups, config.optimizer, lr, config.momentum, config.weight_decay)
    if previous is not None:
        kept = {id(p) for p in parameters}
        for parameter, value in previous.state.items():
            if id(parameter) in kept:
                optimizer.state[parameter] = value
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    return parameters, optimizer, scheduler


def flat_mixing(mixing: dict | None) -> dict[str, float]:
    """A method's ``learned_mixing()`` as ``alpha/<after>/<row>><column>`` and
    ``beta/<task>/<layer>`` scalars (one curve each)."""
    out: dict[str, float] = {}
    for block in (mixing or {}).get("alpha") or []:
        labels = block["labels"]
        for i, row in enumerate(block["values"]):
            for j, value in enumerate(row):
                out[f"alpha/{block['after']}/{labels[i]}>{labels[j]}"] = float(value)
    for task, beta in ((mixing or {}).get("beta") or {}).items():
        for layer, value in zip(beta["layers"], beta["values"]):
            out[f"beta/{task}/{layer}"] = float(value)
    return out


def train(model, weighting, sampler: TaskSampler, data: MultiTaskData, config: TrainingConfig,
          seed: int, description: str = "train", stream_order: Callable | None = None,
          extra_loss_weights: dict[str, float] | None = None,
          log: Callable[[str], None] | None = None,
          on_epoch: Callable[[dict], None] | None = None,
          data_parallel: "DataParallel | None" = None) -> TrainResult:
    """Train ``model`` on ``data`` and return the metrics of the best dev epoch.

    Args:
        model: a sharing method built for ``data.tasks`` (same order).
        weighting: combines the per-task losses and runs the backward pass.
        sampler: plans the steps of each epoch.
        data: featurized tasks.
        config: training settings.
        seed: seeds the batches and dropout (the model is built by the caller, seeded too).
        description: progress-bar label.
        stream_order: optional per-task row order (see :class:`TaskStreams`).
        extra_loss_weights: weight of each named extra loss of the method (names left out:
            the method's ``default_loss_weights``, else 1).
        log: gets one line per epoch (dev score, best so far, seconds); for logs of long
            runs, where no progress bar is shown.
        on_epoch: gets each epoch's learning-curve entry as it is made (e.g. a TensorBoard
            writer, :mod:`textmtl.report.tensorboard`).
        data_parallel: this process's data-parallel group (:mod:`textmtl.training.distributed`):
            it trains on its share of every step's rows, the gradients summed over the group.
    Returns:
        The best-dev-epoch metrics on dev and test, the learning curves and the best weights.
    """
    config.validate()
    if config.select_on != AVERAGE and config.select_on not in data.task_names:
        raise ConfigError(f"'training.select_on' must be 'average' or a task name "
                          f"({', '.join(data.task_names)}), got {config.select_on!r}")
    check_compatible(model, sampler, data)
    if config.train_max_tokens is not None and data.spec.kind != "tokens":
        raise ConfigError(f"'training.train_max_tokens' cuts token features; these features are "
                          f"{data.spec.kind!r} (use the featurizer's own length limits)")
    limit_threads(config.threads)
    device = resolve_device(config.device)
    if data_parallel is not None:
        data_parallel.check(model, weighting)
        device = data_parallel.device(device)
    rng = seed_everything(seed)
    model.to(device)
    weighting.to(device)
    parameters, optimizer, scheduler = build_run_optimizer(model, weighting, config, config.lr)
    precision = MixedPrecision(config.precision, device, weighting)
    streams = TaskStreams(data.train_sizes(), rng, stream_order)
    unlabelled_streams = TaskStreams(data.unlabelled_sizes(), rng)
    generator = torch.Generator().manual_seed(seed)
    state = TrainState(generator=generator, rng=rng, device=device, optimizer=optimizer)
    chosen_metric = selection_metrics(data, config)
    exact = sampler.draws_collections

    best_score, best_epoch, best_state, best_dev = (-math.inf, -math.inf), 0, None, None
    epochs_without_gain, started = 0, time.perf_counter()
    # disable=None: shown on a terminal, silent in logs and CI
    bar = tqdm(desc=description, disable=not config.progress or None, leave=False,
               dynamic_ncols=True, unit="step")
    last_dev = "-"
    for epoch in range(1, config.max_epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        plan = sampler.plan_epoch(data.train_sizes(), config.batch_size, rng, data.unlabelled_sizes())
        state.epoch, state.steps_per_epoch, state.step_in_epoch = epoch, len(plan), 0
        state.epoch_losses = {}
        if bar.total is None:
            bar.total = len(plan) * config.max_epochs  # an upper bound: early stopping ends sooner
        for draws in plan:
            by_level: dict[str, list] = {}
            for draw in draws:
                stream = unlabelled_streams if draw.source == "unlabelled" else streams
                # a draw names a count (taken from the task's stream) or the positions themselves
                rows = draw.rows if isinstance(draw.rows, np.ndarray) else \
                    stream.take(draw.task, draw.rows, exact=exact)
                by_level.setdefault(data.level(draw.task), []).append((draw.task, rows, draw.source))
            if data_parallel is not None:  # this process's rows of the step
                by_level = {level: mine for level, parts in by_level.items()
                            if (mine := data_parallel.shard(parts))}
            batches = [data.batch("train", parts, collections=exact) for parts in by_level.values()]
            if config.train_max_tokens is not None:
                batches = [batch.truncated(config.train_max_tokens) for batch in batches]
            batches = [batch.to(device) for batch in batches]
            losses = train_step(model, weighting, batches, optimizer, parameters, config.clip_norm,
                                extra_loss_weights, precision, data_parallel)
            state.step += 1
            state.step_in_epoch += 1
            for name, value in {**losses.tasks, **losses.extras}.items():
                if not math.isfinite(value):
                    # the weights are now NaN too: every later epoch, and the "best" one,
                    # would be chance-level nonsense saved as a result
                    raise TrainingError(
                        f"{description}: the {'loss of task' if name in losses.tasks else 'extra loss'} "
                        f"{name!r} is {value} at epoch {epoch}, step {state.step_in_epoch}; "
                        f"training diverged (training.lr is {config.lr:g}; try a smaller lr or "
                        "set training.clip_norm)")
                state.record(name, value)
            model.on_step_end(state)
            weighting.on_step_end(state)
            bar.update(1)
            if bar.n % 10 == 1 or len(draws) == 1:
                task_label = data.task_names[draws[0].task] if len(draws) == 1 else f"all {len(draws)}"
                running = sum(sum(state.epoch_losses[n]) for n in data.task_names if n in state.epoch_losses) \
                    / max(sum(len(state.epoch_losses[n]) for n in data.task_names if n in state.epoch_losses), 1)
                bar.set_postfix_str(f"epoch {epoch} task {task_label} loss {running:.4f} "
                                    f"dev {last_dev}", refresh=False)
        scheduler.step()
        model.on_epoch_end(state)
        weighting.on_epoch_end(state)
        if model.changes_parameters and model.parameters_changed():
            # new parameters (FAFS branches) must reach the optimiser and the clipping list;
            # the rate goes on from where the decay has brought it (epoch decay steps so far)
            parameters, optimizer, scheduler = build_run_optimizer(
                model, weighting, config, config.lr * config.lr_decay ** epoch, optimizer)
            state.optimizer = optimizer
        dev = evaluate(model, data, "dev", device, config.eval_batch_size)
        score = selection_score(dev, chosen_metric, config.select_on)
        means = state.mean_epoch_losses()
        entry = {"epoch": epoch,
                 "train_loss": {n: means[n] for n in data.task_names if n in means},
                 "dev": dev, "dev_score": score[0], "dev_loss": -score[1]}
        extra_means = {n: v for n, v in means.items() if n not in data.task_names}
        if extra_means:
            entry["extra_losses"] = extra_means
        weights = weighting.current_weights()
        if weights:
            entry["task_weights"] = weights
        # the rate each parameter group trained with this epoch (the decay has just stepped)
        entry["lr"] = {group.get("name", str(i)): group["lr"] / config.lr_decay
                       for i, group in enumerate(optimizer.param_groups)}
        learned = getattr(model, "learned_mixing", None)
        if callable(learned):  # cross-stitch / sluice α and β, as they move
            mixing = flat_mixing(learned())
            if mixing:
                entry["mixing"] = mixing
        state.history.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
        if score > best_score:
            best_score, best_epoch, best_dev = score, epoch, dev
            best_state = copy.deepcopy(model.export_state())
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
        last_dev = f"{score[0]:.4f} (best {best_score[0]:.4f} @ {best_epoch})"
        if log is not None:
            log(f"    {description} epoch {epoch}: dev {last_dev}, "
                f"{time.perf_counter() - epoch_started:.1f} s")
        if config.patience and epochs_without_gain >= config.patience:
            break
    bar.close()
    elapsed = (time.perf_counter() - started) / len(state.history)
    model.load_exported_state(best_state)
    test = evaluate(model, data, "test", device, config.eval_batch_size)
    return TrainResult(best_epoch, best_dev, test, state.history, best_state, state.step, elapsed)
