"""Time the meta-study's engine against the straightforward PyTorch loop, on the same 20 pairs.

Both engines train the study's models (10,000 -> 100 -> 100 -> 2 TF-IDF MLPs, Adam lr 1e-3, batch
32, the real 20 Newsgroups data built as ``textmtl study 20ng`` builds it) from the same initial
weights on the same batches, in this one process, one torch thread each:

* reference: ``textmtl.meta.reference.ReferenceEngine`` -- ``nn.Linear`` + ReLU on a densified
  batch, autograd, ``torch.optim.Adam(fused=True)``;
* ours: ``textmtl.meta.engine.SparseMLPEngine`` -- embedding-bag forward over the batch's words,
  hand-written backward, one fused Adam call over the trained rows.

For each of the 20 pairs of ``textmtl study 20ng --quick`` (RELATED problem, seeded choice) it
trains the main task alone and the main + auxiliary joint model with each engine, alternating
which engine goes first, and records wall time, the mean test F1 of the main task (single- and
multi-task) under each engine, and the loss agreement over the first 50 steps of the first run.

Usage:
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/meta_engine.py [--epochs 30] [--pairs 20]

Writes ``benchmarks/results/meta_engine.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from textmtl.data.store import locate
from textmtl.meta.corpus import build_corpus
from textmtl.meta.engine import SparseMLPEngine, TrainSettings
from textmtl.meta.reference import ReferenceEngine
from textmtl.meta.study import select_pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs of every run (the study: 150/100)")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "meta_engine.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    corpus = build_corpus(locate("newsgroups", args.data_dir).path)
    pairs = select_pairs("related", args.pairs)
    settings = TrainSettings(epochs=args.epochs, eval_every=0)
    engines = {"reference": ReferenceEngine(), "ours": SparseMLPEngine()}
    seconds = {name: 0.0 for name in engines}
    steps = {name: 0 for name in engines}
    f1 = {name: {"single": [], "multi": []} for name in engines}
    first_losses: dict[str, list[float]] = {}
    for i, (main_task, aux_task) in enumerate(pairs):
        main_arrays = corpus.arrays.task(*main_task)
        aux_arrays = corpus.arrays.task(*aux_task)
        order = list(engines) if i % 2 == 0 else list(engines)[::-1]
        for name in order:
            for kind, tasks in (("single", [main_arrays]), ("multi", [main_arrays, aux_arrays])):
                losses: list[float] = []
                start = time.perf_counter()
                result = engines[name].train(tasks, settings, seed=i, step_losses=losses)
                seconds[name] += time.perf_counter() - start
                steps[name] += result.steps
                f1[name][kind].append(result.test_f1[main_arrays.name][args.epochs])
                if i == 0 and kind == "multi":
                    first_losses[name] = losses[:50]
        print(f"pair {i + 1}/{len(pairs)}: " + ", ".join(f"{n} {seconds[n]:.1f} s" for n in engines),
              file=sys.stderr, flush=True)
    ref, ours = np.array(first_losses["reference"]), np.array(first_losses["ours"])
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/meta_engine.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "pairs": len(pairs), "epochs": args.epochs, "runs_per_engine": 2 * len(pairs),
        "seconds": {n: round(s, 2) for n, s in seconds.items()},
        "ms_per_step": {n: round(1000 * seconds[n] / steps[n], 3) for n in engines},
        "speedup": round(seconds["reference"] / seconds["ours"], 2),
        "mean_f1": {n: {k: round(float(np.mean(v)), 4) for k, v in f1[n].items()} for n in engines},
        "max_abs_f1_difference_of_means": round(max(abs(np.mean(f1["ours"][k]) - np.mean(f1["reference"][k]))
                                                    for k in ("single", "multi")), 5),
        "max_relative_loss_difference_first_50_steps": float(np.max(np.abs(ours - ref) / np.abs(ref))),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
