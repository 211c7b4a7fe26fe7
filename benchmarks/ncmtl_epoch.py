"""Time training steps of HardShare, ASP-MTL and NCMTL (HAN, 14 FDU-MTL domains), side by side.

The three HAN systems of ``configs/fdu_ncmtl_14.yaml`` (methods labelled ``hard_share``:
cluster layers 32, 32, 16 unclustered; ``asp_mtl``: shared and private HANs, adversarial and
difference losses; ``ncmtl``: cluster layers with 3, 5, 10 clusters) are built from the same
seed on one featurized copy of the 14 domains (the experiment's own ``featurize`` and
``build_model``) and trained on the SAME batches in one process, as the trainer sets them up
(optimiser from ``param_groups()`` plus the weighting's group, clipping list, one
``TrainState`` each with the optimiser and a seeded generator). Every step each system takes
its own trainer step on the step's rows, in an order that rotates from step to step, so load
on the shared machine slows all of them alike:

* **timed as the step**: building the batch, ``textmtl.training.step.train_step`` (forward,
  task losses, extra losses and penalties, the weighting's backward, clipping, the optimiser
  step), then the hooks the trainer calls after it, ``model.on_step_end(state)`` and
  ``weighting.on_step_end(state)``. The hooks are timed on their own as well: NCMTL's
  ``on_step_end`` is the per-step re-clustering (k-means of every cluster layer, weights and
  Adam moments replaced by their cluster means), reported as a share of NCMTL's step.
* **ASP-MTL's steps hold more rows**: its method entry has its own sampler (``every_task``
  with ``unlabelled_per_step: 16``), so each of its steps also reads 16 unlabelled reviews per
  domain (through the shared HAN, into the adversarial loss), drawn as the trainer draws them
  (the plan's ``source == "unlabelled"`` draws from the unlabelled streams). HardShare and
  NCMTL get the same step's labelled rows only (their sampler is the same ``every_task``
  without unlabelled rows, checked).
* **two phases**: ``--steps`` steps of all three systems with NCMTL unfrozen (re-clustering
  every step); then the epoch end the trainer runs (the LR scheduler and every system's
  ``on_epoch_end``, with ``state.epoch`` = NCMTL's ``freeze_after_epochs``, which freezes its
  layers to the cluster centres); then ``--steps`` more steps of ``hard_share`` and ``ncmtl``
  (ASP-MTL is not re-timed: nothing of it changes at the freeze). Each phase starts with one
  untimed warm-up step of every system in it.
* **not timed**: featurisation, planning and drawing the rows, evaluation, the epoch end.

Reported per phase and system: median seconds per step (total, ``train_step`` part, hooks),
seconds per epoch estimated as that median times the steps of a full epoch (``every_task``:
ceil(largest domain / 32); EXTRAPOLATED from the timed steps, not a full epoch), and the
ratios asp_mtl / hard_share and ncmtl / hard_share (ratio of the median steps; the median of
the per-step ratios on the same batch beside it). Targets (issue 12): ncmtl / hard_share
<= 1.15 before the freeze and <= 1.05 after it.

Usage (the real measurement, 14 domains; an estimate, not yet timed: 10-20 min on 2 idle
cores, featurisation included; run it alone):
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/ncmtl_epoch.py --steps 20
A smoke run (4 domains so NCMTL's first layer really clusters, 8 reviews per split; not a
measurement):
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/ncmtl_epoch.py --steps 2 \\
        --domains apparel baby books dvd --rows 8 --output /tmp/ncmtl_smoke.json

Writes ``benchmarks/results/ncmtl_epoch.json`` (or ``--output``).
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
from textmtl.data.batching import UNLABELLED
from textmtl.data.samplers import SAMPLERS, TaskStreams
from textmtl.data.tasks import Split
from textmtl.experiment import (bucketed_stream_order, build_model, data_key, featurize,
                                load_experiment_tasks)
from textmtl.training.runtime import resolve_device, seed_everything
from textmtl.training.state import TrainState
from textmtl.training.step import build_optimizer, train_step
from textmtl.weighting import WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "fdu_ncmtl_14.yaml"
RESULT = Path(__file__).resolve().parent / "results" / "ncmtl_epoch.json"
HARD, ASP, NCMTL = "hard_share", "asp_mtl", "ncmtl"
SYSTEMS = (HARD, ASP, NCMTL)
TARGETS = {"before_freeze": 1.15, "after_freeze": 1.05}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Run:
    """One system's model, weighting, optimiser, scheduler and TrainState, as ``train`` builds them."""

    def __init__(self, model, method, config, data, seed: int, device: torch.device) -> None:
        self.model = model.to(device).train()
        self.data = data
        self.device = device
        self.training = config.training
        self.loss_weights = method.loss_weights
        weighting = config.method_weighting(method)
        params = dict(weighting.params)
        if "weights" in params:  # as experiment.train_one: only the tasks trained here
            params["weights"] = {k: v for k, v in params["weights"].items() if k in data.task_names}
        self.weighting = WEIGHTINGS.build(weighting.name, data.task_names, params=params,
                                          where="weighting").to(device)
        self.parameters = [p for p in list(model.parameters()) + list(self.weighting.parameters())
                           if p.requires_grad]
        groups = model.param_groups() + [{"name": "weighting", "params": [
            p for p in self.weighting.parameters() if p.requires_grad]}]
        t = self.training
        self.optimizer = build_optimizer(groups, t.optimizer, t.lr, t.momentum, t.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=t.lr_decay)
        self.state = TrainState(epoch=1, generator=torch.Generator().manual_seed(seed),
                                rng=np.random.default_rng(seed), device=device,
                                optimizer=self.optimizer)

    def step(self, parts) -> tuple[float, float, float]:
        """One trainer step on ``parts``; (step seconds with hooks, hook seconds, mean task loss)."""
        synchronize(self.device)
        start = time.perf_counter()
        # the batch is built inside the timed step, as the trainer does
        batch = self.data.batch("train", parts).to(self.device)
        losses = train_step(self.model, self.weighting, [batch], self.optimizer, self.parameters,
                            self.training.clip_norm, self.loss_weights)
        state = self.state
        state.step += 1
        state.step_in_epoch += 1
        synchronize(self.device)
        hooks = time.perf_counter()
        self.model.on_step_end(state)
        self.weighting.on_step_end(state)
        synchronize(self.device)
        end = time.perf_counter()
        for name, value in {**losses.tasks, **losses.extras}.items():  # untimed bookkeeping
            state.record(name, value)
        return end - start, end - hooks, float(np.mean(list(losses.tasks.values())))

    def end_epoch(self, epoch: int, next_steps: int) -> None:
        """What the trainer does after epoch ``epoch`` (bar the evaluation), then starts the next."""
        self.scheduler.step()
        self.state.epoch = epoch
        self.model.on_epoch_end(self.state)
        self.weighting.on_epoch_end(self.state)
        self.state.epoch, self.state.step_in_epoch, self.state.steps_per_epoch = epoch + 1, 0, next_steps
        self.state.epoch_losses = {}


def cut(tasks, rows: int | None):
    """The tasks with only their first ``rows`` reviews in every split and in the unlabelled texts."""
    if not rows:
        return tasks
    short = lambda split: Split(split.texts[:rows], split.labels[:rows])
    return [replace(t, train=short(t.train), dev=short(t.dev), test=short(t.test),
                    unlabeled=None if t.unlabeled is None else t.unlabeled[:rows]) for t in tasks]


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 5), "mean": round(statistics.fmean(values), 5),
            "min": round(min(values), 5), "max": round(max(values), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps per phase (before and after NCMTL's freeze)")
    parser.add_argument("--domains", nargs="+", default=None,
                        help="FDU-MTL domains (default: the config's 14)")
    parser.add_argument("--rows", "--sentences", dest="rows", type=int, default=None,
                        help="keep this many reviews per split and unlabelled per domain (smoke "
                             "runs; default: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override, as textmtl run --set")
    parser.add_argument("--data-dir", default=None, help="else TEXTMTL_DATA_DIR")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    overrides = list(args.overrides)
    if args.domains:
        overrides.append(f"data.fdu_mtl.domains=[{', '.join(args.domains)}]")
    config = load_config(CONFIG, overrides)
    methods = {m.title: m for m in config.methods}
    missing = [n for n in SYSTEMS if n not in methods]
    if missing:
        sys.exit(f"{CONFIG.name} has no method labelled {', '.join(missing)}")
    keys = {data_key(config, methods[n]) for n in SYSTEMS}
    if keys != {data_key(config)}:
        sys.exit(f"{', '.join(SYSTEMS)} must read the experiment's own features (one featurized copy)")
    samplers = {n: config.method_sampler(methods[n]) for n in SYSTEMS}
    labelled_only = {**samplers[ASP].params, "unlabelled_per_step": 0}
    for name in (HARD, NCMTL):
        sampler = samplers[name]
        if sampler.name != samplers[ASP].name or \
                {"unlabelled_per_step": 0, **sampler.params} != labelled_only:
            sys.exit(f"{name}'s sampler {sampler.as_dict()} must be asp_mtl's "
                     f"{samplers[ASP].as_dict()} without unlabelled rows (same batches)")
    device = resolve_device(config.training.device)

    t0 = time.perf_counter()
    tasks = cut(load_experiment_tasks(config, args.data_dir), args.rows)
    data = featurize(config, tasks)
    print(f"{len(tasks)} domains, {sum(data.train_sizes())} training and "
          f"{sum(data.unlabelled_sizes())} unlabelled reviews, vocabulary {data.spec.size}; "
          f"featurized in {time.perf_counter() - t0:.1f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {device}", flush=True)

    runs = {}
    for name in SYSTEMS:
        model = build_model(methods[name], config.method_encoder(methods[name]), data, args.seed)
        runs[name] = Run(model, methods[name], config, data, args.seed, device)
        print(f"  {name}: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    ncmtl = runs[NCMTL].model
    freeze_epoch = getattr(ncmtl, "freeze_after_epochs", 0)
    if not freeze_epoch:
        sys.exit("ncmtl never freezes (freeze_after_epochs: 0); nothing to time after the freeze")

    # the batches: asp_mtl's sampler plans the steps (labelled and unlabelled draws); every row
    # is drawn once, from streams as the trainer builds them, and every system trains on it
    rng = seed_everything(args.seed)
    sampler = SAMPLERS.build(samplers[ASP].name, data.task_names, params=samplers[ASP].params,
                             where=f"methods.{ASP}.sampler")
    batch_size = config.training.batch_size
    streams = TaskStreams(data.train_sizes(), rng, bucketed_stream_order(data, batch_size))
    unlabelled_streams = TaskStreams(data.unlabelled_sizes(), rng)
    steps_per_epoch = len(sampler.plan_epoch(data.train_sizes(), batch_size,
                                             np.random.default_rng(0), data.unlabelled_sizes()))
    needed = 2 * (args.steps + 1)  # two phases, each with a warm-up step
    plan = []
    while len(plan) < needed:
        plan += sampler.plan_epoch(data.train_sizes(), batch_size, rng, data.unlabelled_sizes())
    steps = []
    for draws in plan[:needed]:
        parts = [(d.task, (unlabelled_streams if d.source == UNLABELLED else streams).take(d.task, d.rows),
                  d.source) for d in draws]
        steps.append({ASP: parts, HARD: [p for p in parts if p[2] != UNLABELLED]})
        steps[-1][NCMTL] = steps[-1][HARD]
    rows = {name: {"labelled": int(np.mean([sum(len(p[1]) for p in s[name] if p[2] != UNLABELLED)
                                            for s in steps])),
                   "unlabelled": int(np.mean([sum(len(p[1]) for p in s[name] if p[2] == UNLABELLED)
                                              for s in steps]))} for name in SYSTEMS}
    print(f"{steps_per_epoch} steps per epoch; rows per step: " + ", ".join(
        f"{n} {r['labelled']} labelled + {r['unlabelled']} unlabelled" for n, r in rows.items()),
        flush=True)
    for run in runs.values():
        run.state.steps_per_epoch = steps_per_epoch

    def timed(phase: str, names: tuple[str, ...], batches: list[dict]) -> dict:
        for name in names:  # warm-up (thread pools, allocator, new shapes): one untimed step each
            runs[name].step(batches[0][name])
        record = {name: {"step": [], "hook": [], "loss": []} for name in names}
        order = list(names)
        for index, batch in enumerate(batches[1:]):
            shift = index % len(order)  # rotate who goes first
            for name in order[shift:] + order[:shift]:
                seconds, hook, loss = runs[name].step(batch[name])
                record[name]["step"].append(seconds)
                record[name]["hook"].append(hook)
                record[name]["loss"].append(loss)
        print(f"{phase} ({len(batches) - 1} steps), median s/step: " + "  ".join(
            f"{n} {statistics.median(record[n]['step']):.3f} (hooks "
            f"{statistics.median(record[n]['hook']) * 1e3:.2f} ms)" for n in names), flush=True)
        return record

    half = args.steps + 1
    before = timed("before the freeze", SYSTEMS, steps[:half])
    for run in runs.values():  # the epoch end the trainer runs: NCMTL freezes here
        run.end_epoch(freeze_epoch, steps_per_epoch)
    epoch_report = ncmtl.cluster_report()["epochs"][-1]  # the re-clusterings of phase 1
    if not ncmtl.frozen:
        sys.exit(f"ncmtl did not freeze at the end of epoch {freeze_epoch}")
    counts = ncmtl.parameter_counts()
    print(f"ncmtl frozen: cluster layers store {sum(c['stored'] for c in counts):,} parameters "
          f"(were {sum(c['task_layers'] for c in counts):,})", flush=True)
    after = timed("after the freeze", (HARD, NCMTL), steps[half:])

    phases = {}
    for phase, record in (("before_freeze", before), ("after_freeze", after)):
        systems = {}
        for name, r in record.items():
            total, hook = r["step"], r["hook"]
            systems[name] = {
                "seconds_per_step": summary(total),
                "train_step_seconds": summary([s - h for s, h in zip(total, hook)]),
                "hook_seconds": summary(hook),
                "seconds_per_epoch_estimated": round(statistics.median(total) * steps_per_epoch, 3),
                "mean_train_loss": round(float(np.mean(r["loss"])), 4),
                "step_seconds": [round(s, 5) for s in total],
                "hook_seconds_per_step": [round(h, 6) for h in hook]}
        hard = record[HARD]["step"]
        ratios = {}
        for name in record:
            if name == HARD:
                continue
            ratios[f"{name}/{HARD}"] = {
                "of_median_steps": round(statistics.median(record[name]["step"])
                                         / statistics.median(hard), 3),
                "median_of_paired_steps": round(statistics.median(
                    a / b for a, b in zip(record[name]["step"], hard)), 3)}
        phases[phase] = {"systems": systems, "ratios": ratios}
    n_total, n_hook = before[NCMTL]["step"], before[NCMTL]["hook"]
    clustering = {
        "median_hook_seconds": round(statistics.median(n_hook), 6),
        "median_step_seconds": round(statistics.median(n_total), 5),
        "share_of_median_step": round(statistics.median(n_hook) / statistics.median(n_total), 4),
        "share_of_summed_steps": round(sum(n_hook) / sum(n_total), 4),
        "ncmtl_hook_after_freeze_median_seconds": round(statistics.median(after[NCMTL]["hook"]), 6),
        "reclusterings_before_freeze": epoch_report["clusterings"],  # warm-up step included
        "changed_tasks_before_freeze": epoch_report["changed_tasks"],
        "clustered_layers": [{"width": layer.output_dim, "clusters": layer.num_clusters,
                              "tasks": layer.num_tasks,
                              "reclusters": layer.num_clusters < layer.num_tasks}
                             for layer in ncmtl.cluster_layers]}
    if not any(entry["reclusters"] for entry in clustering["clustered_layers"]):
        clustering["note"] = ("every layer has at least as many clusters as tasks: nothing is "
                              "clustered (too few domains for a meaningful clustering cost)")
    verdict = {phase: {"ratio": phases[phase]["ratios"][f"{NCMTL}/{HARD}"]["of_median_steps"],
                       "target": f"<= {target}",
                       "met": phases[phase]["ratios"][f"{NCMTL}/{HARD}"]["of_median_steps"] <= target}
               for phase, target in TARGETS.items()}
    smoke = bool(args.rows) or len(tasks) < 14
    if smoke:
        print("SMOKE RUN (a cut of the data): the numbers below are not a measurement")
    print("ratios: " + "; ".join(
        f"{phase}: " + ", ".join(f"{k} {v['of_median_steps']:.3f} (paired {v['median_of_paired_steps']:.3f})"
                                 for k, v in phases[phase]["ratios"].items()) for phase in phases))
    print(f"ncmtl re-clustering: {clustering['median_hook_seconds'] * 1e3:.2f} ms per step, "
          f"{clustering['share_of_median_step'] * 100:.2f} % of its median step; targets: " + ", ".join(
              f"{p} {v['ratio']:.3f} {v['target']} ({'met' if v['met'] else 'NOT met'})"
              for p, v in verdict.items()))

    result = {
        "smoke_run": smoke,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}"] + sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": [round(v, 2) for v in os.getloadavg()],
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": str(device)},
        "settings": {
            "config": str(CONFIG.relative_to(ROOT)), "overrides": overrides,
            "domains": data.task_names, "train_reviews": data.train_sizes(),
            "unlabelled_reviews": data.unlabelled_sizes(),
            "smoke_run": smoke, "seed": args.seed,
            "timed_steps_per_phase": args.steps, "warm_up_steps_per_phase": 1,
            "batch_size_per_domain": batch_size, "steps_per_epoch": steps_per_epoch,
            "freeze_after_epochs": freeze_epoch, "encoder": config.encoder.as_dict(),
            "features": config.features,
            "methods": {n: methods[n].as_dict() for n in SYSTEMS},
            "samplers": {n: samplers[n].as_dict() for n in SYSTEMS},
            "rows_per_step": rows,
            "note": ("asp_mtl's steps hold more rows: its own sampler adds unlabelled reviews "
                     "per domain to every step (shared HAN and adversarial loss only); "
                     "hard_share and ncmtl train on the same step's labelled rows. A step's "
                     "seconds: batch building, train_step and the on_step_end hooks; "
                     "seconds_per_epoch_estimated = median step x steps_per_epoch "
                     "(extrapolated, not a timed full epoch). asp_mtl is timed before the "
                     "freeze only.")},
        "phases": phases,
        "clustering": clustering,
        "ncmtl_after_freeze": {"parameter_counts": counts,
                               "frozen_after_epoch": ncmtl.frozen_after_epoch},
        "targets": verdict,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
