"""Time one BiLSTM training epoch: packed reference vs textmtl's padding-invariant encoder.

Both sides train the same model shape (embedding 200, bidirectional LSTM with hidden 100 per
direction, max pooling over real tokens, a linear 2-class head, cross-entropy, Adam, batch 32)
over the same FDU-MTL training documents, in the same process:

* reference: ``nn.LSTM(bidirectional=True)`` over ``pack_padded_sequence`` batches drawn in
  random order (the usual recipe);
* ours: the registered ``bilstm`` encoder (unidirectional LSTMs over right-padded and
  per-sequence reversed inputs, no packing) over length-bucketed batches
  (:func:`textmtl.data.text.length_bucketed_order`).

Data: the real FDU-MTL training files (``$TEXTMTL_DATA_DIR/fdu-mtl/<domain>.task.train`` minus
the last 200 lines of each, the dev set) when ``TEXTMTL_DATA_DIR`` is set, else synthetic
documents with FDU-MTL's length distribution (log-normal, median 85 tokens, 95th percentile
~400). Texts are cut to 400 tokens (``TokenFeaturizer`` default).

The two implementations train step by step in turns, so background load on the machine slows
both alike and the ratio stays meaningful. ``--domains N`` uses the first N domains; ``--max-batches M`` times M batches per side and
extrapolates to the full epoch (mean seconds per batch x batches per epoch; the batches of both
orders come in random order, so the first M are a random sample). The output says when a
number is extrapolated. The result is written to ``benchmarks/results/bilstm_epoch.json``.

Usage:
    TEXTMTL_DATA_DIR=../shared/data python benchmarks/bilstm_epoch.py --max-batches 60
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textmtl.data.inputs import TokenInput
from textmtl.data.text import TokenFeaturizer, length_bucketed_order
from textmtl.encoders import ENCODERS

DOMAINS = ["apparel", "baby", "books", "camera_photo", "dvd", "electronics",
           "health_personal_care", "imdb", "kitchen_housewares", "magazines", "MR", "music",
           "software", "sports_outdoors", "toys_games", "video"]
EMBEDDING_DIM, HIDDEN_DIM, BATCH_SIZE = 200, 100, 32
RESULT = Path(__file__).resolve().parent / "results" / "bilstm_epoch.json"


def load_documents(domains: int, seed: int) -> tuple[list[str], np.ndarray, str]:
    """(texts, labels, description) of the training rows of the first ``domains`` domains."""
    data_dir = os.environ.get("TEXTMTL_DATA_DIR")
    if data_dir and (Path(data_dir) / "fdu-mtl").is_dir():
        texts, labels = [], []
        for domain in DOMAINS[:domains]:
            path = Path(data_dir) / "fdu-mtl" / f"{domain}.task.train"
            # split on b"\n" only: latin-1 byte 0x85 would be a line break for str.splitlines
            lines = [line for line in path.read_bytes().split(b"\n") if line.strip()][:-200]
            for line in lines:
                label, text = line.decode("latin-1").split("\t", 1)
                texts.append(text)
                labels.append(int(label))
        return texts, np.array(labels), f"FDU-MTL train minus dev, {domains} domains ({data_dir})"
    rng = np.random.default_rng(seed)
    count = 1400 * domains
    lengths = np.clip(rng.lognormal(mean=math.log(85), sigma=0.95, size=count), 1, 5000)
    words = rng.zipf(1.3, size=int(lengths.sum())) % 40000
    texts, start = [], 0
    for n in lengths.astype(int):
        texts.append(" ".join(f"w{w}" for w in words[start:start + n]))
        start += n
    return texts, rng.integers(0, 2, size=count), f"synthetic FDU-MTL-shaped, {count} documents"


class PackedReference(nn.Module):
    """Embedding -> bidirectional nn.LSTM on packed sequences -> masked max pooling -> linear."""

    def __init__(self, vocabulary_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, EMBEDDING_DIM, padding_idx=0)
        self.lstm = nn.LSTM(EMBEDDING_DIM, HIDDEN_DIM, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * HIDDEN_DIM, 2)

    def forward(self, inputs: TokenInput) -> torch.Tensor:
        x = self.embedding(inputs.token_ids)  # (B, T, E)
        packed = pack_padded_sequence(x, inputs.lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)  # (B, T', 2H)
        h = h.masked_fill(~inputs.mask()[:, : h.shape[1], None], float("-inf"))
        return self.head(h.max(dim=1).values)  # (B, 2)


class Ours(nn.Module):
    """The registered bilstm encoder (max pooling) -> linear."""

    def __init__(self, spec) -> None:
        super().__init__()
        self.encoder = ENCODERS.build("bilstm", spec, params={
            "embedding_dim": EMBEDDING_DIM, "hidden_dim": HIDDEN_DIM, "pooling": "max"})
        self.head = nn.Linear(self.encoder.output_dim, 2)

    def forward(self, inputs: TokenInput) -> torch.Tensor:
        return self.head(self.encoder(inputs))  # (B, 2)


class Run:
    """One implementation's model, optimizer, batch order and timing."""

    def __init__(self, model: nn.Module, order: np.ndarray) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.batches = [order[i:i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]
        self.seconds = 0.0
        self.padded_tokens = 0

    def step(self, table, labels: np.ndarray, rows: np.ndarray) -> float:
        """One training step (gather, forward, backward, Adam); returns its seconds."""
        start = time.perf_counter()
        inputs = table.gather(rows)
        loss = F.cross_entropy(self.model(inputs), torch.from_numpy(labels[rows]))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start

    def summary(self, timed: int) -> dict:
        return {
            "timed_batches": timed, "batches_per_epoch": len(self.batches),
            "timed_seconds": round(self.seconds, 2),
            "seconds_per_epoch": round(self.seconds / timed * len(self.batches), 1),
            "extrapolated": timed < len(self.batches),
            "padded_tokens_per_batch": round(self.padded_tokens / timed, 1),
        }


def time_epochs(runs: dict[str, Run], table, labels: np.ndarray,
                max_batches: int | None) -> dict:
    """Train all runs over their batches, interleaved step by step.

    Interleaving makes any background load on the machine hit every implementation alike, so
    the ratio stays fair even when the absolute times are noisy.
    """
    for run in runs.values():
        run.step(table, labels, run.batches[-1])  # warm-up (allocator, thread pool), not timed
    count = max(len(run.batches) for run in runs.values())
    timed = min(count, max_batches) if max_batches else count
    for index in range(timed):
        for run in runs.values():
            if index < len(run.batches):
                rows = run.batches[index]
                run.seconds += run.step(table, labels, rows)
                run.padded_tokens += len(rows) * int(table.lengths[rows].max())
    return {name: run.summary(min(timed, len(run.batches))) for name, run in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=16, help="first N FDU-MTL domains")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="time M batches per implementation and extrapolate to the epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, the core count)")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    texts, labels, description = load_documents(args.domains, args.seed)
    featurizer = TokenFeaturizer().fit(texts)
    table = featurizer.transform(texts)
    spec = featurizer.spec()
    rng = np.random.default_rng(args.seed)
    print(f"data: {description}; {len(texts)} documents, vocabulary {spec.size}, "
          f"mean length {table.lengths.mean():.1f} tokens (cut at 400); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    runs = {
        "reference_packed_random": Run(PackedReference(spec.size), rng.permutation(len(table))),
        "ours_padded_bucketed": Run(Ours(spec),
                                    length_bucketed_order(table.lengths, BATCH_SIZE, rng)),
    }
    results = time_epochs(runs, table, labels, args.max_batches)
    for name, r in results.items():
        note = (f"EXTRAPOLATED from {r['timed_batches']} of {r['batches_per_epoch']} batches "
                f"({r['timed_seconds']} s)" if r["extrapolated"] else "full epoch")
        print(f"{name:26s} {r['seconds_per_epoch']:8.1f} s/epoch  [{note}]  "
              f"{r['padded_tokens_per_batch']:.0f} padded tokens/batch")
    speedup = (results["reference_packed_random"]["seconds_per_epoch"]
               / results["ours_padded_bucketed"]["seconds_per_epoch"])
    print(f"speed-up (reference / ours): {speedup:.2f}x")

    record = {
        "command": "python benchmarks/bilstm_epoch.py "
                   f"--domains {args.domains}"
                   + (f" --max-batches {args.max_batches}" if args.max_batches else "")
                   + (f" --threads {args.threads}" if args.threads else ""),
        "data": description, "documents": len(texts), "vocabulary_size": spec.size,
        "model": {"embedding_dim": EMBEDDING_DIM, "hidden_dim": HIDDEN_DIM, "pooling": "max",
                  "batch_size": BATCH_SIZE, "optimizer": "Adam"},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": "cpu", "load_average_at_end": os.getloadavg()},
        "results": results, "speedup": round(speedup, 2),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(args.output)  # never leave a half-written result
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
