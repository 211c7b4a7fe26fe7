"""Time one hard-sharing training epoch on FDU-MTL (16 domains, TF-IDF MLP): LibMTL-style vs ours.

Both sides train the same model from the same initial weights on the same batches, in the same
process, with the settings of ``configs/fdu_mtl_tfidf_mlp.yaml`` (TF-IDF: 10,000 features,
1-2-grams, min_df 2, sublinear tf; encoder ``mlp`` hidden_dims [100], dropout 0.5; the
``every_task`` sampler, 32 rows per task per step; Adam, lr 1e-3):

* reference: a compact mirror of LibMTL's hard parameter sharing (``LibMTL/architecture/HPS.py``,
  whose forward is ``AbsArchitecture.forward``, with ``multi_input=True`` as for per-task
  datasets, and the ``multi_input`` branch of ``LibMTL/trainer.py``'s ``Trainer.train``). Mirrored:
  for each task in turn, its own batch is fed to ``model(input, task)``, which runs the shared
  encoder on that batch alone (``s_rep = self.encoder(inputs)``) and that task's own decoder
  (``out[task] = self.decoders[task](s_rep)``, an ``nn.Linear``); the task's loss is written into
  ``train_losses[tn]`` of a ``torch.zeros(task_num)`` tensor; then ``zero_grad(set_to_none=False)``,
  equal weighting (EW: ``losses.sum()``) and one ``backward``, and ``torch.optim.Adam`` with its
  defaults (not fused; no gradient clipping, as LibMTL). The encoder is ``nn.Linear(V, 100)`` ->
  ReLU -> Dropout(0.5) applied to a ``torch.sparse_coo_tensor`` batch with ``torch.sparse.mm``
  (what a typical sparse-input implementation does); each task's batch is built from the CSR
  rows inside the timed step, like a DataLoader's collate. Not mirrored: LibMTL's meter
  bookkeeping, ``rep_grad`` (off for EW) and the evaluation after each epoch.
* ours: ``textmtl``'s ``HardSharing`` built by ``textmtl.experiment.build_model`` (the ``mlp``
  encoder's bag lookup run once on the combined batch of all 16 tasks, the batched
  ``TaskHeads``), and the trainer's own step: ``textmtl.training.step.train_step`` (the same
  function ``train`` calls: forward, ``task_losses``, extra losses and penalties, the
  ``fixed`` weighting's backward, gradient clipping at the config's 5.0, fused Adam from the
  method's ``param_groups()``), on batches from ``MultiTaskData.batch``.

Timed: the training steps of an epoch only (batch building, forward, backward, clipping,
optimizer step); featurization and evaluation are excluded. The two implementations take their
steps in turns (which one goes first alternates from step to step), so background load on the
shared 2-core machine slows both alike; each epoch's seconds are the sum of its step times.
Before timing, a correctness check: on the first batch, in eval mode (dropout off, so the two
forward passes are the same function of the same weights), the total losses and the gradients of
the shared first layer must agree (loss to 1e-4). In training mode the dropout masks differ
(the reference draws one mask per task batch), so afterwards only the mean training losses per
epoch are compared (they should be close, not equal).

Usage:
    TEXTMTL_DATA_DIR=/work/shared/data python benchmarks/fdu_hard_sharing_epoch.py --epochs 3

Writes ``benchmarks/results/fdu_hard_sharing_epoch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from textmtl.config import load_config
from textmtl.data.samplers import SAMPLERS, TaskStreams
from textmtl.experiment import build_model, featurize, load_experiment_tasks
from textmtl.training.runtime import seed_everything
from textmtl.training.step import build_optimizer, task_losses, train_step
from textmtl.weighting import WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "fdu_mtl_tfidf_mlp.yaml"
RESULT = Path(__file__).resolve().parent / "results" / "fdu_hard_sharing_epoch.json"


class LibMTLStyleHPS(nn.Module):
    """LibMTL's HPS with ``multi_input=True``: ``forward(inputs, task_name)`` runs the shared
    encoder on one task's batch and that task's decoder, returning ``{task: logits}``."""

    def __init__(self, task_names: list[str], num_features: int, hidden_dim: int,
                 num_classes: list[int], dropout: float) -> None:
        super().__init__()
        self.task_name = task_names
        self.shared = nn.Linear(num_features, hidden_dim)  # weight (H, V)
        self.dropout = nn.Dropout(dropout)
        self.decoders = nn.ModuleDict(
            {t: nn.Linear(hidden_dim, c) for t, c in zip(task_names, num_classes)})

    def encoder(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sparse.mm(x, self.shared.weight.t()) + self.shared.bias  # (B, H)
        return self.dropout(torch.relu(h))

    def forward(self, inputs: torch.Tensor, task_name: str) -> dict[str, torch.Tensor]:
        s_rep = self.encoder(inputs)
        return {task_name: self.decoders[task_name](s_rep)}


def sparse_batch(matrix, rows: np.ndarray) -> torch.Tensor:
    """Rows of a scipy CSR matrix as a torch sparse COO tensor (B, V)."""
    coo = matrix[rows].tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data), coo.shape,
                                   check_invariants=False)  # built from valid CSR rows


class Reference:
    def __init__(self, model: LibMTLStyleHPS, data, labels: list[np.ndarray]) -> None:
        self.model = model
        self.data = data
        self.matrix = data.tables["train"].matrix
        self.labels = labels
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def losses(self, parts) -> torch.Tensor:
        train_losses = torch.zeros(len(self.model.task_name))
        for tn, task in enumerate(self.model.task_name):
            pos = dict(parts)[tn]
            x = sparse_batch(self.matrix, self.data.rows["train"][tn][pos])
            y = torch.from_numpy(self.labels[tn][pos])
            train_pred = self.model(x, task)[task]
            train_losses[tn] = F.cross_entropy(train_pred, y)
        return train_losses

    def step(self, parts) -> tuple[float, float]:
        start = time.perf_counter()
        train_losses = self.losses(parts)
        self.optimizer.zero_grad(set_to_none=False)
        loss = train_losses.sum()  # EW: equal weights of 1
        loss.backward()
        self.optimizer.step()
        seconds = time.perf_counter() - start
        return seconds, float(train_losses.detach().mean())


class Ours:
    def __init__(self, model, data, config) -> None:
        self.model = model
        self.data = data
        self.config = config.training
        self.weighting = WEIGHTINGS.build(config.weighting.name, data.task_names,
                                          params=config.weighting.params, where="weighting")
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        training = config.training
        self.optimizer = build_optimizer(model.param_groups(), training.optimizer, training.lr,
                                         training.momentum, training.weight_decay)

    def losses(self, parts) -> dict[str, torch.Tensor]:
        batch = self.data.batch("train", parts)
        return task_losses(self.model(batch), batch.labels, batch.task_index, self.data.task_names)

    def step(self, parts) -> tuple[float, float]:
        start = time.perf_counter()
        # the batch is built inside the timed step, as the trainer does
        losses = train_step(self.model, self.weighting, [self.data.batch("train", parts)],
                            self.optimizer, self.parameters, self.config.clip_norm)
        seconds = time.perf_counter() - start
        return seconds, float(np.mean(list(losses.tasks.values())))


def copy_weights(ours, reference: LibMTLStyleHPS, task_names: list[str]) -> None:
    with torch.no_grad():
        reference.shared.weight.copy_(ours.encoder.input_weight.t())  # (V, H) -> (H, V)
        reference.shared.bias.copy_(ours.encoder.input_bias)
        for k, name in enumerate(task_names):
            reference.decoders[name].weight.copy_(ours.heads.heads[k].weight)
            reference.decoders[name].bias.copy_(ours.heads.heads[k].bias)


def check_first_step(ours: Ours, reference: Reference, parts) -> dict:
    """Eval-mode loss and shared-layer gradient of both on the first batch (no update)."""
    ours.model.eval()
    reference.model.eval()
    ours_total = ours.weighting.combine(ours.losses(parts))
    ours_total.backward()
    reference_total = reference.losses(parts).sum()
    reference_total.backward()
    grad_ours = ours.model.encoder.input_weight.grad.t()
    grad_reference = reference.model.shared.weight.grad
    loss_ours, loss_reference = ours_total.item(), reference_total.item()
    result = {
        "loss_ours": loss_ours, "loss_reference": loss_reference,
        "loss_abs_diff": abs(loss_ours - loss_reference),
        "shared_grad_max_abs_diff": float((grad_ours - grad_reference).abs().max()),
        "shared_grad_max_abs": float(grad_reference.abs().max()),
    }
    result["passed"] = result["loss_abs_diff"] < 1e-4 and \
        result["shared_grad_max_abs_diff"] < 1e-4 * max(1.0, result["shared_grad_max_abs"])
    ours.optimizer.zero_grad(set_to_none=True)
    reference.optimizer.zero_grad(set_to_none=True)
    ours.model.train()
    reference.model.train()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--data-dir", default=None, help="else TEXTMTL_DATA_DIR")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = load_config(CONFIG)
    t0 = time.perf_counter()
    tasks = load_experiment_tasks(config, args.data_dir)
    data = featurize(config, tasks)
    featurize_s = time.perf_counter() - t0
    hard = next(m for m in config.methods if m.name == "hard")
    print(f"{len(tasks)} tasks, {data.spec.size} TF-IDF features, train sizes "
          f"{min(data.train_sizes())}-{max(data.train_sizes())}; featurized in {featurize_s:.1f} s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    model = build_model(hard, config.encoder, data, args.seed)
    reference_model = LibMTLStyleHPS(data.task_names, data.spec.size,
                                     config.encoder.params["hidden_dims"][0],
                                     [t.num_classes for t in tasks],
                                     config.encoder.params["dropout"])
    assert len(config.encoder.params["hidden_dims"]) == 1, "the reference mirrors one hidden layer"
    copy_weights(model, reference_model, data.task_names)
    labels = [np.asarray(t.train.labels, dtype=np.int64) for t in tasks]
    ours = Ours(model, data, config)
    reference = Reference(reference_model, data, labels)

    rng = seed_everything(args.seed)
    sampler = SAMPLERS.build(config.sampler.name, data.task_names, params=config.sampler.params,
                             where="sampler")
    streams = TaskStreams(data.train_sizes(), rng)
    batch_size = config.training.batch_size

    def epoch_plan():
        plan = sampler.plan_epoch(data.train_sizes(), batch_size, rng)
        return [[(k, streams.take(k, n)) for k, n, _ in parts] for parts in plan]

    plans = [epoch_plan() for _ in range(args.epochs)]
    check = check_first_step(ours, reference, plans[0][0])
    print(f"correctness (first batch, dropout off): loss ours {check['loss_ours']:.6f} "
          f"reference {check['loss_reference']:.6f} |diff| {check['loss_abs_diff']:.2e}; "
          f"shared-layer grad max |diff| {check['shared_grad_max_abs_diff']:.2e} "
          f"-> {'PASS' if check['passed'] else 'FAIL'}")

    # warm-up (thread pools, allocator): one untimed step each on the last batch of the last plan
    ours.step(plans[-1][-1])
    reference.step(plans[-1][-1])

    runs = {"reference_libmtl_hps": reference, "ours_hard_sharing": ours}
    epochs = {name: [] for name in runs}
    for epoch, plan in enumerate(plans, start=1):
        seconds = {name: 0.0 for name in runs}
        losses = {name: [] for name in runs}
        for index, parts in enumerate(plan):
            names = list(runs) if index % 2 == 0 else list(runs)[::-1]
            for name in names:
                s, loss = runs[name].step(parts)
                seconds[name] += s
                losses[name].append(loss)
        for name in runs:
            epochs[name].append({"epoch": epoch, "seconds": round(seconds[name], 4),
                                 "mean_train_loss": round(float(np.mean(losses[name])), 4)})
        print(f"epoch {epoch} ({len(plan)} steps): " + "  ".join(
            f"{n} {seconds[n]:.3f} s (loss {np.mean(losses[n]):.4f})" for n in runs))

    medians = {n: statistics.median(e["seconds"] for e in epochs[n]) for n in runs}
    ratio = medians["reference_libmtl_hps"] / medians["ours_hard_sharing"]
    print()
    print("| implementation | median s/epoch | mean train loss, last epoch |")
    print("| --- | --- | --- |")
    for n in runs:
        print(f"| {n} | {medians[n]:.3f} | {epochs[n][-1]['mean_train_loss']:.4f} |")
    print(f"ratio reference / ours: {ratio:.2f}x")

    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "TEXTMTL_DATA_DIR=/work/shared/data python benchmarks/fdu_hard_sharing_epoch.py "
                   f"--epochs {args.epochs}" + (f" --threads {args.threads}" if args.threads else ""),
        "data": f"FDU-MTL, {len(tasks)} domains, train minus dev; {data.spec.size} TF-IDF features",
        "steps_per_epoch": len(plans[0]), "rows_per_step": batch_size * len(tasks),
        "settings": {"features": config.features, "encoder": config.encoder.as_dict(),
                     "sampler": config.sampler.name, "batch_size_per_task": batch_size,
                     "lr": config.training.lr, "ours_clip_norm": config.training.clip_norm},
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": "cpu", "load_average_at_end": os.getloadavg()},
        "correctness_check": check,
        "epochs": epochs,
        "median_seconds_per_epoch": {n: round(v, 4) for n, v in medians.items()},
        "ratio_reference_over_ours": round(ratio, 2),
        "note": "steps of the two implementations interleaved (alternating first) so background "
                "load affects both alike; featurization and evaluation not timed",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
