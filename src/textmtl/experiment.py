"""Run an experiment config: every method x seed, baselines, and the results table.

Folder layout (built in ``<output_dir>/<name>-<timestamp>.partial`` and renamed without the
suffix when everything is done; an interrupted or failed run keeps its ``.partial`` folder, which
``textmtl run CONFIG --resume FOLDER`` continues without repeating a finished run):

    config.yaml            the resolved config (written first: resuming checks it)
    meta.json              package version, git hash, seeds, timings
    results.md / .csv      the table
    training.md            per method: best epochs, epochs trained, trainings the epoch limit cut
    records.json           one record per method, seed and task (what the table is built from)
    <method>/seed-<n>/[<task>/]     one trained model (single-task runs: one per task)
        model.json         what :func:`textmtl.load` needs: method, encoder, tasks, version
        featurizer.json    the fitted featurizer (vocabulary, TF-IDF statistics)
        checkpoint.pt      the best-dev weights (the method's ``export_state()``)
        metrics.json       dev and test metrics per task at the best dev epoch (written last:
                           its presence marks the run finished)
        curves.json        per epoch: train loss per task, extra losses, task weights, dev metrics
        mixing.json/.png   what a mixing method learned (its ``learned_mixing()``: cross-stitch
                           and sluice α, sluice β), for methods that have it
        clusters.json/.png the task clusters of cluster layers (``cluster_report()``)
        branching.json     the branching tree a widening method built (``branching_tree()``: FAFS)
        task_covariance.json/.png  the task covariance a regulariser learned (its
                           ``task_covariance()``: Deep Relationship Networks)
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from . import __version__
from .baselines import run_baseline
from .config import ComponentConfig, ExperimentConfig, MethodConfig, check_references
from .data.batching import MultiTaskData
from .data.datasets import load_tasks
from .data.features import FEATURIZERS
from .data.samplers import SAMPLERS
from .data.tasks import Task
from .data.text import length_bucketed_order
from .encoders import ENCODERS
from .errors import ConfigError
from .report.training import write_training_summary
from .results import Record, ResultsTable, build_table, select_grid_members
from .sharing import SHARING
from .sharing.base import TaskSpec
from .training import distributed
from .training.checkpoint import save_checkpoint
from .training.metrics import default_metric
from .training.runtime import resolve_device, seed_everything
from .training.trainer import TrainResult, train
from .weighting import WEIGHTINGS

#: version of the model folder format (``model.json``); :func:`textmtl.load` refuses others
MODEL_FORMAT = 1
PARTIAL = ".partial"
#: settings that may differ between a run and its resumption (they do not change results)
RESUMABLE_CHANGES = {("training", "progress"), ("training", "device"), ("training", "threads"),
                     ("training", "tensorboard"), ("output_dir",)}


@dataclass
class ExperimentResult:
    run_dir: Path
    table: ResultsTable | None  # None in the processes of a data-parallel run other than rank 0
    records: list[Record]
    timings: dict[str, float]


def git_hash() -> str:
    """The commit of the working tree the package runs from ("unknown" outside git)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: how a run's log names each place a dataset can come from (see data.store.Location)
ORIGINS = {"data_dir": "--data-dir", "env": "$TEXTMTL_DATA_DIR", "cache": "the cache",
           "download": "downloaded now into the cache"}


def load_experiment_tasks(config: ExperimentConfig, data_dir: str | None,
                          log: Callable[[str], None] | None = None) -> list[Task]:
    """Load every task of the config and check the config's references to them.

    ``log`` gets one line per dataset saying where it was found.
    """
    def found(name, location) -> None:
        if log is not None and location.origin != "cwd":
            log(f"data {name}: {location.path} (from {ORIGINS.get(location.origin, location.origin)})")

    tasks = [task for name, entries in config.data.items()
             for options in (entries if isinstance(entries, list) else [entries])
             for task in load_tasks(name, options, data_dir, on_found=found)]
    if config.max_rows:  # a quick check of the whole config on a sample of every split
        tasks = [task.limited(config.max_rows) for task in tasks]
        if log is not None:
            log(f"max_rows {config.max_rows}: every task limited to a seeded sample (not a result)")
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"'data' yields two tasks named {duplicates[0]!r}; load the datasets in "
                          "separate experiments or rename the tasks")
    classification = [t for t in tasks if t.kind == "classification"]
    # fail before any training, not after it
    if config.baselines and not classification:
        raise ConfigError(f"'baselines' {config.baselines} classify documents; the tasks here are tagging tasks")
    if "logreg_pooled" in config.baselines and len({t.labels for t in classification}) > 1:
        raise ConfigError("baseline 'logreg_pooled' needs tasks that share one label space; "
                          f"found {len({t.labels for t in classification})} different label spaces")
    check_references(config, tasks)
    return tasks


def data_key(config: ExperimentConfig, method: MethodConfig | None = None) -> str:
    """What a method's features are made of (input kind and featurizer options): methods with
    one key train on one featurized copy of the tasks."""
    if method is None:
        return json.dumps([ENCODERS.get(config.encoder.name).input_kind, config.features], sort_keys=True)
    return json.dumps([ENCODERS.get(config.method_encoder(method).name).input_kind,
                       config.method_features(method)], sort_keys=True)


def featurize(config: ExperimentConfig, tasks: list[Task],
              method: MethodConfig | None = None) -> MultiTaskData:
    """The tasks featurized for ``method``'s encoder (None: the experiment's encoder)."""
    encoder = config.encoder if method is None else config.method_encoder(method)
    features = config.features if method is None else config.method_features(method)
    where = "features" if method is None or method.features is None else f"methods.{method.title}.features"
    kind = ENCODERS.get(encoder.name).input_kind
    featurizer = FEATURIZERS.build(kind, params=features, where=where)
    # unlabelled texts only where a method of this featurized copy reads them (encoding the
    # unlabelled reviews with a pre-trained model for a method that never reads them is costly)
    key = data_key(config, method)
    unlabelled = any(SHARING.get(m.name).needs_unlabelled_rows for m in config.methods
                     if data_key(config, m) == key)
    return MultiTaskData.build(tasks, featurizer, unlabelled=unlabelled,
                               unlabelled_in_vocabulary=unlabelled and config.unlabelled_in_vocabulary)


def task_specs(tasks: list[Task]) -> list[TaskSpec]:
    return [TaskSpec(t.name, t.num_classes, "token" if t.kind == "tagging" else "sequence")
            for t in tasks]


def build_model(method: ComponentConfig, encoder: ComponentConfig, data: MultiTaskData,
                seed: int):
    """Seeded construction of a sharing method over ``data.tasks``."""
    seed_everything(seed)

    def encoder_factory():
        return ENCODERS.build(encoder.name, data.spec, params=encoder.params, where="encoder")

    return SHARING.build(method.name, task_specs(data.tasks), encoder_factory,
                         params=method.params, where="methods")


def train_one(config: ExperimentConfig, method: MethodConfig, data: MultiTaskData, seed: int,
              description: str, log: Callable[[str], None] | None = None,
              oriented_task: str | None = None):
    """Train one model of ``method``; returns (model, result).

    ``log`` gets a line per epoch when the progress bar is off (logs of long runs).
    ``oriented_task`` (``train_tasks: oriented``): the task whose dev metric selects the epochs;
    a sampler that ``takes_oriented_task`` is built oriented on it.
    """
    model = build_model(method, config.method_encoder(method), data, seed)
    weighting_config = config.method_weighting(method)
    weighting = WEIGHTINGS.build(weighting_config.name, data.task_names,
                                 params=_weights_for(weighting_config.params, data.task_names),
                                 where="weighting")
    sampler_config = config.method_sampler(method)
    sampler_params = dict(sampler_config.params)
    if oriented_task is not None and getattr(SAMPLERS.get(sampler_config.name), "takes_oriented_task", False):
        sampler_params["oriented_task"] = oriented_task
    sampler = SAMPLERS.build(sampler_config.name, data.task_names, params=sampler_params,
                             where="sampler")
    training = config.training
    if oriented_task is not None:  # one model per task: that task's dev metric selects it
        training = type(training)(**{**asdict(training), "select_on": oriented_task})
    elif training.select_on != "average" and training.select_on not in data.task_names:
        # a single-task run of another task: its own dev metric selects its epochs
        training = type(training)(**{**asdict(training), "select_on": "average"})
    writer = None
    group = distributed.current()
    if training.tensorboard and (group is None or group.is_main):
        from .report.tensorboard import EpochWriter, run_folder

        writer = EpochWriter(run_folder(training.tensorboard, config.name, description))
    try:
        result = train(model, weighting, sampler, data, training, seed, description,
                       bucketed_stream_order(data, training.batch_size), method.loss_weights,
                       log=None if training.progress else log, on_epoch=writer,
                       data_parallel=group)
    finally:
        if writer is not None:
            writer.close()
    return model, result


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


def write_model(folder: Path, config: ExperimentConfig, method: MethodConfig, data: MultiTaskData,
                result: TrainResult, trained=None) -> None:
    """Write one trained model's folder; ``metrics.json`` last, marking it finished.

    ``trained`` (the trained method, best weights loaded): when it has ``learned_mixing()``,
    what it returns is written as ``mixing.json`` and drawn as ``mixing.png``; when it has
    ``cluster_report()``, as ``clusters.json`` and ``clusters.png``; ``branching_tree()`` as
    ``branching.json``; a regulariser's ``task_covariance()`` as ``task_covariance.json/.png``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    encoder = config.method_encoder(method)
    kind = ENCODERS.get(encoder.name).input_kind
    (folder / "featurizer.json").write_text(json.dumps({"kind": kind, "state": data.featurizer.state()}))
    model = {"format": MODEL_FORMAT, "textmtl_version": __version__, "experiment": config.name,
             "method": method.as_dict(), "encoder": encoder.as_dict(),
             "tasks": [{"name": t.name, "kind": t.kind, "labels": list(t.labels)} for t in data.tasks]}
    (folder / "model.json").write_text(json.dumps(model, indent=1))
    save_checkpoint(result.state_dict, folder / "checkpoint.pt")
    (folder / "curves.json").write_text(json.dumps(result.curves, indent=1))
    learned = getattr(trained, "learned_mixing", None)
    mixing = learned() if callable(learned) else None
    if mixing:
        from .report.mixing import write_mixing

        write_mixing(folder, mixing)
    clustered = getattr(trained, "cluster_report", None)
    if callable(clustered):  # cluster layers: the final clusters and their history
        from .report.clusters import write_clusters

        counts = getattr(trained, "parameter_counts", None)
        write_clusters(folder, {**clustered(), "parameter_counts": counts() if callable(counts) else None})
    tree = getattr(trained, "branching_tree", None)
    if callable(tree):  # a method that widened itself (FAFS): the branches it made
        from .report.branching import write_branching

        write_branching(folder, tree())
    relations = [r.task_covariance() for r in getattr(trained, "regularizers", [])
                 if callable(getattr(r, "task_covariance", None))]
    if relations:  # a regulariser that learned how tasks relate (DRN)
        from .report.task_covariance import write_task_covariance

        # one learned covariance per model: a second such regulariser would be unusual
        write_task_covariance(folder, relations[0])
    metrics = {"best_epoch": result.best_epoch, "dev": result.dev, "test": result.test,
               "steps": result.steps, "seconds_per_epoch": result.seconds_per_epoch}
    temporary = folder / "metrics.json.tmp"
    temporary.write_text(json.dumps(metrics, indent=2))
    temporary.replace(folder / "metrics.json")


def _finished(folder: Path) -> dict | None:
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:  # a damaged file: the run is repeated
        return None


def _claim_folder(config: ExperimentConfig) -> Path:
    """A new ``.partial`` run folder; a clash of timestamps gets ``-2``, ``-3``, ... (atomic)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    root = Path(config.output_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file in the way, a read-only place
        raise ConfigError(f"output dir {root}: cannot create it ({error.strerror or error}); "
                          "expected a writable folder (set output_dir or --output-dir)") from None
    for attempt in range(1, 1000):
        name = f"{config.name}-{stamp}" + (f"-{attempt}" if attempt > 1 else "")
        if (root / name).exists():
            continue
        try:
            (root / (name + PARTIAL)).mkdir()
            return root / (name + PARTIAL)
        except FileExistsError:
            continue
        except OSError as error:
            raise ConfigError(f"output dir {root}: cannot write in it ({error.strerror or error}); "
                              "expected a writable folder (set output_dir or --output-dir)") from None
    raise ConfigError(f"{root}: could not claim a run folder name for {config.name!r}")


def keep_or_remove_interrupted(folder: Path, resumed: bool, log: Callable[[str], None],
                               command: str) -> None:
    """After a failure or an interruption: a new folder in which nothing finished is removed
    (nothing to keep); otherwise it is kept, and ``log`` says how to continue it."""
    finished = list(folder.glob("**/metrics.json"))
    if not finished and not resumed:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    else:
        log(f"incomplete run kept in {folder} ({len(finished)} finished runs); continue it "
            f"with: {command} --resume {folder}")


def _differences(saved: dict, current: dict, prefix: tuple = ()) -> list[str]:
    keys = sorted(set(saved) | set(current), key=str)
    found = []
    for key in keys:
        path = prefix + (key,)
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, path)
        elif a != b and path not in RESUMABLE_CHANGES:
            found.append(".".join(map(str, path)))
    return found


def _open_resumed(folder: Path, config: ExperimentConfig) -> Path:
    folder = Path(folder)
    saved_path = folder / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"{folder}: not a run folder (no config.yaml); --resume takes a folder "
                          "written by textmtl run")
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{saved_path}: unreadable ({error})") from None
    differences = _differences(saved or {}, config.to_dict())
    if differences:
        raise ConfigError(f"{folder}: the config differs from the one this run folder was made with "
                          f"(at {', '.join(differences[:3])}); resume with the same config")
    return folder


def run_experiment(config: ExperimentConfig, data_dir: str | None = None,
                   log: Callable[[str], None] = print, resume: str | Path | None = None,
                   workers: int = 1, executor=None) -> ExperimentResult:
    """Train every method for every seed, run the baselines and write the table.

    Args:
        config: a validated experiment config.
        data_dir: dataset folder (else ``TEXTMTL_DATA_DIR``, the cache, or a download).
        log: where progress lines go.
        resume: a run folder of this config (finished or ``.partial``): its finished
            (method, seed) runs are kept and the others trained.
        workers: train this many (method, seed) units at once, each in its own one-thread
            process (1: one after the other, in this process). Results do not depend on it.
        executor: a :class:`~textmtl.sweep.DaskExecutor`: train the units on its cluster
            (``workers`` is then not used); the run folder and table are a local run's.
    Returns:
        The run folder, the table and the records.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    started = time.perf_counter()
    if config.training.tensorboard:
        from .report.tensorboard import check_available

        check_available()  # one line now, not in every worker after the data is read
    group = distributed.current()
    if group is not None and (workers != 1 or executor is not None):
        raise ConfigError("data-parallel training (--ddp / torchrun) trains one model at a time over "
                          "its processes; --workers and --scheduler exclude it")
    tasks = load_experiment_tasks(config, data_dir, log)
    if group is None or group.is_main:
        if resume is not None:
            folder = _open_resumed(Path(resume), config)
        else:
            folder = _claim_folder(config)
            (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    if group is not None:  # the other processes read rank 0's folder (they write nothing)
        folder = Path(group.broadcast(str(folder) if group.is_main else None))
    if group is not None and not group.is_main:
        datas = featurize_all(config, tasks, lambda line: None)
        units = _units(config, next(iter(datas.values())), folder)
        train_units(config, datas, units, lambda line: None)
        return ExperimentResult(folder, None, [], {})
    try:
        records, timings = _run_all(config, tasks, folder, log, workers, executor)
    except BaseException:
        keep_or_remove_interrupted(folder, resumed=resume is not None, log=log,
                                   command="textmtl run CONFIG")
        raise
    timings["total_s"] = time.perf_counter() - started
    baseline = next((m.title for m in config.methods if config.method_train_tasks(m) == "separately"), None)
    metric = config.reference.metric if config.reference else \
        {t.name: default_metric(t.kind, t.labels) for t in tasks}
    # a grid group is one column, at its first member's place: the member chosen on dev
    titles, groups = [], {}
    for m in config.methods:
        column = m.grid_group or m.title
        if m.grid_group:
            groups.setdefault(m.grid_group, []).append(m.title)
        if column not in titles:
            titles.append(column)
    titles += list(config.baselines)
    table_records = records
    if groups:
        chosen, grid_table = select_grid_members(records, groups, metric)
        table_records = records + chosen
        grid_table.write(folder, stem="grid")
    metric_name = metric if isinstance(metric, str) else \
        " / ".join(sorted(set(metric.values()))) + " (each task's default metric)"
    notes = [f"test {metric_name} in %, mean ± std over seeds {config.seeds}; model selection on dev"]
    if baseline:
        notes.append(f"Δ = method minus {baseline} (mean over seeds)")
    if config.reference:
        notes.append(f"paper: {config.reference.source}")
    if config.max_rows:
        notes.append(f"NOT A RESULT: every task limited to a sample of at most {config.max_rows} rows "
                     f"per split (max_rows), a quick check of the config")
    if groups:
        notes.append("a grid column shows its member of best mean dev score (grid.md lists every member)")
    table = build_table(table_records, titles, [t.name for t in tasks], metric=metric,
                        reference=config.reference, title=config.name, notes=notes, baseline=baseline)
    table.write(folder)
    write_training_summary(folder, [m.title for m in config.methods], config.training.max_epochs,
                           config.training.patience)
    (folder / "records.json").write_text(json.dumps([asdict(r) for r in table_records], indent=1))
    meta = {"version": __version__, "git_hash": git_hash(), "seeds": config.seeds,
            "torch": __import__("torch").__version__,
            "device": str(resolve_device(config.training.device)), "timings": timings,
            "created": datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    final_dir = folder
    if folder.name.endswith(PARTIAL):
        final_dir = folder.with_name(folder.name[: -len(PARTIAL)])
        folder.rename(final_dir)
    return ExperimentResult(final_dir, table, records, timings)


def _record(method: str, seed: int, task: str, metrics: dict) -> Record:
    return Record(method, seed, task, metrics["test"][task], metrics["dev"][task])


@dataclass(frozen=True)
class _Unit:
    """One training of a run: a method, a seed, the tasks trained together, its folder."""

    method: MethodConfig
    seed: int
    names: tuple[str, ...]
    folder: Path
    label: str
    #: ``train_tasks: oriented``: the one task this model is selected on and reported for
    oriented_task: str | None = None

    @property
    def reported(self) -> tuple[str, ...]:
        """The tasks whose results this unit's model stands for in the table."""
        return (self.oriented_task,) if self.oriented_task is not None else self.names


def method_units(config: ExperimentConfig, method: MethodConfig, names: tuple[str, ...],
                 folder: Path, label: str | None = None) -> list[_Unit]:
    """The trainings of one method over the tasks ``names``, for every seed, under ``folder``.

    One per task (single-task learning: its own early stopping), one per task trained on all
    of them and selected on it (``oriented``), or one for all (``together``). ``label`` starts
    each training's progress lines (default: the method's title).
    """
    mode = config.method_train_tasks(method)
    label = label or method.title
    units = []
    for seed in config.seeds:
        if mode == "separately":
            units += [_Unit(method, seed, (name,), folder / f"seed-{seed}" / name,
                            f"{label} {name} seed {seed}") for name in names]
        elif mode == "oriented":
            units += [_Unit(method, seed, tuple(names), folder / f"seed-{seed}" / name,
                            f"{label} oriented on {name} seed {seed}", oriented_task=name)
                      for name in names]
        else:
            units.append(_Unit(method, seed, tuple(names), folder / f"seed-{seed}",
                               f"{label} seed {seed}"))
    return units


def _units(config: ExperimentConfig, data: MultiTaskData, run_dir: Path) -> list[_Unit]:
    return [unit for method in config.methods
            for unit in method_units(config, method, tuple(data.task_names), run_dir / method.title)]


def _train_unit(unit: _Unit, shared: tuple[ExperimentConfig, dict[str, MultiTaskData]],
                log: Callable[[str], None] = print) -> tuple[float, float]:
    """Train one unit and write its folder; returns (seconds per epoch, wall seconds)."""
    config, datas = shared
    data = datas[data_key(config, unit.method)]
    t0 = time.perf_counter()
    sub = data if len(unit.names) == len(data.task_names) else data.subset(list(unit.names))
    model, result = train_one(config, unit.method, sub, unit.seed, unit.label, log, unit.oriented_task)
    group = distributed.current()
    if group is None or group.is_main:  # data-parallel: one writer
        write_model(unit.folder, config, unit.method, sub, result, model)
    if group is not None:
        group.barrier()
    return result.seconds_per_epoch, time.perf_counter() - t0


def _train_unit_in_worker(unit: _Unit, shared: tuple[ExperimentConfig, dict[str, MultiTaskData]]) -> tuple[float, float]:
    return _train_unit(unit, shared, lambda line: print(line, flush=True))


def _train_unit_remotely(unit: _Unit, shared: tuple[ExperimentConfig, dict[str, MultiTaskData]]
                         ) -> tuple[float, float, dict[str, bytes]]:
    """Train one unit on a cluster worker, which need not see this machine's disk: the model
    folder is written to a temporary folder there and its files come back as bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="textmtl-unit-") as scratch:
        local = Path(scratch) / "model"
        per_epoch, seconds = _train_unit(dataclasses.replace(unit, folder=local), shared,
                                         lambda line: print(line, flush=True))
        files = {str(p.relative_to(local)): p.read_bytes() for p in sorted(local.rglob("*")) if p.is_file()}
    return per_epoch, seconds, files


def _write_returned_folder(folder: Path, files: dict[str, bytes]) -> None:
    """A model folder from a remote training: every file atomically, ``metrics.json`` (what
    marks the run finished) last."""
    from .data.store import write_atomic

    for name in sorted(files, key=lambda n: n == "metrics.json"):
        write_atomic(folder / name, files[name])


def featurize_all(config: ExperimentConfig, tasks: list[Task], log) -> dict[str, MultiTaskData]:
    """One featurized copy of the tasks per input kind and options the methods need; every
    method is built once (seed 0) so that a constructor error (a task level the encoder cannot
    serve, a bad stage index) does not wait for the earlier methods' training."""
    datas: dict[str, MultiTaskData] = {}
    for method in config.methods:
        key = data_key(config, method)
        if key not in datas:
            datas[key] = featurize(config, tasks, method)
            log(f"{config.name}: {len(tasks)} tasks, {datas[key].spec.kind} input of size "
                f"{datas[key].spec.size}")
    for method in config.methods:
        build_model(method, config.method_encoder(method), datas[data_key(config, method)], seed=0)
    return datas


def train_units(config: ExperimentConfig, datas: dict[str, MultiTaskData], units: list[_Unit],
                log, workers: int = 1, executor=None) -> dict[str, tuple[list[float], float]]:
    """Train the units that have no finished folder yet; each writes its folder as it ends.

    ``executor`` (a :class:`~textmtl.sweep.DaskExecutor`): train them on its cluster instead,
    each model folder sent back and written here as its training ends. Returns, per method
    title, the seconds per epoch of each unit trained now and their wall seconds summed (over
    workers when they run side by side).
    """
    pending = [u for u in units if _finished(u.folder) is None]
    group = distributed.current()
    if group is not None:  # every process trains the same units, as rank 0 found them
        chosen = group.broadcast([units.index(u) for u in pending])
        pending = [units[i] for i in chosen]
    trained: dict[str, tuple[list[float], float]] = {}

    def finished(unit: _Unit, result: tuple[float, float]) -> None:
        per_epoch, seconds = trained.get(unit.method.title, ([], 0.0))
        trained[unit.method.title] = (per_epoch + [result[0]], seconds + result[1])

    if executor is not None and pending:
        log(f"  {len(pending)} training(s) on {executor.describe()}")
        for unit, (per_epoch, seconds, files) in executor.map(_train_unit_remotely, pending, (config, datas)):
            _write_returned_folder(unit.folder, files)
            finished(unit, (per_epoch, seconds))
            log(f"  finished {unit.label} ({seconds:.0f} s)")
    elif workers > 1 and len(pending) > 1:
        # independent trainings in a pool of one-thread processes; each writes its own folder as
        # it finishes, so an interrupted run keeps them and --resume trains the rest
        from .sweep import LocalExecutor

        log(f"  {len(pending)} training(s) on {workers} worker processes (one torch thread each)")
        for unit, result in LocalExecutor(workers).map(_train_unit_in_worker, pending, (config, datas)):
            finished(unit, result)
            log(f"  finished {unit.label} ({result[1]:.0f} s)")
    else:
        for unit in pending:
            finished(unit, _train_unit(unit, (config, datas), log))
    return trained


def _run_all(config: ExperimentConfig, tasks: list[Task], run_dir: Path, log,
             workers: int = 1, executor=None) -> tuple[list[Record], dict]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    datas = featurize_all(config, tasks, log)
    timings["featurize_s"] = time.perf_counter() - t0
    units = _units(config, next(iter(datas.values())), run_dir)
    trained = train_units(config, datas, units, log, workers, executor)
    records: list[Record] = []
    for method in config.methods:
        for seed in config.seeds:
            for unit in (u for u in units if u.method is method and u.seed == seed):
                records += [_record(method.title, seed, name, _finished(unit.folder)) for name in unit.reported]
            scores = [r.test[default_metric(t.kind, t.labels)] for r in records for t in tasks
                      if r.method == method.title and r.seed == seed and r.task == t.name]
            log(f"  {method.title} seed {seed}: mean test score {np.mean(scores) * 100:.2f}")
        # training seconds of the units trained now (summed over workers when they run side by side)
        per_epoch, seconds = trained.get(method.title, ([], 0.0))
        timings[f"{method.title}_s"] = seconds
        if per_epoch:
            timings[f"{method.title}_s_per_epoch"] = float(np.sum(per_epoch) / len(config.seeds))
    if config.baselines:
        t0 = time.perf_counter()
        classification = [t for t in tasks if t.kind == "classification"]
        for name in config.baselines:  # each with its own vocabulary (textmtl.baselines)
            for task, result in run_baseline(name, classification).items():
                records.append(Record(name, 0, task, result["test"], result["dev"]))
            average = np.mean([r.test["accuracy"] for r in records if r.method == name])
            log(f"  {name}: mean test accuracy {average * 100:.2f}")
        timings["baselines_s"] = time.perf_counter() - t0
    return records, timings
