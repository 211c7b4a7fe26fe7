"""Time training epochs of hard sharing, cross-stitch and sluice networks on CoNLL-2000, side by side.

The three systems of ``configs/conll2000_sluice_table3.yaml`` (the sluice paper's tagger:
3-layer BiLSTM, 100 per direction, 64-d words, 100-d character features, MLP heads of 100;
SGD, batch 32, a task sampled uniformly per step) are built from the same seed and trained on
the SAME batches in one process: every step each model takes its own training step on the
step's rows (the trainer's own ``train_step``: batch building, forward, task losses, penalties,
the weighting's backward, clipping, the optimiser step), in an order that alternates from step
to step, so load on the shared machine slows all three alike. Each epoch's seconds are the sum
of its step times; featurisation and evaluation are not timed. The result records seconds per
epoch and the ratios cross_stitch / hard and sluice / hard (the paper: sluice networks train
"only 5-7 %" slower than hard sharing; our target is sluice / hard <= 1.10).

What the sluice forward does to be cheap (``textmtl/sharing/sluice.py``): the embedding stage
(word embeddings and the character BiLSTM) runs once for both task networks; per BiLSTM layer
each task network runs once on the whole batch (two calls: their weights differ), the α mixing
of all (task, subspace) pairs is one matrix product, and β, the choice of each row's own
network and the heads are batched over tasks. What it cannot avoid: two task networks are two
BiLSTM stacks, so on rows of one task per step a sluice step does about twice hard sharing's
LSTM work (the paper's DyNet code runs per sentence, where graph building dominates).

Usage (the real measurement, ~15-30 min on 2 cores):
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/sluice_epoch.py --epochs 2
A smoke run (a few hundred sentences, not a measurement):
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/sluice_epoch.py --epochs 1 \\
        --sentences 200 --output /tmp/sluice_epoch_smoke.json

Writes ``benchmarks/results/sluice_epoch.json`` (or ``--output``).
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

from textmtl.config import load_config
from textmtl.data.samplers import SAMPLERS, TaskStreams
from textmtl.data.tasks import Split
from textmtl.experiment import bucketed_stream_order, build_model, featurize, load_experiment_tasks
from textmtl.training.runtime import seed_everything
from textmtl.training.step import build_optimizer, train_step
from textmtl.weighting import WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "conll2000_sluice_table3.yaml"
RESULT = Path(__file__).resolve().parent / "results" / "sluice_epoch.json"
SYSTEMS = ("hard", "cross_stitch", "sluice")


class Run:
    """One system's model, optimiser and step, as the trainer sets them up."""

    def __init__(self, model, data, config) -> None:
        self.model = model.train()
        self.data = data
        self.training = config.training
        self.weighting = WEIGHTINGS.build(config.weighting.name, data.task_names,
                                          params=config.weighting.params, where="weighting")
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(model.param_groups(), self.training.optimizer,
                                         self.training.lr, self.training.momentum,
                                         self.training.weight_decay)

    def step(self, parts) -> tuple[float, float]:
        start = time.perf_counter()
        # the batch is built inside the timed step, as the trainer does
        losses = train_step(self.model, self.weighting, [self.data.batch("train", parts)],
                            self.optimizer, self.parameters, self.training.clip_norm)
        return time.perf_counter() - start, float(np.mean(list(losses.tasks.values())))


def cut(tasks, sentences: int | None):
    """The tasks with only their first ``sentences`` training (and dev/test) sentences."""
    if not sentences:
        return tasks
    short = lambda split: Split(split.texts[:sentences], split.labels[:sentences])
    return [replace(t, train=short(t.train), dev=short(t.dev), test=short(t.test)) for t in tasks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sentences", type=int, default=None,
                        help="keep this many sentences per split (smoke runs; default: all)")
    parser.add_argument("--sampler", default=None, help="override the config's sampler (e.g. every_task)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--data-dir", default=None, help="else TEXTMTL_DATA_DIR")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = load_config(CONFIG, [f"sampler={args.sampler}"] if args.sampler else None)
    t0 = time.perf_counter()
    tasks = cut(load_experiment_tasks(config, args.data_dir), args.sentences)
    data = featurize(config, tasks)
    print(f"{len(tasks)} tasks, {data.train_sizes()} training sentences, vocabulary "
          f"{data.spec.size}; featurized in {time.perf_counter() - t0:.1f} s; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")

    methods = {m.title: m for m in config.methods}
    runs = {}
    for name in SYSTEMS:
        model = build_model(methods[name], config.encoder, data, args.seed)
        runs[name] = Run(model, data, config)
        print(f"  {name}: {sum(p.numel() for p in model.parameters()):,} parameters")

    rng = seed_everything(args.seed)
    sampler = SAMPLERS.build(config.sampler.name, data.task_names, params=config.sampler.params,
                             where="sampler")
    batch_size = config.training.batch_size
    streams = TaskStreams(data.train_sizes(), rng, bucketed_stream_order(data, batch_size))

    def epoch_plan():
        plan = sampler.plan_epoch(data.train_sizes(), batch_size, rng)
        return [[(k, streams.take(k, n)) for k, n, _ in parts] for parts in plan]

    plans = [epoch_plan() for _ in range(args.epochs)]
    for run in runs.values():  # warm-up (thread pools, allocator): one untimed step each
        run.step(plans[-1][-1])

    epochs = {name: [] for name in runs}
    order = list(runs)
    for epoch, plan in enumerate(plans, start=1):
        seconds = {name: 0.0 for name in runs}
        losses = {name: [] for name in runs}
        for index, parts in enumerate(plan):
            shift = index % len(order)  # rotate who goes first
            for name in order[shift:] + order[:shift]:
                s, loss = runs[name].step(parts)
                seconds[name] += s
                losses[name].append(loss)
        for name in runs:
            epochs[name].append({"epoch": epoch, "seconds": round(seconds[name], 4),
                                 "mean_train_loss": round(float(np.mean(losses[name])), 4)})
        print(f"epoch {epoch} ({len(plan)} steps): " + "  ".join(
            f"{n} {seconds[n]:.2f} s (loss {np.mean(losses[n]):.4f})" for n in runs))

    median = {n: statistics.median(e["seconds"] for e in epochs[n]) for n in runs}
    ratios = {f"{n}/hard": round(median[n] / median["hard"], 3) for n in runs if n != "hard"}
    print("median s/epoch: " + ", ".join(f"{n} {median[n]:.2f}" for n in runs)
          + "; ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
          + " (target sluice/hard <= 1.10)")
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "settings": {"config": str(CONFIG.relative_to(ROOT)), "sampler": config.sampler.name,
                     "batch_size": batch_size, "train_sentences": data.train_sizes(),
                     "smoke_run": bool(args.sentences), "seed": args.seed,
                     "methods": {n: methods[n].as_dict() for n in runs}},
        "epochs": epochs,
        "median_seconds_per_epoch": {n: round(v, 4) for n, v in median.items()},
        "ratios": ratios,
        "target": "sluice/hard <= 1.10 (the paper: 5-7 % more training time than hard sharing)",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
