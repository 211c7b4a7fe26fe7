"""The simple baselines of an experiment config, alone: what a user tries before any MTL.

Runs the config's ``baselines`` (TF-IDF logistic regressions, each over its own vocabulary of
every word 1-2-gram, C chosen on dev; ``textmtl/baselines.py``) on the config's tasks and
writes their dev and test accuracy per task with the average, in seconds rather than the hours
of the config's trainings.

Usage:
    TEXTMTL_DATA_DIR=../shared/data python scripts/baselines.py configs/fdu_ncmtl_14.yaml \\
        [--set data.fdu_mtl.domains=null] [--output results/baselines/NAME.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from textmtl.baselines import run_baseline
from textmtl.config import load_config
from textmtl.errors import ConfigError
from textmtl.experiment import load_experiment_tasks

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", type=Path, default=None,
                        help="default: results/baselines/<config name>.json")
    args = parser.parse_args()
    try:
        config = load_config(args.config, args.set)
        if not config.baselines:
            raise ConfigError(f"{args.config}: 'baselines' is empty; nothing to run")
        tasks = [t for t in load_experiment_tasks(config, args.data_dir) if t.kind == "classification"]
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = {"command": "python scripts/baselines.py " + " ".join(sys.argv[1:]),
              "config": config.name, "baselines": {}}
    for name in config.baselines:
        t0 = time.perf_counter()
        per_task = run_baseline(name, tasks)
        seconds = time.perf_counter() - t0
        average = float(np.mean([r["test"]["accuracy"] for r in per_task.values()]))
        result["baselines"][name] = {
            "seconds": round(seconds, 1), "test_accuracy_average": round(average, 4),
            "tasks": {task: {"C": r["C"], "features": r["features"],
                             "dev_accuracy": round(r["dev"]["accuracy"], 4),
                             "test_accuracy": round(r["test"]["accuracy"], 4)}
                      for task, r in per_task.items()}}
        print(f"{name}: mean test accuracy {average * 100:.2f} over {len(per_task)} tasks ({seconds:.0f} s)")
    output = args.output or ROOT / "results" / "baselines" / f"{config.name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(result, indent=1) + "\n")
    temporary.replace(output)
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
