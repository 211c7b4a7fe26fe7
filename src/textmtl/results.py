"""Results tables: per task, single-task vs MTL test metric as mean ± std over seeds.

A table is built from result records (one per method, seed and task) and written as Markdown
and CSV next to the runs; the terminal gets the Markdown.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

AVERAGE_ROW = "average"


@dataclass
class Record:
    """The test (and dev) metrics of one task in one run."""

    method: str
    seed: int
    task: str
    test: dict[str, float]
    dev: dict[str, float]


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float) * 100.0
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean, std = _mean_std(values)
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


@dataclass
class ResultsTable:
    """Rows = tasks + average; columns = methods (mean ± std), Δ vs single-task, reference."""

    header: list[str]
    rows: list[list[str]]
    title: str
    notes: list[str]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "| " + " | ".join("---" for _ in self.header) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, stem: str = "results") -> tuple[Path, Path]:
        md, csv_path = folder / f"{stem}.md", folder / f"{stem}.csv"
        md.write_text(self.markdown(), encoding="utf-8")
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.header)
            writer.writerows(self.rows)
        return md, csv_path


def build_table(records: list[Record], methods: list[str], tasks: list[str],
                metric: str | dict[str, str] = "accuracy", reference=None, title: str = "results",
                notes: list[str] | None = None, baseline: str | None = None) -> ResultsTable:
    """Aggregate ``records`` into a table.

    Args:
        records: one record per method, seed and task (baselines have one seed).
        methods: column order.
        tasks: row order.
        metric: the test metric shown (in percent): one name for every task, or task -> name
            (e.g. span-F1 for chunking beside accuracy for POS).
        baseline: the column the Δ columns subtract (the single-task column), if present.
        reference: a :class:`textmtl.config.ReferenceResult` printed as the last column.
    Returns:
        The table; the average row averages tasks within each seed, then mean ± std over seeds.
    """
    metric_of = (lambda task: metric[task]) if isinstance(metric, dict) else (lambda task: metric)
    by = {}
    for r in records:
        by.setdefault((r.method, r.task), {})[r.seed] = r.test[metric_of(r.task)]
    deltas = [m for m in methods if m != baseline and baseline in methods]
    header = ["task"] + methods + [f"Δ {m}" for m in deltas]
    if reference is not None:
        header.append(f"paper ({reference.metric})")

    def per_seed_average(method: str) -> list[float]:
        seeds = set.intersection(*(set(by.get((method, t), {})) for t in tasks)) if tasks else set()
        return [float(np.mean([by[(method, t)][s] for t in tasks])) for s in sorted(seeds)]

    def delta(method: str, values_of) -> str:
        mine, base = values_of(method), values_of(baseline)
        if not mine or not base:
            return "-"
        return f"{(np.mean(mine) - np.mean(base)) * 100:+.2f}"

    rows = []
    for task in tasks:
        values_of = lambda m, t=task: list(by.get((m, t), {}).values())
        row = [task] + [_cell(values_of(m)) for m in methods] + [delta(m, values_of) for m in deltas]
        if reference is not None:
            value = reference.per_task.get(task)
            row.append(f"{value:.1f}" if value is not None else "-")
        rows.append(row)
    row = [AVERAGE_ROW] + [_cell(per_seed_average(m)) for m in methods]
    row += [delta(m, per_seed_average) for m in deltas]
    if reference is not None:
        row.append(f"{reference.average:.1f}" if reference.average is not None else "-")
    rows.append(row)
    return ResultsTable(header, rows, title, list(notes or []))


def select_grid_members(records: list[Record], groups: dict[str, list[str]],
                        metric: str | dict[str, str] = "accuracy",
                        ) -> tuple[list[Record], ResultsTable]:
    """For each grid group, the member with the best mean dev score; its records under the
    group's name, and a table of every member.

    The score of a member is its dev ``metric`` averaged over tasks within a seed, then over
    seeds (the test scores never enter the choice); ties go to the earlier member of the grid.

    Args:
        records: every record of the run (members' included).
        groups: group title -> its members' titles, in grid order.
        metric: the metric (one name, or task -> name).
    Returns:
        The chosen members' records relabelled with the group title, and a table (``grid.md``)
        with each member's mean dev and test score, the chosen one marked.
    """
    metric_of = (lambda task: metric[task]) if isinstance(metric, dict) else (lambda task: metric)

    def mean_over_seeds(method: str, split: str) -> float | None:
        per_seed: dict[int, list[float]] = {}
        for r in records:
            if r.method == method:
                per_seed.setdefault(r.seed, []).append(getattr(r, split)[metric_of(r.task)])
        return float(np.mean([np.mean(v) for v in per_seed.values()])) * 100 if per_seed else None

    chosen_records, rows = [], []
    for group, members in groups.items():
        scored = [(m, mean_over_seeds(m, "dev")) for m in members]
        finished = [(m, s) for m, s in scored if s is not None]
        best = max(finished, key=lambda item: item[1])[0] if finished else None  # max keeps the first of ties
        chosen_records += [replace(r, method=group) for r in records if r.method == best]
        for member, dev in scored:
            test = mean_over_seeds(member, "test")
            rows.append([group, member, "-" if dev is None else f"{dev:.2f}",
                         "-" if test is None else f"{test:.2f}", "chosen" if member == best else ""])
    table = ResultsTable(["group", "member", "dev (mean over tasks and seeds)", "test", "choice"], rows,
                         "grid members (the group's column shows the member of best mean dev score)",
                         ["dev and test in %; the choice reads dev only"])
    return chosen_records, table
