"""The sluice paper's Figure 2: how much the target network reads from a Random or Copy auxiliary.

For every training-set size n and scenario (Random, Copy), ``configs/sluice_random_copy.yaml``
is trained once per seed (each (scenario, n) its own run folder under ``--output-dir``, named
``sluice_random_copy-<scenario>-n<n>-<stamp>``); a finished folder is reused, an interrupted one
resumed, so the figure is rebuilt from the folders without training again. From each run's
``mixing.json`` (the α learned after every BiLSTM layer), the relative importance of the
auxiliary task B for the target A is

    α_BA / α_AA = sum of α[(A, s), (B, t)] / sum of α[(A, s), (A, t)]   (s, t over subspaces)

per layer; the figure shows its mean over the layers against n (and each layer thinly).

Usage:
    TEXTMTL_DATA_DIR=../shared/data python scripts/sluice_random_copy.py [--sizes 100 250 ...]
        [--seeds 1] [--workers 2] [--max-epochs 30] [--output-dir results/runs]
        [--out results/sluice-random-copy] [--figure docs/figures/sluice-random-copy.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "sluice_random_copy.yaml"
SCENARIOS = ("random", "copy")
#: up to the whole training part (7,936 sentences once 1,000 are dev)
SIZES = (100, 250, 500, 1000, 2000, 4000, 7936)


def relative_importance(mixing: dict, target: str, auxiliary: str) -> list[float]:
    """α_BA / α_AA after every layer of a sluice run's ``mixing.json``."""
    ratios = []
    for layer in mixing["alpha"]:
        labels, alpha = layer["labels"], np.asarray(layer["values"])
        # rows: the inputs of the target's subspaces; columns: whose outputs they read
        own = [i for i, label in enumerate(labels) if label.rpartition(":")[0] == target]
        other = [i for i, label in enumerate(labels) if label.rpartition(":")[0] == auxiliary]
        ratios.append(float(alpha[np.ix_(own, other)].sum() / alpha[np.ix_(own, own)].sum()))
    return ratios


def _folder(output_dir: Path, name: str) -> tuple[Path | None, bool]:
    """The newest run folder of ``name``: (folder, finished), or (None, False)."""
    found = sorted(output_dir.glob(f"{name}-*"), key=lambda p: p.stat().st_mtime)
    finished = [p for p in found if not p.name.endswith(".partial") and (p / "meta.json").exists()]
    if finished:
        return finished[-1], True
    partial = [p for p in found if p.name.endswith(".partial")]
    return (partial[-1], False) if partial else (None, False)


def run_point(point: dict, _shared: object = None) -> str:
    """Train (or resume) one (scenario, n) point; returns its finished run folder."""
    from textmtl.config import load_config
    from textmtl.experiment import run_experiment

    output_dir = Path(point["output_dir"])
    name = f"sluice_random_copy-{point['scenario']}-n{point['n']}"
    folder, finished = _folder(output_dir, name)
    if finished:
        return str(folder)
    config = load_config(CONFIG, [f"name={name}", f"output_dir={output_dir}",
                                  f"data.conll2000.auxiliary={point['scenario']}",
                                  f"data.conll2000.train_sentences={point['n']}",
                                  f"seeds={point['seeds']}", f"training.max_epochs={point['max_epochs']}",
                                  "training.progress=false"])
    result = run_experiment(config, log=lambda line: print(f"[{name}] {line}", flush=True), resume=folder)
    return str(result.run_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--workers", type=int, default=2, help="points trained at once, a process each")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--output-dir", default="results/runs")
    parser.add_argument("--out", default="results/sluice-random-copy")
    parser.add_argument("--figure", default="docs/figures/sluice-random-copy.png")
    args = parser.parse_args(argv)
    from textmtl.sweep import LocalExecutor

    started = time.perf_counter()
    points = [{"scenario": s, "n": n, "seeds": args.seeds, "max_epochs": args.max_epochs,
               "output_dir": args.output_dir} for n in sorted(args.sizes, reverse=True) for s in SCENARIOS]
    folders = {}
    for point, folder in LocalExecutor(args.workers).map(run_point, points, None):
        folders[point["scenario"], point["n"]] = Path(folder)
        print(f"{point['scenario']} n={point['n']}: {folder}", flush=True)
    rows = []
    for (scenario, n), folder in sorted(folders.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for seed in args.seeds:
            mixing = json.loads((folder / "sluice" / f"seed-{seed}" / "mixing.json").read_text())
            metrics = json.loads((folder / "sluice" / f"seed-{seed}" / "metrics.json").read_text())
            per_layer = relative_importance(mixing, "conll2000_pos", f"conll2000_pos_{scenario}")
            rows.append({"scenario": scenario, "n": n, "seed": seed, "per_layer": per_layer,
                         "mean": float(np.mean(per_layer)), "run": str(folder),
                         "test_pos_accuracy": metrics["test"]["conll2000_pos"].get("accuracy")})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python scripts/sluice_random_copy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "ratios.json").write_text(json.dumps({"command": command.strip(), "rows": rows,
                                                 "seconds_this_call": round(time.perf_counter() - started, 1)},
                                                indent=2))
    _figure(rows, Path(args.figure))
    for row in rows:
        print(f"{row['scenario']:6s} n={row['n']:5d} seed {row['seed']}: α_BA/α_AA = {row['mean']:.3f} "
              f"(layers {', '.join(f'{v:.3f}' for v in row['per_layer'])})")
    return 0


def _figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for scenario, colour in zip(SCENARIOS, ("tab:red", "tab:blue")):
        mine = [r for r in rows if r["scenario"] == scenario]
        sizes = sorted({r["n"] for r in mine})
        means = [np.mean([r["mean"] for r in mine if r["n"] == n]) for n in sizes]
        ax.plot(sizes, means, "o-", color=colour, label=scenario.capitalize())
        layers = len(mine[0]["per_layer"]) if mine else 0
        for layer in range(layers):
            ax.plot(sizes, [np.mean([r["per_layer"][layer] for r in mine if r["n"] == n]) for n in sizes],
                    "-", color=colour, alpha=0.25, linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training sentences n")
    ax.set_ylabel("α_BA / α_AA (mean over layers; thin: each layer)")
    ax.set_title("Relative importance of the auxiliary task (CoNLL-2000 POS)")
    ax.axhline(1.0, color="grey", linewidth=0.5, linestyle=":")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
