"""``textmtl plot RUN_DIR``: the learning curves of every method and task of a run, as PNG.

One figure per method (the first folder level of the run: a table column, a pair-wise joint
method, a sweep cell's run when given that run): a column per task, the training loss on top
and the dev metric that selects epochs (each task's default: span F1 for chunking, else
accuracy) below, one line per trained model (seed, and for models trained per task or per pair,
which), from each model's ``curves.json``; the selected epoch is marked.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError


def _curves_by_method(run_dir: Path) -> dict[str, list[tuple[str, list[dict], int]]]:
    """method -> [(line label, curves, best epoch)] over every finished model folder."""
    out: dict[str, list[tuple[str, list[dict], int]]] = {}
    for path in sorted(run_dir.glob("**/curves.json")):
        folder = path.parent
        if not (folder / "metrics.json").is_file():
            continue
        parts = folder.relative_to(run_dir).parts
        if not parts:
            raise ConfigError(f"{run_dir}: a model folder, not a run folder; give the run folder above it")
        try:
            curves = json.loads(path.read_text())
            best = json.loads((folder / "metrics.json").read_text()).get("best_epoch", 0)
        except ValueError as error:
            raise ConfigError(f"{path}: unreadable ({error})") from None
        label = " ".join(p for p in parts[1:]) or parts[0]
        out.setdefault(parts[0], []).append((label, curves, int(best or 0)))
    return out


def _dev_metric(metrics: dict) -> str:
    return "span_f1" if "span_f1" in metrics else "accuracy"


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``<out_dir>/<method>.png`` for every method (default out_dir: RUN_DIR/plots).

    Raises:
        ConfigError: not a folder, or no finished model with curves in it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    by_method = _curves_by_method(run_dir)
    if not by_method:
        raise ConfigError(f"{run_dir}: no finished model with curves.json inside; expected a folder "
                          "written by textmtl run, sweep (one cell's run) or pair-gain")
    out_dir = Path(out_dir) if out_dir else run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for method, lines in by_method.items():
        tasks = list(dict.fromkeys(t for _, curves, _ in lines for row in curves for t in row["dev"]))
        figure, axes = plt.subplots(2, len(tasks), figsize=(3.2 * len(tasks) + 0.5, 5.2), squeeze=False)
        for column, task in enumerate(tasks):
            loss_axis, dev_axis = axes[0][column], axes[1][column]
            for label, curves, best in lines:
                rows = [row for row in curves if task in row["dev"]]
                if not rows:
                    continue
                epochs = [row["epoch"] for row in rows]
                metric = _dev_metric(rows[0]["dev"][task])
                losses = [row["train_loss"].get(task) for row in rows]
                if any(v is not None for v in losses):
                    loss_axis.plot(epochs, [float("nan") if v is None else v for v in losses], label=label)
                line, = dev_axis.plot(epochs, [row["dev"][task][metric] * 100 for row in rows], label=label)
                chosen = [row for row in rows if row["epoch"] == best]
                if chosen:
                    dev_axis.plot([best], [chosen[0]["dev"][task][metric] * 100], marker="o", color=line.get_color())
                dev_axis.set_ylabel(f"dev {metric} (%)", fontsize=7)
            loss_axis.set_title(task, fontsize=8)
            loss_axis.set_ylabel("train loss", fontsize=7)
            dev_axis.set_xlabel("epoch", fontsize=7)
            for axis in (loss_axis, dev_axis):
                axis.tick_params(labelsize=6)
        handles, labels = axes[1][0].get_legend_handles_labels()
        if len(labels) <= 12:
            figure.legend(handles, labels, loc="center right", fontsize=6)
        figure.suptitle(f"{run_dir.name}: {method} (dot: the epoch chosen on dev)", fontsize=9)
        figure.tight_layout(rect=(0, 0, 0.88 if len(labels) <= 12 else 1, 0.95))
        path = out_dir / f"{method}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
