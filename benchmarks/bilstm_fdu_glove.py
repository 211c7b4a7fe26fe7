"""Seconds per training epoch of hard sharing with the BiLSTM-over-GloVe encoder on FDU-MTL.

The model and data are those of ``configs/fdu_mtl_bilstm_glove.yaml`` (16 domains, ``tokens``
featurizer with max_length 400 and GloVe 6B 50d, ``bilstm`` hidden 100 with max pooling, hard
sharing, ``every_task`` sampler with 32 rows per domain per step, Adam lr 1e-3, clipping 5.0),
built with textmtl's own functions (``featurize``, ``build_model``, ``bucketed_stream_order``,
``TaskStreams``, ``MultiTaskData.batch``, ``train_step``, ``build_optimizer``), so a step here
is a step of ``textmtl run``. Only training steps are timed (no featurization, no evaluation).

``--max-steps M`` times the first M steps of the epoch (after one untimed warm-up step) and
extrapolates: mean seconds per step x steps per epoch. The steps' batches are random draws from
length-bucketed per-domain streams, so the first M are a random sample of the epoch's steps; the
output and the JSON say when a number is extrapolated.

Side by side, on the same batches, alternating step by step: the reference runs the BiLSTM over
the combined 512-row batch padded to its longest row (each domain's 32 rows come from its own
length bucket, but the 16 buckets differ, so most positions are padding); ours is the library
default, ``BiRNNLayer`` encoding such a batch in groups of ``group_rows`` rows of similar length,
each cut to its own longest row. Both give the same outputs (tests/encoders/test_length_groups.py).

Usage:
    TEXTMTL_DATA_DIR=/work/shared/data python benchmarks/bilstm_fdu_glove.py --max-steps 8

Writes ``benchmarks/results/bilstm_fdu_glove.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from textmtl.config import load_config
from textmtl.data.samplers import SAMPLERS, TaskStreams
from textmtl.experiment import bucketed_stream_order, build_model, featurize, load_experiment_tasks
from textmtl.encoders.layers import BiRNNLayer
from textmtl.training.runtime import seed_everything
from textmtl.training.step import build_optimizer, train_step
from textmtl.weighting import WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "fdu_mtl_bilstm_glove.yaml"
RESULT = Path(__file__).resolve().parent / "results" / "bilstm_fdu_glove.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=None,
                        help="time M steps and extrapolate to the epoch (default: whole epoch)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
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
    model = build_model(hard, config.encoder, data, args.seed)
    weighting = WEIGHTINGS.build(config.weighting.name, data.task_names,
                                 params=config.weighting.params, where="weighting")
    parameters = [p for p in model.parameters() if p.requires_grad]
    training = config.training
    optimizer = build_optimizer(model.param_groups(), training.optimizer, training.lr,
                                training.momentum, training.weight_decay)
    rng = seed_everything(args.seed)
    batch_size = config.training.batch_size
    streams = TaskStreams(data.train_sizes(), rng, bucketed_stream_order(data, batch_size))
    sampler = SAMPLERS.build(config.sampler.name, data.task_names, params=config.sampler.params,
                             where="sampler")
    plan = sampler.plan_epoch(data.train_sizes(), batch_size, rng)
    print(f"{len(tasks)} tasks, vocabulary {data.spec.size}, embedding width "
          f"{model.encoder.embedding.embedding_dim}; featurized in {featurize_s:.1f} s; "
          f"{len(plan)} steps per epoch; torch {torch.__version__}, {torch.get_num_threads()} threads")

    def step(parts) -> tuple[float, int, int]:
        start = time.perf_counter()
        batch = data.batch("train", parts)
        train_step(model, weighting, [batch], optimizer, parameters, config.training.clip_norm)
        padded = batch.inputs.token_ids.numel()
        return time.perf_counter() - start, padded, int(batch.inputs.lengths.sum())

    rnn_layers = [m for m in model.modules() if isinstance(m, BiRNNLayer)]

    def set_grouping(group_rows):
        for layer in rnn_layers:
            layer.group_rows = group_rows

    # reference: the RNN over the whole combined batch padded to its longest row;
    # ours: the library default, length groups of BiRNNLayer.group_rows rows (same outputs)
    variants = {"one_padded_batch": None, "length_groups": BiRNNLayer.group_rows}
    model.train()
    batches = [[(k, streams.take(k, n)) for k, n, _ in parts] for parts in plan]
    for group_rows in variants.values():  # warm-up, untimed
        set_grouping(group_rows)
        step(batches[-1])
    timed = min(args.max_steps or len(batches), len(batches))
    seconds = {name: 0.0 for name in variants}
    padded = real = 0
    for index in range(timed):
        # alternate which variant goes first, so machine load hits both alike
        names = list(variants) if index % 2 == 0 else list(reversed(variants))
        line = []
        for name in names:
            set_grouping(variants[name])
            s, p, r = step(batches[index])
            seconds[name] += s
            line.append(f"{name} {s:.2f} s")
        padded, real = padded + p, real + r
        print(f"  step {index + 1}/{timed}: {', '.join(line)}; {p} padded positions, {r} real tokens",
              flush=True)
    set_grouping(variants["length_groups"])
    per_epoch = {name: seconds[name] / timed * len(batches) for name in variants}
    ratio = per_epoch["one_padded_batch"] / per_epoch["length_groups"]
    extrapolated = timed < len(batches)
    note = f"EXTRAPOLATED from {timed} of {len(batches)} steps" if extrapolated else "full epoch"
    for name in variants:
        print(f"hard sharing, BiLSTM over GloVe 50d, {name}: {per_epoch[name]:.1f} s/epoch [{note}]")
    print(f"ratio one_padded_batch / length_groups: {ratio:.2f}x; padded/real tokens {padded / real:.2f}")

    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "TEXTMTL_DATA_DIR=/work/shared/data python benchmarks/bilstm_fdu_glove.py"
                   + (f" --max-steps {args.max_steps}" if args.max_steps else "")
                   + (f" --threads {args.threads}" if args.threads else ""),
        "config": "configs/fdu_mtl_bilstm_glove.yaml (method hard)",
        "data": f"FDU-MTL, {len(tasks)} domains, train minus dev",
        "model": {"encoder": config.encoder.as_dict(), "embedding_width": model.encoder.embedding.embedding_dim,
                  "features": config.features, "batch_size_per_task": batch_size},
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": "cpu", "load_average_at_end": os.getloadavg()},
        "steps_per_epoch": len(batches), "timed_steps": timed,
        "seconds_per_epoch": {name: round(v, 1) for name, v in per_epoch.items()},
        "ratio_one_padded_batch_over_length_groups": round(ratio, 2),
        "length_group_rows": variants["length_groups"], "extrapolated": extrapolated,
        "padded_positions_per_step": round(padded / timed), "real_tokens_per_step": round(real / timed),
        "featurize_seconds": round(featurize_s, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
