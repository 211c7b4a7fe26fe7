"""``textmtl study 20ng``: plan, train (resumably), analyse, and write tables and figures."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.store import locate
from ..errors import ConfigError
from .corpus import build_corpus
from .report import (advisor_model, analyse, feature_matrix, feature_set, figure4, figure5, table1, table2, table3,
                     write_csv)
from .store import RunStore
from .study import StudySettings, collect_outcomes, load_runs, plan_study, run_study


def study_20ng(settings: StudySettings, *, out: Path, db: Path | None = None, executor: Any,
               data_dir: str | None = None, meta_runs: int = 100, progress: bool = True,
               export_advisor: Path | None = None, log: Callable[[str], None] = print,
               device: str = "auto", models_per_call: int | None = None, protocol: str | None = None) -> dict[str, Any]:
    """The whole study. Returns a summary (times, counts, output paths).

    ``device``: "auto" (CUDA when present), "cpu", "cuda[:N]"; ``models_per_call``: models
    trained side by side per engine call (default: 1 on a CPU, 64 on a GPU); ``protocol``: the
    preset the settings came from, recorded in the summary (the settings themselves are too).
    """
    from ..training.runtime import resolve_device

    # before anything slow: the tables are written after hours of training, and an --out that
    # cannot be written would otherwise only fail then
    db = db or out / "study.sqlite"
    check_writable(out, "--out", folder=True)
    check_writable(db, "--db", folder=False)
    if export_advisor:
        check_writable(export_advisor, "--export-advisor", folder=False)
    device = str(resolve_device(device, key="--device"))
    if models_per_call is None:
        models_per_call = 1 if device == "cpu" else 64
    if models_per_call < 1:
        raise ConfigError(f"--models-per-call must be >= 1, got {models_per_call}")
    started = time.perf_counter()
    plan = plan_study(settings)
    log(f"study{f' (protocol {protocol})' if protocol else ''}: "
        f"{', '.join(f'{p} {len(v)} pairs' for p, v in plan.pairs.items())}, {settings.seeds} seed(s); "
        f"{len(plan.units)} trainings ({plan.naive_trainings} without sharing runs between pairs); "
        f"results store {db}")
    root = locate("newsgroups", data_dir).path
    with RunStore(db) as store:  # opened first: a bad --db fails before the corpus is built
        corpus = build_corpus(root, settings.corpus)
        sample = (f"{settings.corpus.train_per_topic} training posts per topic"
                  if settings.corpus.sampling == "per_topic" else
                  f"{settings.corpus.train_per_task} training posts per task and seed")
        log(f"corpus: TF-IDF over {settings.corpus.max_features} words, {sample} "
            f"(built in {time.perf_counter() - started:.1f} s); "
            f"running on {executor.describe()}, device {device}, {models_per_call} model(s) per call")
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(plan.units), desc="trainings", unit="run", file=sys.stderr, smoothing=0.05)

        def report_progress(done: int, total: int) -> None:
            if bar is not None:
                bar.n = done
                bar.refresh()

        try:
            run = run_study(plan, corpus.arrays, store, executor, report_progress, device=device,
                            models_per_call=models_per_call)
        finally:
            if bar is not None:
                bar.close()
        log(f"trainings: {run.executed} run now, {run.already_done} found in the store, "
            f"{run.seconds:.0f} s")
        analysis_start = time.perf_counter()
        rows = load_runs(plan, store)
    outcomes = collect_outcomes(plan, settings, rows)
    command = "textmtl " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "textmtl study 20ng"
    names, labels = feature_set(settings)
    reports = []
    for problem, problem_outcomes in outcomes.items():
        features = feature_matrix(problem_outcomes, corpus, plan, settings, rows, log)
        reports.append(analyse(problem, problem_outcomes, features, runs=meta_runs, names=names, meta=settings.meta,
                               labels_of=labels, command=command))
    out.mkdir(parents=True, exist_ok=True)
    sections = [table1(reports, settings.seeds, settings.f1_epoch, settings.f1_average), table2(reports)]
    names = ["table1", "table2"]
    for r in reports:
        which = "ranks" if r.problem == "related" else "coefficients"
        sections.append(table3(r, which))
        names.append(f"table3_{r.problem}_{which}")
    text = "\n".join(s[0] for s in sections)
    for name, (_, table) in zip(names, sections):
        write_csv(out / f"{name}.csv", table)
    figure4(reports, out / "figure4_f1_over_epochs.png", "accuracy" if settings.f1_average == "micro" else "F1")
    related = [r for r in reports if r.problem == "related"]
    if related:
        figure5(related[0], out / "figure5_related_gains.png")
    advisor_source = next((r for r in reports if r.problem == "unrelated"), reports[0])
    advisor = None
    try:
        advisor = advisor_model(advisor_source, command)
    except ValueError as error:
        log(f"no advisor model: {error}")
    if advisor is not None:
        advisor.to_json(out / "advisor.json")
        if export_advisor:
            advisor.to_json(export_advisor)
    summary = {
        "command": command, "protocol": protocol, "settings": asdict(settings), "trainings": len(plan.units),
        "trainings_without_sharing": plan.naive_trainings, "run_now": run.executed,
        "found_in_store": run.already_done, "training_seconds": round(run.seconds, 1),
        "analysis_seconds": round(time.perf_counter() - analysis_start, 1),
        "total_seconds": round(time.perf_counter() - started, 1), "executor": executor.describe(),
        "device": device, "models_per_call": models_per_call,
        "pairs": {r.problem: len(r.outcomes) for r in reports},
        # the engine's time per model (stored with each run), by kind: what a larger study costs
        "seconds_per_training": {kind: round(float(np.mean([r.seconds for r in rows.values() if r.kind == kind])), 3)
                                 for kind in ("single", "mtl") if any(r.kind == kind for r in rows.values())},
    }
    (out / "tables.md").write_text(f"Produced by `{command}`\n\n{text}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    log("")
    log(text)
    log(f"study took {summary['total_seconds']:.0f} s (trainings {run.seconds:.0f} s); tables, figures and "
        f"advisor.json in {out}")
    return summary


def check_scheduler(address: str) -> str:
    if "://" not in address and ":" not in address:
        raise ConfigError(f"--scheduler expects a Dask scheduler address like tcp://HOST:8786, got {address!r}")
    return address


def check_writable(path: Path, option: str, *, folder: bool) -> None:
    """Fail with one line now when ``path`` (a folder, or a file) cannot be created or written.

    Nothing is created: the nearest existing ancestor must be a writable folder (and an existing
    ``path`` of the right kind). A path below a regular file fails this for every user, root
    included; a read-only folder fails it for everyone but root.

    Raises:
        ConfigError: naming the option, the path, and what is in the way.
    """
    path = Path(path).expanduser().absolute()
    expected = "a folder" if folder else "a file"
    if path.exists():
        if path.is_dir() != folder:
            raise ConfigError(f"{option} {path}: expected {expected}, found "
                              f"{'a folder' if path.is_dir() else 'a file'}")
        # an existing file may be read-only: a finished study only reads its store (a write
        # would still fail as one line); the output folder is always written
        if folder and not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{option} {path}: expected a folder you can write, found it read-only")
        return
    ancestor = path.parent
    while not ancestor.exists():  # Path.exists is False below a file (ENOTDIR), so this ends
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{option} {path}: cannot be created, {ancestor} is a file; expected {expected} "
                          "in a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot be created, the folder {ancestor} is not writable")
