"""Time the meta-study's engine against textmtl's main trainer, on the study's own models.

The study trains thousands of 10,000 -> 100 -> 100 -> 2 TF-IDF MLPs; ``textmtl run`` trains the
same model with the main trainer (``textmtl.training.train``: the ``mlp`` encoder, ``hard``
sharing, the ``every_task`` sampler, ``fixed`` weights, Adam). Both are run here on the same
pairs of the real 20 Newsgroups data (built as ``textmtl study 20ng`` builds it), the same
epochs, batch size and learning rate, one torch thread, alternating which goes first, and the
test F1 of the main task is evaluated after every epoch by both (the study reads any epoch):

* trainer: ``textmtl.training.train`` (dev = the test rows, so its per-epoch evaluation is the
  study's; early stopping off, no clipping, dropout 0);
* engine: ``textmtl.meta.engine.SparseMLPEngine`` with ``eval_every=1``.

``tests/meta/test_engine_matches_trainer.py`` shows the two take the same steps from the same
weights and batches; this measures what the engine's hand-written sparse backward buys.

Usage:
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/meta_engine_vs_trainer.py [--epochs 30] [--pairs 10]

Writes ``benchmarks/results/meta_engine_vs_trainer.json``.
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
import scipy.sparse as sp
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.inputs import InputSpec
from textmtl.data.samplers import SAMPLERS
from textmtl.data.store import locate
from textmtl.data.tasks import Split, Task
from textmtl.data.tfidf import SparseRowTable
from textmtl.encoders import ENCODERS
from textmtl.meta.corpus import build_corpus
from textmtl.meta.engine import SparseMLPEngine, TaskArrays, TrainSettings
from textmtl.meta.study import select_pairs
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.evaluation import evaluate
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS


def as_data(arrays: list[TaskArrays]) -> MultiTaskData:
    """The engine's arrays as the main trainer's data (dev = test, as the study evaluates)."""
    tasks, tables, rows = [], {}, {}
    for split, x_of, y_of in (("train", "train_x", "train_y"), ("dev", "test_x", "test_y"),
                              ("test", "test_x", "test_y")):
        matrices = [getattr(a, x_of) for a in arrays]
        tables[split] = SparseRowTable(sp.vstack(matrices).tocsr())
        starts = np.cumsum([0] + [m.shape[0] for m in matrices])
        rows[split] = [np.arange(starts[k], starts[k + 1]) for k in range(len(arrays))]
    for a in arrays:
        # the trainer reads features from the tables; texts are placeholders for the Task checks
        splits = {s: Split(["-"] * len(getattr(a, y)), getattr(a, y).tolist())
                  for s, y in (("train", "train_y"), ("dev", "test_y"), ("test", "test_y"))}
        tasks.append(Task(a.name, tuple(str(c) for c in range(a.num_classes)), splits["train"],
                          splits["dev"], splits["test"]))
    return MultiTaskData(tasks, tables, rows, InputSpec(kind="tfidf", size=arrays[0].train_x.shape[1]))


def run_trainer(arrays: list[TaskArrays], epochs: int, seed: int) -> tuple[float, int]:
    data = as_data(arrays)
    spec = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    torch.manual_seed(seed)
    model = SHARING.build("hard", spec, lambda: ENCODERS.build("mlp", data.spec,
                                                              params={"hidden_dims": [100, 100]}))
    config = TrainingConfig(optimizer="adam", lr=1e-3, batch_size=32, max_epochs=epochs, patience=0,
                            clip_norm=None, progress=False, device="cpu", threads=1,
                            eval_batch_size=1024)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names),
                   SAMPLERS.build("every_task", data.task_names), data, config, seed=seed)
    main = data.task_names[0]
    return result.curves[-1]["dev"][main]["macro_f1"], result.steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "meta_engine_vs_trainer.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    corpus = build_corpus(locate("newsgroups", args.data_dir).path)
    pairs = select_pairs("related", args.pairs)
    settings = TrainSettings(epochs=args.epochs, eval_every=1, f1_average="macro")
    seconds = {"trainer": 0.0, "engine": 0.0}
    steps = {"trainer": 0, "engine": 0}
    accuracy = {"trainer": [], "engine": []}
    for i, (main_task, aux_task) in enumerate(pairs):
        arrays = [corpus.arrays.task(*main_task), corpus.arrays.task(*aux_task)]
        order = ["trainer", "engine"] if i % 2 == 0 else ["engine", "trainer"]
        for name in order:
            for tasks in ([arrays[0]], arrays):
                start = time.perf_counter()
                if name == "trainer":
                    score, n_steps = run_trainer(tasks, args.epochs, seed=i)
                else:
                    result = SparseMLPEngine().train(tasks, settings, seed=i)
                    n_steps = result.steps
                    score = result.test_f1[tasks[0].name][args.epochs]
                seconds[name] += time.perf_counter() - start
                steps[name] += n_steps
                accuracy[name].append(score)
        print(f"pair {i + 1}/{len(pairs)}: " + ", ".join(f"{n} {s:.1f} s" for n, s in seconds.items()),
              file=sys.stderr, flush=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/meta_engine_vs_trainer.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
        "pairs": len(pairs), "epochs": args.epochs, "runs_each": 2 * len(pairs),
        "seconds": {n: round(s, 2) for n, s in seconds.items()},
        "ms_per_step": {n: round(1000 * seconds[n] / steps[n], 3) for n in seconds},
        "speedup": round(seconds["trainer"] / seconds["engine"], 2),
        "mean_last_epoch_macro_f1": {n: round(float(np.mean(v)), 4) for n, v in accuracy.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
