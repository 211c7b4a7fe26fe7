"""What cluster layers learned: each layer's task clusters as JSON, text and a PNG (the
cluster-layers paper's Figure 4), and how often tasks changed cluster before the freeze.

A sharing method that clusters tasks exposes ``cluster_report() -> dict`` (and optionally
``parameter_counts() -> list``; ``textmtl/sharing/cluster_layers.py`` documents both); the
experiment writes them into each model folder as ``clusters.json``, draws ``clusters.png``, and
``textmtl clusters RUN_DIR`` prints them.
"""

from __future__ import annotations

import json
from pathlib import Path

CLUSTERS_JSON = "clusters.json"
CLUSTERS_PNG = "clusters.png"


def write_clusters(folder: Path, report: dict) -> list[Path]:
    """Write ``clusters.json`` and ``clusters.png`` into ``folder``; returns the paths written."""
    folder = Path(folder)
    path = folder / CLUSTERS_JSON
    path.write_text(json.dumps(report, indent=1))
    return [path, plot_clusters(report, folder / CLUSTERS_PNG)]


def groups(assignments: dict[str, int]) -> list[list[str]]:
    """Tasks grouped by cluster id, in id order."""
    by_id: dict[int, list[str]] = {}
    for task, cluster in assignments.items():
        by_id.setdefault(cluster, []).append(task)
    return [by_id[c] for c in sorted(by_id)]


def format_clusters(report: dict) -> str:
    """Each cluster layer's clusters, the per-epoch changes and the parameter counts as text."""
    frozen = report.get("frozen_after_epoch")
    lines = [f"{len(report['tasks'])} tasks; assignments "
             + (f"frozen after epoch {frozen}" if report.get("frozen") else "not frozen")]
    counts = report.get("parameter_counts") or [None] * len(report["layers"])
    for i, (layer, count) in enumerate(zip(report["layers"], counts), start=1):
        clusters = groups(layer["assignments"])
        lines.append(f"cluster layer {i} (width {layer['width']}, {len(clusters)} of "
                     f"{layer['clusters']} clusters used)")
        lines += [f"  {c}: {', '.join(tasks)}" for c, tasks in enumerate(clusters, start=1)]
        if count:
            lines.append(f"  parameters: {count['centres']:,} in centres vs {count['task_layers']:,} "
                         f"for {len(report['tasks'])} separate task layers "
                         f"({count['centres'] / count['task_layers']:.2f}x)")
    if report.get("epochs"):
        lines.append("tasks that changed cluster per epoch (one count per layer; moves in brackets)")
        for e, entry in enumerate(report["epochs"], start=1):
            changes = "  ".join(f"{c} ({m})" for c, m in zip(entry["changed_tasks"], entry["moves"]))
            lines.append(f"  epoch {e}: {entry['clusterings']} clusterings; {changes}")
    return "\n".join(lines)


def plot_clusters(report: dict, path: Path) -> Path:
    """One column per cluster layer, one row per task; a cell's colour and number are the task's
    cluster in that layer (tasks ordered by their clusters, coarsest layer first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers = report["layers"]
    tasks = sorted(report["tasks"], key=lambda t: tuple(layer["assignments"][t] for layer in layers))
    matrix = np.array([[layer["assignments"][t] for layer in layers] for t in tasks], dtype=float)
    figure, axis = plt.subplots(figsize=(1.4 + 1.2 * len(layers), 0.9 + 0.28 * len(tasks)))
    axis.imshow(matrix, cmap="tab10", aspect="auto", vmin=0, vmax=9, interpolation="nearest")
    for (i, j), value in np.ndenumerate(matrix):
        axis.text(j, i, str(int(value) + 1), ha="center", va="center", fontsize=7)
    axis.set_xticks(range(len(layers)),
                    [f"layer {i + 1}\n({layer['clusters']} clusters)" for i, layer in enumerate(layers)],
                    fontsize=7)
    axis.set_yticks(range(len(tasks)), tasks, fontsize=7)
    axis.set_title("task clusters of each cluster layer", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)
