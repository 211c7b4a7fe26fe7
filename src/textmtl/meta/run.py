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
from ..errors import ConfigError, DataError
from .corpus import build_corpus
from .report import (advisor_model, analyse, feature_matrix, feature_set, figure4, figure5, table1, table2, table3,
                     write_csv)
from .store import RunStore
from .study import StudySettings, collect_outcomes, load_runs, plan_study, run_study
from .validation import write_pairs


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
    with RunStore(db):  # opened first: a bad --db fails before the corpus is built
        pass
    corpus = build_corpus(root, settings.corpus)
    sample = (f"{settings.corpus.train_per_topic} training posts per topic"
              if settings.corpus.sampling == "per_topic" else
              f"{settings.corpus.train_per_task} training posts per task and seed")
    log(f"corpus: TF-IDF over {settings.corpus.max_features} words, {sample} "
        f"(built in {time.perf_counter() - started:.1f} s); "
        f"running on {executor.describe()}, device {device}, {models_per_call} model(s) per call")
    run, rows = _run_units(plan, corpus, db, executor, progress, device, models_per_call, log)
    analysis_start = time.perf_counter()
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
    for report in reports:  # what a validation or refit reads without the store
        write_pairs(out / f"pairs_{report.problem}.csv", report.outcomes, report.features, report.names)
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


#: what ``textmtl study fdu`` compares its predictions with, besides its own measured gains: the
#: gain matrix of ``textmtl advise --tasks`` on the 16 domains (dev-selected epochs, full data)
INDEPENDENT_GAINS = Path("results/advise-fdu16/gain_matrix.csv")


def _run_units(plan: Any, corpus: Any, db: Path, executor: Any, progress: bool, device: str,
               models_per_call: int, log: Callable[[str], None]) -> tuple[Any, dict[str, Any]]:
    """Train the plan's units missing from the store (a progress bar when asked); returns what
    :func:`run_study` did and every unit's stored row."""
    with RunStore(db) as store:
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
        log(f"trainings: {run.executed} run now, {run.already_done} found in the store, {run.seconds:.0f} s")
        return run, load_runs(plan, store)


def study_fdu(settings: StudySettings, *, out: Path, reference: Path, db: Path | None = None, executor: Any,
              data_dir: str | None = None, progress: bool = True, log: Callable[[str], None] = print,
              device: str = "auto", models_per_call: int | None = None, protocol: str | None = None,
              independent: Path | None = INDEPENDENT_GAINS, domains: tuple[str, ...] | None = None,
              meta_runs: int = 100, export_advisor: Path | None = None) -> dict[str, Any]:
    """The study's protocol on every ordered pair of FDU-MTL domains, and the out-of-corpus
    validation of the meta-model fitted on the 20 Newsgroups study in ``reference`` (its
    ``pairs_*.csv``; :mod:`.validation`). Returns a summary."""
    from ..training.runtime import resolve_device
    from .collection import FDU_DOMAINS, build_task_corpus, load_fdu, ordered_pairs
    from .study import plan_pairs
    from .validation import MAIN_AVERAGE, markdown, read_pairs, ship, validate

    db = db or out / "study.sqlite"
    check_writable(out, "--out", folder=True)
    check_writable(db, "--db", folder=False)
    if export_advisor:
        check_writable(export_advisor, "--export-advisor", folder=False)
    names, _ = feature_set(settings)
    references = {}
    for problem in ("unrelated", "related"):
        path = Path(reference) / f"pairs_{problem}.csv"
        if path.exists():
            references[f"20NG {problem.upper()}"] = read_pairs(path, names)
    if not references:
        raise ConfigError(f"--reference {reference}: no pairs_unrelated.csv or pairs_related.csv; expected the "
                          "output folder of a finished 'textmtl study 20ng' of the same protocol")
    device = str(resolve_device(device, key="--device"))
    models_per_call = models_per_call or (1 if device == "cpu" else 64)
    started = time.perf_counter()
    tasks = load_fdu(data_dir, domains or FDU_DOMAINS)
    corpus = build_task_corpus(tasks, settings.corpus)
    plan = plan_pairs({"fdu": ordered_pairs(tasks)}, settings)
    log(f"study fdu{f' (protocol {protocol})' if protocol else ''}: {len(tasks)} domains, "
        f"{len(plan.pairs['fdu'])} ordered pairs, {settings.seeds} seed(s); {len(plan.units)} trainings; "
        f"results store {db}; running on {executor.describe()}, device {device}")
    run, rows = _run_units(plan, corpus, db, executor, progress, device, models_per_call, log)
    analysis_start = time.perf_counter()
    outcomes = collect_outcomes(plan, settings, rows)["fdu"]
    features = feature_matrix(outcomes, corpus, plan, settings, rows, log)
    out.mkdir(parents=True, exist_ok=True)
    write_pairs(out / "pairs_fdu.csv", outcomes, features, names)
    target = read_pairs(out / "pairs_fdu.csv", names)
    extra = {}
    if independent is not None and Path(independent).exists():
        extra[str(independent)] = _independent_gains(Path(independent), target)
    validation = validate(target, references, settings.meta, extra)
    judged, others = validation.judged, validation.independent
    command = "textmtl " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "textmtl study fdu"
    per_seed = np.array([[m > s for s, m in zip(o.single_f1, o.mtl_f1)] for o in outcomes], dtype=float)
    helps = float(np.mean([o.gain > 0 for o in outcomes]))
    lines = [f"Produced by `{command}`", "",
             f"FDU-MTL, {len(tasks)} domains, {len(outcomes)} ordered pairs, {settings.seeds} seed(s), scores at "
             f"epoch {settings.f1_epoch}: single-task {np.mean([np.mean(o.single_f1) for o in outcomes]):.3f}, "
             f"multi-task {np.mean([np.mean(o.mtl_f1) for o in outcomes]):.3f}, improved (pair, seed) "
             f"{per_seed.mean():.3f}, pairs whose mean gain is > 0: {helps:.3f}", "",
             markdown(judged, f"Out-of-corpus validation: P(MTL helps) against the gains measured here "
                              f"({len(outcomes)} pairs)")]
    for label, judgements in others.items():
        lines += ["", markdown(judgements, f"The same predictions against the gains of {label} "
                                           "(measured advice: full data, dev-selected epochs)")]
    best, shipped = validation.best_model(), validation.shipped_model()
    lines += ["", f"Best-ranking meta-model: {best.name} (Spearman ρ {best.spearman:+.3f}, AUC {best.auc:.3f}); "
              f"the main task's average gain: ρ {validation.judgement(MAIN_AVERAGE).spearman:+.3f}, "
              f"AUC {validation.judgement(MAIN_AVERAGE).auc:.3f}; a constant: AUC 0.500.",
              "", f"Shipped (advisor.json, fitted on all its pairs): {shipped.name} (ρ {shipped.spearman:+.3f}, "
              f"AUC {shipped.auc:.3f} with the target's tasks held out)."]
    text = "\n".join(lines)
    (out / "validation.md").write_text(text + "\n")
    model = ship(validation, shipped.name, settings.meta, runs=meta_runs,
                 trained_on={"command": command, "features": settings.features, "protocol": protocol})
    model.to_json(out / "advisor.json")
    if export_advisor:
        model.to_json(export_advisor)
    summary = {
        "command": command, "protocol": protocol, "settings": asdict(settings), "trainings": len(plan.units),
        "run_now": run.executed, "found_in_store": run.already_done, "training_seconds": round(run.seconds, 1),
        "analysis_seconds": round(time.perf_counter() - analysis_start, 1),
        "total_seconds": round(time.perf_counter() - started, 1), "executor": executor.describe(),
        "pairs": len(outcomes), "improved": float(per_seed.mean()), "pairs_gain_positive": helps,
        "validation": [asdict(j) for j in judged], "best": best.name, "shipped": shipped.name,
        "independent": {label: [asdict(j) for j in js] for label, js in others.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    log(text)
    log(f"study fdu took {summary['total_seconds']:.0f} s (trainings {run.seconds:.0f} s); results in {out}")
    return summary


def _independent_gains(path: Path, target: Any) -> np.ndarray:
    """The gains of ``path`` (an ``advise --tasks`` gain_matrix.csv: main, aux, mean_gain, ...) for
    the pairs of ``target``, matched by task (``fdu_mtl:books``)."""
    import csv

    def task_of(study_name: str) -> str:  # "fdu_mtl:books:negative|fdu_mtl:books:positive" -> "fdu_mtl:books"
        return study_name.split("|")[0].rpartition(":")[0]

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"main", "aux", "mean_gain"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected columns main, aux, mean_gain (an 'advise --tasks' gain_matrix.csv)")
        gains = {(r["main"], r["aux"]): float(r["mean_gain"]) for r in reader}
    try:
        return np.array([gains[task_of(m), task_of(a)] for m, a in zip(target.main, target.aux)])
    except KeyError as error:
        raise DataError(f"{path}: no gain for the pair {error.args[0]}; expected every ordered pair of the "
                        "study's domains") from None
