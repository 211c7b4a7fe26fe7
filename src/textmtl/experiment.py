"""Run an experiment config: every method x seed, baselines, and the results table.

Folder layout (written under ``<output_dir>/<name>-<timestamp>/``; built in a ``.partial``
folder and renamed at the end, so an interrupted or failed run leaves nothing half-written):

    config.yaml            the resolved config
    meta.json              package version, git hash, seeds, timings
    results.md / .csv      the table
    records.json           one record per method, seed and task (what the table is built from)
    <method>/seed-<n>/[<task>/]
        metrics.json       dev and test metrics per task at the best dev epoch
        curves.json        per epoch: train loss per task, dev metrics per task
        checkpoint.pt      the best-dev weights
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from . import __version__
from .baselines import BASELINES
from .config import ComponentConfig, ExperimentConfig
from .data.batching import MultiTaskData
from .data.datasets import load_tasks
from .data.features import FEATURIZERS
from .data.samplers import SAMPLERS
from .data.tasks import Task
from .data.text import length_bucketed_order
from .encoders import ENCODERS
from .errors import ConfigError
from .results import SINGLE, Record, ResultsTable, build_table
from .sharing import SHARING
from .sharing.base import TaskSpec
from .training.trainer import TrainResult, resolve_device, seed_everything, train
from .weighting import WEIGHTINGS


@dataclass
class ExperimentResult:
    run_dir: Path
    table: ResultsTable
    records: list[Record]
    timings: dict[str, float]


def git_hash() -> str:
    """The commit of the working tree the package runs from ("unknown" outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_experiment_tasks(config: ExperimentConfig, data_dir: str | None) -> list[Task]:
    tasks = [task for name, entries in config.data.items()
             for options in (entries if isinstance(entries, list) else [entries])
             for task in load_tasks(name, options, data_dir)]
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"'data' yields two tasks named {duplicates[0]!r}; load the datasets in "
                          "separate experiments or rename the tasks")
    kinds = {t.kind for t in tasks}
    if len(kinds) > 1:
        raise ConfigError("'data' mixes classification and tagging tasks; one experiment trains one kind")
    # fail before any training, not after it
    if config.baselines and kinds == {"tagging"}:
        raise ConfigError(f"'baselines' {config.baselines} classify documents; the tasks here are tagging tasks")
    if "logreg_pooled" in config.baselines and len({t.labels for t in tasks}) > 1:
        raise ConfigError("baseline 'logreg_pooled' needs tasks that share one label space; "
                          f"found {len({t.labels for t in tasks})} different label spaces")
    select_on = config.training.select_on
    if select_on != "average" and select_on not in names:
        raise ConfigError(f"'training.select_on' must be 'average' or a task name "
                          f"({', '.join(names)}), got {select_on!r}")
    unknown = sorted(set(config.weighting.params.get("weights", {})) - set(names))
    if unknown:
        raise ConfigError(f"'weighting.weights' names unknown task {unknown[0]!r}; "
                          f"tasks: {', '.join(names)}")
    return tasks


def featurize(config: ExperimentConfig, tasks: list[Task]) -> MultiTaskData:
    kind = ENCODERS.get(config.encoder.name).input_kind
    featurizer = FEATURIZERS.build(kind, params=config.features, where="features")
    return MultiTaskData.build(tasks, featurizer)


def build_model(method: ComponentConfig, encoder: ComponentConfig, data: MultiTaskData,
                seed: int):
    """Seeded construction of a sharing method over ``data.tasks``."""
    seed_everything(seed)
    specs = [TaskSpec(t.name, t.num_classes, "token" if t.kind == "tagging" else "sequence")
             for t in data.tasks]

    def encoder_factory():
        return ENCODERS.build(encoder.name, data.spec, params=encoder.params, where="encoder")

    return SHARING.build(method.name, specs, encoder_factory, params=method.params,
                         where="methods")


def train_one(config: ExperimentConfig, method: ComponentConfig, data: MultiTaskData, seed: int,
              description: str) -> TrainResult:
    model = build_model(method, config.encoder, data, seed)
    weighting = WEIGHTINGS.build(config.weighting.name, data.task_names,
                                 params=_weights_for(config.weighting.params, data.task_names),
                                 where="weighting")
    sampler = SAMPLERS.build(config.sampler.name, params=config.sampler.params, where="sampler")
    training = config.training
    if training.select_on != "average" and training.select_on not in data.task_names:
        # a single-task run of another task: its own dev metric selects its epochs
        training = type(training)(**{**asdict(training), "select_on": "average"})
    return train(model, weighting, sampler, data, training, seed, description,
                 bucketed_stream_order(data, training.batch_size))


def bucketed_stream_order(data: MultiTaskData, batch_size: int):
    """Length-bucketed row orders for token inputs (None for TF-IDF rows, which have no length).

    Recurrent encoders run over every padded position, so batches of similar lengths are several
    times faster (``benchmarks/bilstm_epoch.py``); padding never changes an encoding.
    """
    table = data.tables["train"]
    if not hasattr(table, "lengths"):
        return None
    lengths = table.lengths
    per_task = [lengths[rows] for rows in data.rows["train"]]
    return lambda k, rng: length_bucketed_order(per_task[k], batch_size, rng)


def _weights_for(params: dict, task_names: list[str]) -> dict:
    # a single-task run keeps only its own task's lambda
    if "weights" in params:
        return {**params, "weights": {k: v for k, v in params["weights"].items() if k in task_names}}
    return params


def _write_run(folder: Path, result: TrainResult, save_checkpoint: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {"best_epoch": result.best_epoch, "dev": result.dev, "test": result.test,
               "steps": result.steps, "seconds_per_epoch": result.seconds_per_epoch}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / "curves.json").write_text(json.dumps(result.curves, indent=1))
    if save_checkpoint and result.state_dict is not None:
        torch.save(result.state_dict, folder / "checkpoint.pt")


def run_experiment(config: ExperimentConfig, data_dir: str | None = None,
                   log: Callable[[str], None] = print) -> ExperimentResult:
    """Train every method for every seed, run the baselines and write the table.

    Args:
        config: a validated experiment config.
        data_dir: dataset folder (else ``TEXTMTL_DATA_DIR``, the cache, or a download).
        log: where progress lines go.
    Returns:
        The run folder, the table and the records.
    """
    started = time.perf_counter()
    tasks = load_experiment_tasks(config, data_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    final_dir = Path(config.output_dir) / f"{config.name}-{stamp}"
    partial = final_dir.with_name(final_dir.name + ".partial")
    partial.mkdir(parents=True, exist_ok=False)
    try:
        records, timings = _run_all(config, tasks, partial, log)
        timings["total_s"] = time.perf_counter() - started
        methods = [m.name for m in config.methods] + list(config.baselines)
        notes = [f"test {('accuracy' if not config.reference else config.reference.metric)} in %, "
                 f"mean ± std over seeds {config.seeds}; model selection on dev",
                 "Δ = method minus single-task (mean over seeds)"]
        if config.reference:
            notes.append(f"paper: {config.reference.source}")
        table = build_table(records, methods, [t.name for t in tasks],
                            metric=config.reference.metric if config.reference else "accuracy",
                            reference=config.reference, title=config.name, notes=notes)
        table.write(partial)
        (partial / "records.json").write_text(json.dumps([asdict(r) for r in records], indent=1))
        (partial / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        meta = {"version": __version__, "git_hash": git_hash(), "seeds": config.seeds,
                "torch": torch.__version__, "device": str(resolve_device(config.training.device)),
                "timings": timings,
                "created": stamp}
        (partial / "meta.json").write_text(json.dumps(meta, indent=2))
        partial.rename(final_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return ExperimentResult(final_dir, table, records, timings)


def _run_all(config: ExperimentConfig, tasks: list[Task], run_dir: Path, log) -> tuple[list[Record], dict]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = featurize(config, tasks)
    timings["featurize_s"] = time.perf_counter() - t0
    log(f"{config.name}: {len(tasks)} tasks, {data.spec.kind} input of size {data.spec.size}")
    records: list[Record] = []
    for method in config.methods:
        t0 = time.perf_counter()
        epoch_times = []
        for seed in config.seeds:
            if method.name == SINGLE:
                # the honest baseline: each task trained alone, with its own early stopping
                for task in tasks:
                    sub = data.subset([task.name])
                    result = train_one(config, method, sub, seed, f"{SINGLE} {task.name} seed {seed}")
                    _write_run(run_dir / method.name / f"seed-{seed}" / task.name, result)
                    records.append(Record(method.name, seed, task.name, result.test[task.name],
                                          result.dev[task.name]))
                    epoch_times.append(result.seconds_per_epoch)
            else:
                result = train_one(config, method, data, seed, f"{method.name} seed {seed}")
                _write_run(run_dir / method.name / f"seed-{seed}", result)
                records += [Record(method.name, seed, t.name, result.test[t.name], result.dev[t.name])
                            for t in tasks]
                epoch_times.append(result.seconds_per_epoch)
            average = np.mean([r.test["accuracy"] for r in records
                               if r.method == method.name and r.seed == seed])
            log(f"  {method.name} seed {seed}: mean test accuracy {average * 100:.2f}")
        timings[f"{method.name}_s"] = time.perf_counter() - t0
        timings[f"{method.name}_s_per_epoch"] = float(np.sum(epoch_times) / len(config.seeds))
    if config.baselines:
        t0 = time.perf_counter()
        tfidf = data if data.spec.kind == "tfidf" else MultiTaskData.build(
            tasks, FEATURIZERS.build("tfidf"))
        for name in config.baselines:
            for task, result in BASELINES[name](tfidf).items():
                records.append(Record(name, 0, task, result["test"], result["dev"]))
            average = np.mean([r.test["accuracy"] for r in records if r.method == name])
            log(f"  {name}: mean test accuracy {average * 100:.2f}")
        timings["baselines_s"] = time.perf_counter() - t0
    return records, timings
