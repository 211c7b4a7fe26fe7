"""Per-epoch learning curves as TensorBoard event files (``--tensorboard DIR``).

One TensorBoard run per training, ``DIR/<experiment>/<training>`` (e.g.
``runs-tb/fdu_mtl_tfidf_mlp/hard seed 1``), so TensorBoard lists the methods, seeds and tasks
side by side. The scalars of an epoch are the entries of ``curves.json``:

    train_loss/<task>          mean training loss of the epoch
    extra_loss/<name>          a method's extra losses (adversarial, orthogonality, ...)
    task_weight/<task>         the weighting's weight in force (uncertainty, DWA, ...)
    dev/<task>/<metric>        every dev metric; dev/score, the selection score
    lr/<parameter group>       the learning rate of the epoch
    mixing/alpha/..., mixing/beta/...   cross-stitch / sluice α and β as they move

Needs the ``tensorboard`` package (extra ``textmtl[tracking]``); :func:`check_available` says so
in one line before anything trains.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError


def check_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard (training.tensorboard) needs TensorBoard: "
                          "pip install 'textmtl[tracking]'") from None


def run_folder(root: str | Path, experiment: str, training: str) -> Path:
    """Where one training's event files go; a training's label made a safe folder name."""
    return Path(root) / experiment / re.sub(r"[^A-Za-z0-9._=+@ -]+", "_", training).strip()


class EpochWriter:
    """Writes each epoch entry (``trainer.train(on_epoch=...)``) as scalars at step = epoch."""

    def __init__(self, folder: Path) -> None:
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def __call__(self, entry: dict) -> None:
        epoch = entry["epoch"]
        scalars: dict[str, float] = {"dev/score": entry["dev_score"]}
        for prefix, key in (("train_loss", "train_loss"), ("extra_loss", "extra_losses"),
                            ("task_weight", "task_weights"), ("lr", "lr"), ("mixing", "mixing")):
            for name, value in (entry.get(key) or {}).items():
                scalars[f"{prefix}/{name}"] = value
        for task, metrics in entry["dev"].items():
            for metric, value in metrics.items():
                scalars[f"dev/{task}/{metric}"] = value
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, float(value), epoch)
        self.writer.flush()  # a long run's curves are readable while it trains

    def close(self) -> None:
        self.writer.close()
