"""A grid of config overrides, each cell one run: ``textmtl sweep CONFIG --grid KEY=V1,V2 ...``.

Every combination of the ``--grid`` values (e.g. learning rate x sampler x sharing method) is
one cell: the config with those overrides applied (after the ``--set`` ones), run by
:func:`textmtl.experiment.run_experiment` locally, on worker processes or on a Dask cluster.
All cell configs are built and validated before anything trains. Folder::

    <output_dir>/<name>-sweep-<stamp>[.partial]/
        sweep.json             the base config file, --set overrides, the grid, the cells
        cell-01-<stamp>/ ...   one run folder per cell (a .partial one while unfinished)
        summary.md / .csv      one row per (cell, method): mean dev and test over tasks,
                               mean ± std over seeds; the best row by dev marked

Resumable: ``--resume SWEEP_DIR`` keeps finished cells, resumes an interrupted one and runs the
rest (the same config, overrides and grid are required).

Scores: each task's default metric (span F1 where a run reports it, else accuracy), or the one
``metric`` names; a (cell, method) row is the mean over the tasks of each seed, then mean ± std
over seeds. Baselines the config lists (scikit-learn, one seed) get a row too.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import yaml

from .config import ExperimentConfig, load_config
from .errors import ConfigError

PARTIAL = ".partial"


def parse_grid(assignments: list[str]) -> list[tuple[str, list[Any]]]:
    """``KEY=V1,V2,...`` strings as (key, values); each value is YAML (``methods=[hard],[soft]``
    gives two lists).

    Raises:
        ConfigError: no ``=``, no value, a key given twice.
    """
    grid: list[tuple[str, list[Any]]] = []
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grid expects KEY=V1,V2,... got {assignment!r}")
        try:
            values = yaml.safe_load(f"[{text}]")
        except yaml.YAMLError as error:
            raise ConfigError(f"--grid {key}: cannot read the values {text!r} as YAML ({error.problem})") from None
        if not values or any(v is None for v in values):
            raise ConfigError(f"--grid {key}: expected one or more comma-separated values, got {text!r}")
        if key in [k for k, _ in grid]:
            raise ConfigError(f"--grid names {key!r} twice; give all its values in one --grid")
        grid.append((key.strip(), values))
    if not grid:
        raise ConfigError("textmtl sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def _value_text(value: Any) -> str:
    """A value as the YAML an override reads back (flow style, one line)."""
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class Cell:
    index: int
    assignments: tuple[tuple[str, Any], ...]

    @property
    def title(self) -> str:
        return ", ".join(f"{k}={_value_text(v)}" for k, v in self.assignments)

    @property
    def prefix(self) -> str:
        return f"cell-{self.index:02d}"


def grid_cells(grid: list[tuple[str, list[Any]]]) -> list[Cell]:
    keys = [k for k, _ in grid]
    return [Cell(i + 1, tuple(zip(keys, values)))
            for i, values in enumerate(itertools.product(*(v for _, v in grid)))]


def cell_config(config_path: str | Path, overrides: list[str], cell: Cell) -> ExperimentConfig:
    """The config of one cell: the file, the ``--set`` overrides, then the cell's."""
    sets = list(overrides) + [f"{k}={_value_text(v)}" for k, v in cell.assignments]
    try:
        config = load_config(config_path, sets)
    except ConfigError as error:
        raise ConfigError(f"sweep cell {cell.index} ({cell.title}): {error}") from None
    config.name = cell.prefix  # its run folder: <sweep>/cell-NN-<stamp>
    return config


@dataclass
class SweepResult:
    folder: Path
    rows: list[dict]


def run_sweep(config_path: str | Path, grid_args: list[str], overrides: list[str] | None = None,
              output_dir: str | None = None, data_dir: str | None = None,
              log: Callable[[str], None] = print, resume: str | Path | None = None,
              workers: int = 1, executor=None, metric: str | None = None,
              progress: bool = True, tensorboard: str | None = None) -> SweepResult:
    """Run every cell of the grid and write the summary table.

    Args:
        config_path: the base experiment config file.
        grid_args: ``KEY=V1,V2,...`` strings (see :func:`parse_grid`).
        overrides: ``--set`` strings applied to every cell before its own.
        output_dir: where the sweep folder goes (default: the base config's ``output_dir``).
        data_dir, log, workers, executor: as for :func:`textmtl.experiment.run_experiment`.
        resume: a sweep folder of the same config, overrides and grid.
        metric: the score of every task (default: each task's default metric).
        progress: progress bars of the trainings.
        tensorboard: a folder for every training's TensorBoard event files (see
            ``training.tensorboard``).
    Returns:
        The sweep folder and the summary rows.
    """
    from .experiment import _claim_folder, run_experiment
    from .training import distributed

    if distributed.current() is not None:
        raise ConfigError("textmtl sweep does not run data-parallel (under torchrun); "
                          "use --workers or --scheduler")
    overrides = list(overrides or [])
    grid = parse_grid(grid_args)
    cells = grid_cells(grid)
    base = load_config(config_path, overrides)
    if output_dir:
        base.output_dir = output_dir
    description = {"config": str(config_path), "set": overrides,
                   "grid": [[k, v] for k, v in grid], "cells": [c.title for c in cells]}
    if resume is not None:
        folder = Path(resume)
        saved_path = folder / "sweep.json"
        if not saved_path.is_file():
            raise ConfigError(f"{folder}: not a sweep folder (no sweep.json); --resume takes a folder "
                              "written by textmtl sweep")
        saved = json.loads(saved_path.read_text())
        if {k: saved.get(k) for k in ("set", "grid")} != {k: description[k] for k in ("set", "grid")}:
            raise ConfigError(f"{folder}: made with other overrides or another grid "
                              f"(--set {saved.get('set')}, --grid {saved.get('grid')}); resume with the same")
    else:
        folder = None
    # every cell's config is built (and so validated) before anything trains
    configs = [cell_config(config_path, overrides, cell) for cell in cells]
    if folder is None:
        base.name = f"{base.name}-sweep"
        folder = _claim_folder(base)
        (folder / "sweep.json").write_text(json.dumps(description, indent=1))
    for config in configs:
        config.output_dir = str(folder)
        config.training.progress = progress and config.training.progress
        if tensorboard:
            config.training.tensorboard = tensorboard
    log(f"sweep {folder}: {len(cells)} cell(s)")
    rows: list[dict] = []
    for cell, config in zip(cells, configs):
        finished = [p for p in folder.glob(f"{cell.prefix}-*") if p.is_dir() and not p.name.endswith(PARTIAL)
                    and (p / "records.json").is_file()]
        if finished:
            run_dir = finished[0]
            log(f"  cell {cell.index} ({cell.title}): done in an earlier run ({run_dir.name})")
        else:
            partial = sorted(folder.glob(f"{cell.prefix}-*{PARTIAL}"))
            log(f"  cell {cell.index} ({cell.title})" + (": resuming" if partial else ""))
            run_dir = run_experiment(config, data_dir=data_dir, log=log,
                                     resume=partial[-1] if partial else None,
                                     workers=workers, executor=executor).run_dir
        records = json.loads((run_dir / "records.json").read_text())
        rows += summary_rows(cell, run_dir, records, metric)
    best = max(rows, key=lambda r: r["dev_mean"], default=None)
    for row in rows:
        row["best"] = row is best
    write_summary(folder, grid, rows)
    final = folder
    if folder.name.endswith(PARTIAL):
        final = folder.with_name(folder.name[: -len(PARTIAL)])
        folder.rename(final)
    return SweepResult(final, rows)


def _score(split_metrics: dict, metric: str | None) -> float:
    if metric is not None:
        if metric not in split_metrics:
            raise ConfigError(f"--metric {metric!r}: a task has only {', '.join(sorted(split_metrics))}")
        return split_metrics[metric]
    return split_metrics["span_f1"] if "span_f1" in split_metrics else split_metrics["accuracy"]


def summary_rows(cell: Cell, run_dir: Path, records: list[dict], metric: str | None) -> list[dict]:
    """One row per method of a cell's records: scores in %, means over tasks per seed."""
    rows = []
    methods = list(dict.fromkeys(r["method"] for r in records))
    for method in methods:
        if "@" in method:  # grid members: the group's row shows the one chosen on dev
            continue
        mine = [r for r in records if r["method"] == method]
        seeds = sorted({r["seed"] for r in mine})
        test = [statistics.mean(_score(r["test"], metric) for r in mine if r["seed"] == s) * 100 for s in seeds]
        dev = [statistics.mean(_score(r["dev"], metric) for r in mine if r["seed"] == s) * 100 for s in seeds]
        rows.append({"cell": cell.index, "settings": cell.title, "method": method, "seeds": len(seeds),
                     "dev_mean": statistics.mean(dev),
                     "test_mean": statistics.mean(test),
                     "test_std": statistics.stdev(test) if len(test) > 1 else 0.0,
                     "run": run_dir.name})
    return rows


def write_summary(folder: Path, grid: list[tuple[str, list[Any]]], rows: list[dict]) -> None:
    keys = [k for k, _ in grid]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["cell", "settings", "method", "seeds", "dev_mean", "test_mean", "test_std", "best", "run"])
    for r in rows:
        writer.writerow([r["cell"], r["settings"], r["method"], r["seeds"],
                         f"{r['dev_mean']:.4f}",
                         f"{r['test_mean']:.4f}", f"{r['test_std']:.4f}", int(r["best"]), r["run"]])
    (folder / "summary.csv").write_text(table.getvalue())
    lines = [f"### sweep over {', '.join(keys)}", "",
             "| cell | settings | method | seeds | dev | test | |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['settings']} | {r['method']} | {r['seeds']} | {r['dev_mean']:.2f} | "
                     f"{r['test_mean']:.2f} ± {r['test_std']:.2f} | {'best (dev)' if r['best'] else ''} |")
    lines += ["", "- mean over tasks of each task's default metric (span F1 where reported, else "
                  "accuracy), in %; mean ± std over seeds; the best row is chosen on dev, never test",
              f"- written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; every cell is a "
              "run folder of its own (its results.md has the per-task table)"]
    (folder / "summary.md").write_text("\n".join(lines) + "\n")

