"""Every member of one grid group of a finished run, per task: a table and a curve (PNG).

A ``grid:`` entry of a config trains one member per grid point; the run's table shows only the
member chosen on dev. This prints each task's test score (mean ± std over seeds) at every
point, e.g. Zhang et al.'s Figure 2, accuracy per domain against the upsampling coefficient n0:

    python scripts/grid_curve.py results/runs/zhang_n0_sweep-<stamp> full [--metric accuracy]
        [--split test] [--out PREFIX]      # writes PREFIX.md and PREFIX.png
                                           # (default: RUN_DIR/<group>-curve)

Reads the run's ``records.json`` (written when the run finishes: resume an interrupted run
first). A one-parameter grid with numeric values is drawn against those values; any other
grid against its points in config order.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def members(records: list[dict], group: str) -> list[str]:
    """The member titles of ``group`` in the order the run wrote them (the grid's order)."""
    seen: dict[str, None] = {}
    for record in records:
        if record["method"].startswith(group + "@"):
            seen.setdefault(record["method"], None)
    return list(seen)


def point_values(titles: list[str], group: str) -> list[float] | None:
    """The numeric value of each member of a one-parameter grid, else None."""
    values = []
    for title in titles:
        point = title[len(group) + 1:]
        if "," in point or "=" not in point:
            return None
        try:
            values.append(float(point.split("=", 1)[1]))
        except ValueError:
            return None
    return values


def curve_table(records: list[dict], group: str, metric: str, split: str) -> tuple[list[str], list[str], dict]:
    """(member titles, tasks, {(task, title): [score of each seed]}) in % ."""
    titles = members(records, group)
    if not titles:
        known = sorted({r["method"].split("@", 1)[0] for r in records if "@" in r["method"]})
        raise ValueError(f"no grid group {group!r} in the run; its grid groups: {', '.join(known) or 'none'}")
    tasks = list(dict.fromkeys(r["task"] for r in records if r["method"] in titles))
    scores: dict[tuple[str, str], list[float]] = {}
    for record in records:
        if record["method"] in titles:
            if metric not in record[split]:
                raise ValueError(f"task {record['task']!r} has no {split} metric {metric!r}; "
                                 f"it has {', '.join(sorted(record[split]))}")
            scores.setdefault((record["task"], record["method"]), []).append(record[split][metric] * 100)
    return titles, tasks, scores


def _cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {spread:.2f}"


def markdown(titles, tasks, scores, group: str, metric: str, split: str, run_dir: Path) -> str:
    points = [t[len(group) + 1:] for t in titles]
    lines = [f"### {group}: every grid point, {split} {metric} (%)", "",
             "| task | " + " | ".join(points) + " |", "| --- |" + " --- |" * len(points)]
    for task in tasks:
        lines.append(f"| {task} | " + " | ".join(_cell(scores[(task, t)]) for t in titles) + " |")
    averages = [[statistics.mean(scores[(task, t)][i] for task in tasks)
                 for i in range(min(len(scores[(task, t)]) for task in tasks))] for t in titles]
    lines.append("| average | " + " | ".join(_cell(a) for a in averages) + " |")
    seeds = min(len(v) for v in scores.values())
    lines += ["", f"- mean ± std over {seeds} seed(s); each model's epoch chosen on dev; from "
                  f"{run_dir}/records.json (`python scripts/grid_curve.py {run_dir} {group}`)"]
    return "\n".join(lines) + "\n"


def plot(titles, tasks, scores, group: str, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = point_values(titles, group)
    x = values if values is not None else list(range(len(titles)))
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for task in tasks:
        means = [statistics.mean(scores[(task, t)]) for t in titles]
        spreads = [statistics.stdev(scores[(task, t)]) if len(scores[(task, t)]) > 1 else 0.0 for t in titles]
        axis.errorbar(x, means, yerr=spreads, marker="o", capsize=3, label=task)
    if values is None:
        axis.set_xticks(x, [t[len(group) + 1:] for t in titles], rotation=30, ha="right", fontsize=7)
    else:
        axis.set_xticks(x)
        axis.set_xlabel(titles[0][len(group) + 1:].split("=", 1)[0])
    axis.set_ylabel(f"test {metric} (%)")
    axis.set_title(f"{group}: every grid point", fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("group", help="the grid group: the label of the config entry that had the grid")
    parser.add_argument("--metric", default="accuracy")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--out", type=Path, help="PREFIX of PREFIX.md / PREFIX.png (default RUN_DIR/<group>-curve)")
    args = parser.parse_args(argv)
    source = args.run_dir / "records.json"
    if not source.is_file():
        print(f"grid_curve: {source}: not found; expected a finished run folder "
              "(resume an interrupted one with textmtl run CONFIG --resume RUN_DIR)", file=sys.stderr)
        return 2
    try:
        records = json.loads(source.read_text())
        titles, tasks, scores = curve_table(records, args.group, args.metric, args.split)
    except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
        print(f"grid_curve: {source}: {error}", file=sys.stderr)
        return 2
    prefix = args.out or args.run_dir / f"{args.group}-curve"
    text = markdown(titles, tasks, scores, args.group, args.metric, args.split, args.run_dir)
    prefix.with_suffix(".md").write_text(text)
    plot(titles, tasks, scores, args.group, args.metric, prefix.with_suffix(".png"))
    print(text)
    print(f"written: {prefix.with_suffix('.md')}, {prefix.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
