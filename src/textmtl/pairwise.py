"""Pair-wise performance gain: train every pair of tasks together and compare with each alone.

Zhang, Xiao, Wang & Jin (2017, §4.4, Figure 3) measure how well two tasks go together by

    PPG_ij = sqrt(P'_i * P'_j / (P_i * P_j)),

with ``P_i`` the test score of task i trained alone and ``P'_i`` its score when trained jointly
with task j only: above 1 the pair gains on (geometric) average, below 1 it loses. Any sharing
method can be the joint model (hard sharing is the cheap screen a user runs first); the alone
scores come from a method entry trained separately (``single_task``, or a method with
``train_tasks: separately``; the built-in ``single_task`` when the config has none).

Scores are means over the config's seeds, each model's epoch chosen on dev; the metric is
each task's default (accuracy, span F1 for chunking) unless one is named. All tasks are
featurized once, as in ``textmtl run``, so a task alone and in every pair reads the same
features. Folder (``<output_dir>/<name>-pairs-<method>-<stamp>[.partial]``, resumable like a
run folder: every finished training is kept)::

    config.yaml                          the resolved config: the alone and the joint entries
    <alone>/seed-<n>/<task>/             each task trained alone (a model folder)
    <joint>/<a>+<b>/seed-<n>[/<task>]/   each pair trained with the joint method
    pairs.csv                            one row per pair: scores alone and joint, PPG
    ppg.csv / ppg.md / ppg.png           the K x K matrix (the diagonal is empty)
    meta.json                            version, seeds, timings
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from . import __version__
from .config import ExperimentConfig, MethodConfig
from .errors import ConfigError
from .training.metrics import default_metric, metrics_for

#: the entry used for the alone scores when a config has no separately trained method
BUILTIN_ALONE = "single_task"


@dataclass(frozen=True)
class PairGain:
    """One pair's scores (means over seeds, fractions) and its gain."""

    first: str
    second: str
    alone: tuple[float, float]
    joint: tuple[float, float]
    #: PPG of each seed (that seed's alone and joint scores), for the spread
    per_seed: tuple[float, ...]

    @property
    def ppg(self) -> float:
        return ppg(self.alone, self.joint)


@dataclass
class PairwiseResult:
    run_dir: Path
    tasks: list[str]
    pairs: list[PairGain]
    timings: dict[str, float]

    def matrix(self) -> np.ndarray:
        """(K, K) PPG, symmetric, NaN on the diagonal."""
        index = {name: i for i, name in enumerate(self.tasks)}
        out = np.full((len(self.tasks), len(self.tasks)), np.nan)
        for pair in self.pairs:
            i, j = index[pair.first], index[pair.second]
            out[i, j] = out[j, i] = pair.ppg
        return out


def ppg(alone: tuple[float, float], joint: tuple[float, float]) -> float:
    """sqrt(P'_i P'_j / (P_i P_j)); NaN when an alone score is 0 (the ratio is undefined)."""
    if alone[0] <= 0 or alone[1] <= 0:
        return math.nan
    return math.sqrt(joint[0] * joint[1] / (alone[0] * alone[1]))


def pairwise_config(config: ExperimentConfig, method: str, alone: str | None = None) -> ExperimentConfig:
    """The config a pair-wise run trains: the alone entry and the joint entry, nothing else.

    Args:
        config: a validated experiment config (its data, features, training, seeds are used).
        method: the label (column title) of the joint method entry.
        alone: the label of the separately trained entry; default: the config's one such entry,
            or the built-in ``single_task`` when it has none.
    Raises:
        ConfigError: an unknown label, a joint method that trains tasks separately, or two
            separately trained entries and no ``alone`` to choose.
    """
    titles = [m.title for m in config.methods]
    listed = ", ".join(titles)

    def entry(label: str, flag: str) -> MethodConfig:
        found = [m for m in config.methods if m.title == label]
        if not found:
            grouped = sorted({m.grid_group for m in config.methods if m.grid_group == label})
            hint = " (a grid group: name one of its members)" if grouped else ""
            raise ConfigError(f"{flag} {label!r}: no such method entry in the config{hint}; "
                              f"entries: {listed}")
        return found[0]

    joint = entry(method, "--method")
    if config.method_train_tasks(joint) == "separately":
        raise ConfigError(f"--method {method!r} trains every task separately; expected a method "
                          "that trains tasks together (hard, soft, ...) for the joint scores")
    if alone is not None:
        single = entry(alone, "--alone")
        if config.method_train_tasks(single) != "separately":
            raise ConfigError(f"--alone {alone!r} trains tasks together; expected a method entry "
                              "trained separately (single_task or train_tasks: separately)")
    else:
        separately = [m for m in config.methods if config.method_train_tasks(m) == "separately"]
        if len(separately) > 1:
            raise ConfigError("the config has several separately trained entries "
                              f"({', '.join(m.title for m in separately)}); choose one with --alone")
        # the built-in alone entry reads what the joint entry reads (its own encoder, features)
        single = separately[0] if separately else MethodConfig(
            name=BUILTIN_ALONE, encoder=joint.encoder, features=joint.features)
    if single.title == joint.title:
        raise ConfigError(f"--alone and --method name the same entry {joint.title!r}")
    return dataclasses.replace(config, name=f"{config.name}-pairs-{joint.title}",
                               methods=[single, joint], baselines=[])


def run_pairwise(config: ExperimentConfig, method: str, alone: str | None = None,
                 tasks: list[str] | None = None, metric: str | None = None,
                 data_dir: str | None = None, log: Callable[[str], None] = print,
                 resume: str | Path | None = None, workers: int = 1, executor=None) -> PairwiseResult:
    """Train each task alone and every pair of tasks jointly; write the PPG matrix.

    Args:
        config: a validated experiment config.
        method: the label of the joint method entry.
        alone: the label of the separately trained entry (see :func:`pairwise_config`).
        tasks: the tasks to pair (default: every task the config's data yields), at least two.
        metric: the score of every task (default: each task's default metric).
        data_dir, log, resume, workers, executor: as for :func:`textmtl.experiment.run_experiment`
            (``resume`` takes a folder this function wrote for the same config and tasks).
    Returns:
        The run folder, the task order, each pair's scores and the timings.
    """
    from .experiment import (PARTIAL, _claim_folder, _finished, _open_resumed, featurize_all,
                             git_hash, keep_or_remove_interrupted, load_experiment_tasks,
                             method_units, train_units)

    from .training import distributed

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if distributed.current() is not None:
        raise ConfigError("textmtl pair-gain does not run data-parallel (under torchrun); "
                          "use --workers or --scheduler")
    started = time.perf_counter()
    derived = pairwise_config(config, method, alone)
    single, joint = derived.methods
    loaded = load_experiment_tasks(derived, data_dir, log)
    names = [t.name for t in loaded]
    if tasks is not None:
        unknown = [name for name in tasks if name not in names]
        if unknown:
            raise ConfigError(f"--tasks: unknown task {unknown[0]!r}; the config's tasks: {', '.join(names)}")
        if len(set(tasks)) != len(tasks):
            raise ConfigError(f"--tasks names a task twice: {' '.join(tasks)}")
        names = list(tasks)
    if len(names) < 2:
        raise ConfigError(f"pair-wise gains need at least 2 tasks, got {len(names)} ({', '.join(names)})")
    by_name = {t.name: t for t in loaded}
    metrics = {name: metric or default_metric(by_name[name].kind, by_name[name].labels) for name in names}
    for name, chosen in metrics.items():
        available = metrics_for(by_name[name].kind, by_name[name].labels)
        if chosen not in available:
            raise ConfigError(f"--metric {chosen!r}: task {name!r} has only {', '.join(available)}")
    # the task list is part of what a resumed folder must match (tasks.json)
    if resume is not None:
        folder = _open_resumed(Path(resume), derived)
        saved_tasks = json.loads((folder / "tasks.json").read_text()) if (folder / "tasks.json").is_file() else None
        if saved_tasks != names:
            raise ConfigError(f"{folder}: made for the tasks {saved_tasks}, not {names}; resume with the same --tasks")
    else:
        folder = _claim_folder(derived)
        (folder / "config.yaml").write_text(yaml.safe_dump(derived.to_dict(), sort_keys=False))
        (folder / "tasks.json").write_text(json.dumps(names))
    try:
        t0 = time.perf_counter()
        datas = featurize_all(derived, [by_name[n] for n in names], log)
        timings = {"featurize_s": time.perf_counter() - t0}
        alone_units = method_units(derived, single, tuple(names), folder / single.title)
        pair_units = {(a, b): method_units(derived, joint, (a, b), folder / joint.title / f"{a}+{b}",
                                           label=f"{joint.title} {a}+{b}")
                      for a, b in itertools.combinations(names, 2)}
        units = alone_units + [u for group in pair_units.values() for u in group]
        log(f"{derived.name}: {len(names)} tasks alone and {len(pair_units)} pairs, "
            f"{len(derived.seeds)} seed(s): {len(units)} trainings")
        trained = train_units(derived, datas, units, log, workers, executor)
    except BaseException:
        keep_or_remove_interrupted(folder, resumed=resume is not None, log=log,
                                   command=f"textmtl pair-gain CONFIG --method {method}")
        raise
    for title, (_, seconds) in trained.items():
        timings[f"{title}_s"] = seconds

    def scores(units_of) -> dict[tuple[str, int], float]:
        out = {}
        for unit in units_of:
            result = _finished(unit.folder)
            for name in unit.reported:
                out[(name, unit.seed)] = result["test"][name][metrics[name]]
        return out

    alone_scores = scores(alone_units)
    pairs = []
    for (a, b), group in pair_units.items():
        joint_scores = scores(group)
        seeds = derived.seeds
        pairs.append(PairGain(
            a, b,
            alone=(float(np.mean([alone_scores[(a, s)] for s in seeds])),
                   float(np.mean([alone_scores[(b, s)] for s in seeds]))),
            joint=(float(np.mean([joint_scores[(a, s)] for s in seeds])),
                   float(np.mean([joint_scores[(b, s)] for s in seeds]))),
            per_seed=tuple(ppg((alone_scores[(a, s)], alone_scores[(b, s)]),
                               (joint_scores[(a, s)], joint_scores[(b, s)])) for s in seeds)))
    timings["total_s"] = time.perf_counter() - started
    result = PairwiseResult(folder, names, pairs, timings)
    write_pairwise(result, derived, metrics)
    meta = {"version": __version__, "git_hash": git_hash(), "seeds": derived.seeds,
            "method": joint.title, "alone": single.title, "metrics": metrics, "timings": timings,
            "created": datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    if folder.name.endswith(PARTIAL):
        final = folder.with_name(folder.name[: -len(PARTIAL)])
        folder.rename(final)
        result.run_dir = final
    return result


def _atomic_write(path: Path, text: str) -> None:
    from .data.store import write_atomic

    write_atomic(path, text.encode("utf-8"))


def write_pairwise(result: PairwiseResult, config: ExperimentConfig, metrics: dict[str, str]) -> None:
    """``pairs.csv``, ``ppg.csv``, ``ppg.md`` and ``ppg.png`` in the run folder."""
    folder = result.run_dir
    pairs_csv = io.StringIO()
    writer = csv.writer(pairs_csv, lineterminator="\n")
    writer.writerow(["task_i", "task_j", "metric_i", "metric_j", "alone_i", "alone_j", "joint_i",
                     "joint_j", "ppg", "ppg_seed_std", "seeds"])
    for p in result.pairs:
        writer.writerow([p.first, p.second, metrics[p.first], metrics[p.second],
                         *(f"{v:.6f}" for v in (*p.alone, *p.joint, p.ppg, float(np.std(p.per_seed)))),
                         " ".join(map(str, config.seeds))])
    _atomic_write(folder / "pairs.csv", pairs_csv.getvalue())
    matrix = result.matrix()
    matrix_csv = io.StringIO()
    writer = csv.writer(matrix_csv, lineterminator="\n")
    writer.writerow(["task", *result.tasks])
    for name, row in zip(result.tasks, matrix):
        writer.writerow([name, *("" if math.isnan(v) else f"{v:.6f}" for v in row)])
    _atomic_write(folder / "ppg.csv", matrix_csv.getvalue())
    _atomic_write(folder / "ppg.md", format_pairwise(result, config, metrics))
    plot_pairwise(result, folder / "ppg.png", title=f"PPG, {config.methods[1].title}")


def format_pairwise(result: PairwiseResult, config: ExperimentConfig, metrics: dict[str, str]) -> str:
    """The matrix as markdown, the strongest and weakest pairs, and each pair's scores."""
    alone, joint = config.methods
    lines = [f"### pair-wise performance gain: {joint.title} against {alone.title}", "",
             "| task | " + " | ".join(result.tasks) + " |",
             "| --- |" + " --- |" * len(result.tasks)]
    for name, row in zip(result.tasks, result.matrix()):
        lines.append(f"| {name} | " + " | ".join("-" if math.isnan(v) else f"{v:.3f}" for v in row) + " |")
    ranked = sorted((p for p in result.pairs if not math.isnan(p.ppg)), key=lambda p: -p.ppg)
    lines += ["", "| pair | alone (i / j) | joint (i / j) | PPG | PPG std over seeds |",
              "| --- | --- | --- | --- | --- |"]
    for p in ranked:
        lines.append(f"| {p.first} + {p.second} | {p.alone[0] * 100:.2f} / {p.alone[1] * 100:.2f} | "
                     f"{p.joint[0] * 100:.2f} / {p.joint[1] * 100:.2f} | {p.ppg:.3f} | "
                     f"{float(np.std(p.per_seed)):.3f} |")
    shown = sorted(set(metrics.values()))
    lines += ["", f"- PPG_ij = sqrt(P'_i P'_j / (P_i P_j)) (Zhang et al. 2017): P alone "
                  f"({alone.title}), P' trained as the pair ({joint.title}); > 1: the pair gains",
              f"- test {' / '.join(shown)} in %, means over seeds {config.seeds}; every epoch chosen on dev"]
    if ranked:
        lines.append(f"- strongest pair: {ranked[0].first} + {ranked[0].second} ({ranked[0].ppg:.3f}); "
                     f"weakest: {ranked[-1].first} + {ranked[-1].second} ({ranked[-1].ppg:.3f})")
    if config.max_rows:
        lines.append(f"- NOT A RESULT: every task limited to at most {config.max_rows} rows per split (max_rows)")
    return "\n".join(lines) + "\n"


def plot_pairwise(result: PairwiseResult, path: Path, title: str = "PPG") -> Path:
    """The PPG matrix as a heatmap centred on 1 (red: the pair gains, blue: it loses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    matrix = result.matrix()
    finite = matrix[np.isfinite(matrix)]
    spread = max(float(np.max(np.abs(finite - 1.0))) if finite.size else 0.0, 1e-3)
    side = 2.0 + 0.45 * len(result.tasks)
    figure, axis = plt.subplots(figsize=(side + 1.0, side))
    image = axis.imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", interpolation="nearest",
                        norm=TwoSlopeNorm(vcenter=1.0, vmin=1.0 - spread, vmax=1.0 + spread))
    if len(result.tasks) <= 16:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):  # light text on the dark ends of the colour map
                axis.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=6,
                          color="white" if abs(value - 1.0) > 0.6 * spread else "black")
    axis.set_xticks(range(len(result.tasks)), result.tasks, rotation=60, ha="right", fontsize=7)
    axis.set_yticks(range(len(result.tasks)), result.tasks, fontsize=7)
    axis.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)
    return path
