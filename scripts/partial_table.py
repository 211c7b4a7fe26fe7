"""Mean ± std over the finished seeds of every method of a run folder, finished or not.

A long table (the sluice ablation, the NCMTL table) can span sessions; this reads each
finished model's ``metrics.json`` that exists and prints one Markdown row per method with the
seeds behind it, so a partial table is reported as partial, never padded. A method trained
together has ``<method>/seed-N/metrics.json``; one trained per task (single-task rows,
``train_tasks: oriented``) has ``<method>/seed-N/<task>/metrics.json``, each task's score read
from its own model.

    python scripts/partial_table.py RUN_DIR conll2000_chunk:span_f1 conll2000_chunk:accuracy \
        conll2000_pos:accuracy [--split test]
    python scripts/partial_table.py RUN_DIR --average accuracy     # the mean over all tasks

``--average METRIC`` adds the mean over the tasks of each seed, over the seeds in which every
task of the run has finished (every task any finished model of the run reports).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def seed_scores(method: Path, split: str) -> dict[str, dict[str, dict]]:
    """seed folder name -> task -> that task's metrics, from every finished model."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(method.glob("seed-*/metrics.json")):
        out.setdefault(path.parent.name, {}).update(json.loads(path.read_text())[split])
    for path in sorted(method.glob("seed-*/*/metrics.json")):
        task = path.parent.name
        metrics = json.loads(path.read_text())[split]
        if task in metrics:  # its own model's score of it
            out.setdefault(path.parent.parent.name, {})[task] = metrics[task]
    return out


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {spread:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("columns", nargs="*", help="TASK:METRIC, e.g. conll2000_chunk:span_f1")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--average", metavar="METRIC", help="also the mean over all tasks of each seed")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"partial_table: {args.run_dir}: not a run folder", file=sys.stderr)
        return 2
    columns = [c.split(":", 1) for c in args.columns]
    if any(len(c) != 2 for c in columns):
        print(f"partial_table: columns must be TASK:METRIC, got {args.columns}", file=sys.stderr)
        return 2
    if not columns and not args.average:
        print("partial_table: give TASK:METRIC columns or --average METRIC", file=sys.stderr)
        return 2
    methods = {m.name: seed_scores(m, args.split) for m in sorted(p for p in args.run_dir.iterdir() if p.is_dir())}
    methods = {name: seeds for name, seeds in methods.items() if seeds}
    every_task = sorted({task for seeds in methods.values() for scores in seeds.values() for task in scores})
    header = [f"{t} {m}" for t, m in columns] + ([f"average {args.average} ({len(every_task)} tasks)"]
                                                 if args.average else [])
    print("| method | seeds | " + " | ".join(header) + " |")
    print("| --- | --- |" + " --- |" * len(header))
    for name, seeds in methods.items():
        cells = [_cell([100 * scores[task][metric] for scores in seeds.values() if task in scores])
                 for task, metric in columns]
        complete = sorted(s for s, scores in seeds.items() if set(every_task) <= set(scores))
        if args.average:
            cells.append(_cell([100 * statistics.mean(seeds[s][t][args.average] for t in every_task)
                                for s in complete]))
        shown = ",".join(s.removeprefix("seed-") for s in sorted(seeds))
        if args.average and len(complete) < len(seeds):
            shown += f" (all tasks: {','.join(s.removeprefix('seed-') for s in complete) or 'none'})"
        print(f"| {name} | {shown} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
