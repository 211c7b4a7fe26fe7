"""Time a training epoch of the FDU-MTL BiLSTM config in one process and data-parallel in two.

Issue 15 asks for the step time of 1 vs 2 processes on ``configs/fdu_mtl_bilstm_glove.yaml``
(hard sharing: the shared BiLSTM over GloVe 50d, 32 reviews of every domain per step). The
same trainer (``textmtl.training.trainer.train``) trains one epoch on a fixed sample of the
training reviews (``--rows`` per domain; dev and test cut to 16 so evaluation is small):

* reference: one process with 1 torch thread, and one process with 2 threads (all the cores);
* ours: two data-parallel processes under torchrun (gloo), 1 thread each, each on half of
  every step's rows, the gradients summed (``textmtl.training.distributed``).

On a 2-core machine no speed-up is expected (the cores are the same; the point is the path
to more machines): the ratio says what the all-reduce of every gradient and the halved batches
cost or save. The weights of the one- and two-process runs are checked equal (1e-4) first.

Usage:
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/data_parallel_step.py [--rows 320]

Writes ``benchmarks/results/data_parallel_step.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "fdu_mtl_bilstm_glove.yaml"


def worker(rows: int, threads: int, out: Path) -> None:
    import torch

    from textmtl.config import load_config
    from textmtl.experiment import build_model, featurize, load_experiment_tasks
    from textmtl.data.samplers import SAMPLERS
    from textmtl.training import distributed
    from textmtl.training.trainer import train
    from textmtl.weighting import WEIGHTINGS

    torch.set_num_threads(threads)
    group = distributed.current()
    config = load_config(CONFIG, [f"max_rows={{train: {rows}, dev: 16, test: 16}}", "training.max_epochs=1",
                                  "training.progress=false", "methods=[hard]"])
    method = config.methods[0]
    tasks = load_experiment_tasks(config, None, lambda line: None)
    data = featurize(config, tasks, method)
    model = build_model(method, config.method_encoder(method), data, seed=1)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"), data,
                   config.training, seed=1, data_parallel=group)
    if group is None or group.is_main:
        torch.save({"seconds_per_epoch": result.seconds_per_epoch, "steps": result.steps,
                    "state": model.state_dict()}, out)


def run(processes: int, threads: int, rows: int, folder: Path) -> dict:
    import torch

    out = folder / f"p{processes}-t{threads}.pt"
    script = [str(Path(__file__).resolve()), "--worker", "--rows", str(rows), "--threads", str(threads),
              "--out", str(out)]
    command = [sys.executable, *script] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *script]
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return torch.load(out, weights_only=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=320, help="training reviews per domain (default 320)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rows, args.threads, args.out)
        return
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        runs = {"1 process, 1 thread": run(1, 1, args.rows, folder),
                "1 process, 2 threads": run(1, 2, args.rows, folder),
                "2 processes, 1 thread each": run(2, 1, args.rows, folder)}
    one, two = runs["1 process, 1 thread"], runs["2 processes, 1 thread each"]
    worst = max(float((two["state"][k] - v).abs().max()) for k, v in one["state"].items())
    if worst > 1e-4:
        raise SystemExit(f"the two-process weights differ from one process's by {worst:g}")
    steps = one["steps"]
    seconds = {name: r["seconds_per_epoch"] / r["steps"] for name, r in runs.items()}
    record = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"python benchmarks/data_parallel_step.py --rows {args.rows}",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "settings": {"config": "configs/fdu_mtl_bilstm_glove.yaml", "method": "hard", "sampler": "every_task",
                     "train_rows_per_domain": args.rows, "steps_per_epoch": steps,
                     "note": "seconds per step = the trainer's seconds per epoch (dev evaluation of 16 reviews "
                             "per domain included) / steps"},
        "max_weight_difference_1_vs_2_processes": worst,
        "seconds_per_step": seconds,
        "ratio_2_processes_to_1_process_1_thread": seconds["2 processes, 1 thread each"] / seconds["1 process, 1 thread"],
        "ratio_2_processes_to_1_process_2_threads": seconds["2 processes, 1 thread each"] / seconds["1 process, 2 threads"],
    }
    path = ROOT / "benchmarks" / "results" / "data_parallel_step.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
