"""Time training steps of Zhang et al. (2017)'s generalized recurrent model, batched vs naive.

The multi-domain scenario of the paper (Blitzer MDSD: books, dvd, electronics, kitchen; Table 2:
word vectors d = 300, LSTM hidden n = 100, SGD with learning rate 0.1 and L2 weight 1e-5),
trained on collections of the ``task_oriented`` sampler (Algorithm 1, n0 = 2, oriented on
books; ``--batch-size`` collections per step, the paper's SGD takes one). Systems
(``generalized_recurrent`` entries, each built from the same seed):

* ``independent``: coupling and fusions off, i.e. K independent peephole LSTMs;
* ``coupling``: Coupling Layers only (Eqs. 14-15);
* ``fusions``: Local and Global Fusion Layers only (Eqs. 16-20);
* ``full``: everything (the paper's model).

Each system runs twice, ``fused: true`` (the batched recurrence: one input projection for all
steps and tasks, one ``bmm`` per step for all K Single Layers, all fusion layers and directions
in one recurrence) and ``fused: false`` (the naive reference: a Python loop over steps, tasks
and pairs), on the SAME steps in one process: every step each model takes the trainer's own
``train_step`` (batch building, forward, task losses, the weighting's backward, clipping, the
optimiser step) in an order that rotates from step to step, so machine load slows all alike.
A fused model and its naive twin start from the same weights and see the same batches, so
their losses must agree (the largest difference is printed and recorded). Not timed:
featurisation, planning, one warm-up step per model.

Reported: median seconds per step of every model, seconds per epoch extrapolated from it
(n0 * N_books / batch steps; EXTRAPOLATED, not a full epoch), the ratios naive / fused per
system (the speed-up of the batched recurrence) and system / independent (fused; the cost of
the interactions).

Usage (the real measurement; not yet timed, expect tens of minutes for the naive models on 2
cores; run it alone):
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/generalized_recurrent_epoch.py --steps 20
A smoke run (a few reviews per domain, short texts; not a measurement):
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/generalized_recurrent_epoch.py \\
        --rows 16 --steps 2 --batch-size 4 --max-length 30 --output /tmp/gr_smoke.json

Writes ``benchmarks/results/generalized_recurrent_epoch.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.datasets import load_tasks
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.data.tasks import Split
from textmtl.encoders import ENCODERS
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.runtime import seed_everything
from textmtl.training.step import build_optimizer, train_step
from textmtl.weighting import WEIGHTINGS

RESULT = Path(__file__).resolve().parent / "results" / "generalized_recurrent_epoch.json"
DOMAINS = ["books", "dvd", "electronics", "kitchen"]
OFF = {"coupling": False, "local_fusion": False, "global_fusion": False}
SYSTEMS = {
    "independent": OFF,
    "coupling": {**OFF, "coupling": True},
    "fusions": {**OFF, "local_fusion": True, "global_fusion": True},
    "full": {},
}


class Run:
    """One model, its optimiser and its step, as the trainer sets them up."""

    def __init__(self, model, data: MultiTaskData, args) -> None:
        self.model = model.train()
        self.data = data
        self.weighting = WEIGHTINGS.build("fixed", data.task_names)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(model.param_groups(), "sgd", args.lr,
                                         weight_decay=args.weight_decay)
        self.clip_norm = args.clip_norm

    def step(self, parts) -> tuple[float, float]:
        start = time.perf_counter()
        # the batch is built inside the timed step, as the trainer does
        batch = self.data.batch("train", parts, collections=True)
        losses = train_step(self.model, self.weighting, [batch], self.optimizer, self.parameters,
                            self.clip_norm)
        return time.perf_counter() - start, float(np.mean(list(losses.tasks.values())))


def cut(tasks, rows: int | None):
    """The tasks with only ``rows`` reviews per split, a seeded random subset (the loader
    gives each split sorted by label)."""
    if not rows:
        return tasks

    def short(split: Split) -> Split:
        keep = np.random.default_rng(0).permutation(len(split.texts))[:rows]
        return Split([split.texts[i] for i in keep], [split.labels[i] for i in keep])

    return [replace(t, train=short(t.train), dev=short(t.dev), test=short(t.test)) for t in tasks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after one warm-up)")
    parser.add_argument("--rows", type=int, default=None,
                        help="keep this many reviews per split and domain (smoke runs; default: all)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--batch-size", type=int, default=32, help="collections per step")
    parser.add_argument("--max-length", type=int, default=400, help="tokens kept per review")
    parser.add_argument("--embedding-dim", type=int, default=300)
    parser.add_argument("--hidden-dim", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--clip-norm", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--data-dir", default=None, help="else TEXTMTL_DATA_DIR")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    tasks = cut(load_tasks("blitzer", {"domains": DOMAINS}, args.data_dir), args.rows)
    featurizer = FEATURIZERS.build("tokens", params={"max_length": args.max_length})
    data = MultiTaskData.build(tasks, featurizer)
    lengths = data.tables["train"].lengths
    print(f"{len(tasks)} tasks, {data.train_sizes()} training reviews (mean {lengths.mean():.0f} "
          f"tokens after the cut at {args.max_length}), vocabulary {data.spec.size}; featurized in "
          f"{time.perf_counter() - t0:.1f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("bilstm", data.spec)  # picks the token features only
    runs, entries = {}, {}
    for system in args.systems:
        for fused in (True, False):
            name = f"{system}/{'fused' if fused else 'naive'}"
            entries[name] = {"name": "generalized_recurrent", **SYSTEMS[system], "fused": fused,
                             "embedding_dim": args.embedding_dim, "hidden_dim": args.hidden_dim}
            seed_everything(args.seed)  # a fused model and its naive twin: the same weights
            model = SHARING.build("generalized_recurrent", specs, factory,
                                  params={k: v for k, v in entries[name].items() if k != "name"})
            runs[name] = Run(model, data, args)
            print(f"  {name}: {sum(p.numel() for p in model.parameters()):,} parameters")

    rng = seed_everything(args.seed)
    sampler = SAMPLERS.build("task_oriented", data.task_names,
                             params={"oriented_task": "books", "upsampling_coefficient": 2})
    plan = sampler.plan_epoch(data.train_sizes(), args.batch_size, rng)
    steps_per_epoch = len(plan)
    steps = [[(d.task, d.rows) for d in step] for step in plan[: args.steps + 1]]
    warm_up, timed = steps[0], steps[1:]
    for run in runs.values():  # warm-up (thread pools, allocator): one untimed step each
        run.step(warm_up)

    seconds = {name: [] for name in runs}
    losses = {name: [] for name in runs}
    order = list(runs)
    for index, parts in enumerate(timed):
        shift = index % len(order)  # rotate who goes first
        for name in order[shift:] + order[:shift]:
            s, loss = runs[name].step(parts)
            seconds[name].append(s)
            losses[name].append(loss)
        print(f"step {index + 1}/{len(timed)}: " + "  ".join(
            f"{n} {seconds[n][-1]:.3f} s" for n in runs), flush=True)

    median = {n: statistics.median(v) for n, v in seconds.items()}
    naive_over_fused = {s: round(median[f"{s}/naive"] / median[f"{s}/fused"], 3) for s in args.systems}
    over_independent = {s: round(median[f"{s}/fused"] / median["independent/fused"], 3)
                        for s in args.systems if "independent" in args.systems and s != "independent"}
    loss_gap = {s: max(abs(a - b) for a, b in zip(losses[f"{s}/fused"], losses[f"{s}/naive"]))
                for s in args.systems}
    print("median s/step: " + ", ".join(f"{n} {v:.4f}" for n, v in median.items()))
    print("naive / fused: " + ", ".join(f"{s} {v:.2f}" for s, v in naive_over_fused.items()))
    if over_independent:
        print("fused system / independent: " + ", ".join(f"{s} {v:.2f}" for s, v in over_independent.items()))
    print("largest |loss fused - loss naive| per system: "
          + ", ".join(f"{s} {v:.2e}" for s, v in loss_gap.items()))
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "settings": {"dataset": "blitzer", "domains": DOMAINS, "train_reviews": data.train_sizes(),
                     "max_length": args.max_length, "mean_tokens": round(float(lengths.mean()), 1),
                     "sampler": {"name": "task_oriented", "oriented_task": "books",
                                 "upsampling_coefficient": 2},
                     "batch_size": args.batch_size, "optimizer": "sgd", "lr": args.lr,
                     "weight_decay": args.weight_decay, "clip_norm": args.clip_norm,
                     "timed_steps": len(timed), "smoke_run": bool(args.rows), "seed": args.seed,
                     "methods": entries},
        "seconds_per_step": {n: [round(s, 5) for s in v] for n, v in seconds.items()},
        "median_seconds_per_step": {n: round(v, 5) for n, v in median.items()},
        "steps_per_epoch": steps_per_epoch,
        "extrapolated_seconds_per_epoch": {n: round(v * steps_per_epoch, 2) for n, v in median.items()},
        "ratios": {"naive/fused": naive_over_fused, "fused system/independent": over_independent},
        "largest_loss_difference_fused_vs_naive": {s: float(f"{v:.3e}") for s, v in loss_gap.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
