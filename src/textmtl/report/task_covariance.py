"""What a Deep Relationship Network learned: the task covariance of each penalised layer, as
JSON, text and a heatmap.

A regulariser that learns how tasks relate exposes ``task_covariance() -> dict`` (see
:class:`~textmtl.regularizers.task_covariance.TaskCovariance`); the experiment writes what the
trained method's regularisers return into each model folder as ``task_covariance.json``, draws
``task_covariance.png`` (the correlation ``Omega_ij / sqrt(Omega_ii Omega_jj)``, which is easier
to read than Omega, whose trace is 1), and ``textmtl covariance RUN_DIR`` prints them.
"""

from __future__ import annotations

import json
from pathlib import Path

TASK_COVARIANCE_JSON = "task_covariance.json"
TASK_COVARIANCE_PNG = "task_covariance.png"


def write_task_covariance(folder: Path, report: dict) -> list[Path]:
    """Write ``task_covariance.json`` and, when a layer was learned, ``task_covariance.png``."""
    folder = Path(folder)
    path = folder / TASK_COVARIANCE_JSON
    temporary = folder / (TASK_COVARIANCE_JSON + ".tmp")
    temporary.write_text(json.dumps(report, indent=1))
    temporary.replace(path)
    if not any("correlation" in layer for layer in report.get("layers", [])):
        return [path]  # trained too briefly for a first update, or given clusters: nothing to draw
    return [path, plot_task_covariance(report, folder / TASK_COVARIANCE_PNG)]


def most_related(report: dict, layer: dict, count: int = 5) -> list[tuple[str, str, float]]:
    """The ``count`` task pairs of highest correlation in ``layer`` (task, task, correlation)."""
    tasks = report["tasks"]
    pairs = [(tasks[i], tasks[j], layer["correlation"][i][j])
             for i in range(len(tasks)) for j in range(i + 1, len(tasks))]
    return sorted(pairs, key=lambda p: -p[2])[:count]


def format_task_covariance(report: dict) -> str:
    """Per layer: the correlation matrix and the most related task pairs, as text."""
    tasks = report["tasks"]
    if report.get("source") == "cluster_norm":  # Jacob et al.'s Sigma*, or the given clusters
        lines = [f"{len(tasks)} tasks; cluster norm, {report['updates']} closed-form minimisations "
                 f"over the relaxed cluster covariance"]
    else:
        lines = [f"{len(tasks)} tasks; {report['updates']} closed-form updates of the task "
                 f"covariance (epsilon {report['epsilon']:g})"]
    if not report.get("layers"):
        lines.append("  no update was made (training ended before the first one)")
    width = max(len(t) for t in tasks) if tasks else 0
    for layer in report.get("layers", []):
        if "clusters" in layer:
            groups = " | ".join(", ".join(group) for group in layer["clusters"])
            lines.append(f"layer {layer['name']}: clusters {groups}")
        if "correlation" not in layer:
            continue
        lines.append(f"layer {layer['name']}: task correlation")
        short = [t[:6] for t in tasks]
        lines.append(" " * (width + 2) + " ".join(f"{s:>6}" for s in short))
        for task, row in zip(tasks, layer["correlation"]):
            lines.append(f"  {task:<{width}}" + " ".join(f"{v:6.2f}" for v in row))
        related = ", ".join(f"{a}-{b} {c:.2f}" for a, b, c in most_related(report, layer))
        lines.append(f"  most related: {related}")
    return "\n".join(lines)


def plot_task_covariance(report: dict, path: Path) -> Path:
    """One heatmap per layer of the task correlation (tasks in config order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = report["tasks"]
    layers = [layer for layer in report["layers"] if "correlation" in layer]
    side = 1.5 + 0.35 * len(tasks)
    figure, axes = plt.subplots(1, len(layers), figsize=(side * len(layers), side), squeeze=False)
    for axis, layer in zip(axes[0], layers):
        matrix = np.array(layer["correlation"], dtype=float)  # (K, K)
        image = axis.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        if len(tasks) <= 16:  # numbers stay legible up to the 16 FDU-MTL domains
            for (i, j), value in np.ndenumerate(matrix):
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5)
        axis.set_xticks(range(len(tasks)), tasks, rotation=90, fontsize=6)
        axis.set_yticks(range(len(tasks)), tasks, fontsize=6)
        axis.set_title(f"task correlation\n{layer['name']}", fontsize=8)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
