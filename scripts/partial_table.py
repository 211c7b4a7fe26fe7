"""Mean ± std over the finished seeds of every method of a run folder, finished or not.

A long table (the sluice ablation) can span sessions; this reads each
``<method>/seed-*/metrics.json`` that exists and prints one Markdown row per method with the
number of seeds behind it, so a partial table is reported as partial, never padded.

    python scripts/partial_table.py RUN_DIR conll2000_chunk:span_f1 conll2000_chunk:accuracy \
        conll2000_pos:accuracy [--split test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("columns", nargs="+", help="TASK:METRIC, e.g. conll2000_chunk:span_f1")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        print(f"partial_table: {args.run_dir}: not a run folder", file=sys.stderr)
        return 2
    columns = [c.split(":", 1) for c in args.columns]
    if any(len(c) != 2 for c in columns):
        print(f"partial_table: columns must be TASK:METRIC, got {args.columns}", file=sys.stderr)
        return 2
    print("| method | seeds | " + " | ".join(f"{t} {m}" for t, m in columns) + " |")
    print("| --- | --- |" + " --- |" * len(columns))
    for method in sorted(p for p in args.run_dir.iterdir() if p.is_dir()):
        runs = sorted(method.glob("seed-*/metrics.json"))
        if not runs:
            continue
        metrics = [json.loads(r.read_text())[args.split] for r in runs]
        cells = []
        for task, metric in columns:
            values = [100 * m[task][metric] for m in metrics]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.2f} ± {spread:.2f}")
        seeds = ",".join(r.parent.name.removeprefix("seed-") for r in runs)
        print(f"| {method.name} | {seeds} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
