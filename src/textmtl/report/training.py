"""How each method of a run trained: best epochs, epochs trained, the runs the epoch limit cut.

A table's numbers only mean what they say if early stopping, not the epoch budget, ended the
trainings: a method whose dev score was still rising at ``max_epochs`` is under-trained, and a
cut of ``max_epochs`` made to fit a time budget has to be checked against this. The experiment
writes ``training.md`` next to ``results.md`` from every model folder's ``metrics.json``
(best epoch, seconds per epoch) and ``curves.json`` (one entry per epoch trained).

A training counts as *cut by the epoch limit* when it ran ``max_epochs`` epochs and its best
epoch lies fewer than ``patience`` epochs before the end: early stopping had not fired, so a
longer budget might have found a better epoch. With patience 0 (no early stopping) that is
a training whose last epoch was its best.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

TRAINING_MD = "training.md"


@dataclass(frozen=True)
class TrainingRun:
    """One trained model: its best (dev-selected) epoch, epochs trained, seconds per epoch."""

    best_epoch: int
    epochs: int
    seconds_per_epoch: float

    def cut_by_limit(self, max_epochs: int, patience: int) -> bool:
        if self.epochs < max_epochs:
            return False  # early stopping ended it
        # patience 0 never stops early: the limit cut it if the last epoch was still the best
        return self.epochs - self.best_epoch < max(patience, 1)


def read_runs(method_folder: Path) -> list[TrainingRun]:
    """Every finished model under a method's folder (``seed-N/`` or ``seed-N/TASK/``), in path order."""
    runs = []
    for metrics_path in sorted(Path(method_folder).glob("**/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        curves_path = metrics_path.with_name("curves.json")
        epochs = len(json.loads(curves_path.read_text())) if curves_path.exists() else metrics["best_epoch"]
        runs.append(TrainingRun(int(metrics["best_epoch"]), int(epochs),
                                float(metrics.get("seconds_per_epoch") or 0.0)))
    return runs


def _spread(values: list[int]) -> str:
    """Up to three values listed; more as median (min-max)."""
    if len(values) <= 3:
        return ", ".join(str(v) for v in values)
    return f"median {statistics.median(values):g} ({min(values)}-{max(values)})"


def training_summary(run_dir: Path, methods: list[str], max_epochs: int, patience: int) -> str:
    """The Markdown table of how every method's trainings ended (see the module docstring)."""
    lines = ["### How the trainings ended", "",
             f"max_epochs {max_epochs}, patience {patience}; a training is cut by the limit "
             f"when it ran {max_epochs} epochs with its best epoch fewer than {patience} before "
             "the end", "",
             "| method | trainings | best epoch | epochs trained | cut by the limit | s / epoch |",
             "| --- | --- | --- | --- | --- | --- |"]
    for method in methods:
        runs = read_runs(Path(run_dir) / method)
        if not runs:
            continue
        cut = sum(r.cut_by_limit(max_epochs, patience) for r in runs)
        seconds = statistics.mean(r.seconds_per_epoch for r in runs)
        lines.append(f"| {method} | {len(runs)} | {_spread([r.best_epoch for r in runs])} | "
                     f"{_spread([r.epochs for r in runs])} | {cut} of {len(runs)} | {seconds:.1f} |")
    return "\n".join(lines) + "\n"


def write_training_summary(run_dir: Path, methods: list[str], max_epochs: int, patience: int) -> Path:
    path = Path(run_dir) / TRAINING_MD
    path.write_text(training_summary(run_dir, methods, max_epochs, patience), encoding="utf-8")
    return path
