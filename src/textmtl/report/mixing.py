"""What a mixing method learned: α matrices and β vectors as JSON, text and heatmaps.

A sharing method that learns how to mix its task networks exposes ``learned_mixing() -> dict``
(cross-stitch, sluice networks); the experiment writes it into each model folder as
``mixing.json`` and draws it as ``mixing.png``, and ``textmtl mixing RUN_DIR`` prints it. The
dict holds plain lists:

    {"method": str, "subspaces": S, "layer_mix": str,
     "alpha": [{"after": stage name, "labels": [row/column names], "values": [[...]]}, ...],
     "beta": None or {task: {"layers": [stage names], "values": [...]}}}

Row r of an α matrix is the input of (task, subspace) r of the next stage; column c the output
of (task, subspace) c it reads (``h~_r = sum_c alpha[r, c] h_c``).
"""

from __future__ import annotations

import json
from pathlib import Path

MIXING_JSON = "mixing.json"
MIXING_PNG = "mixing.png"


def write_mixing(folder: Path, mixing: dict) -> list[Path]:
    """Write ``mixing.json`` and ``mixing.png`` into ``folder``; returns the paths written."""
    folder = Path(folder)
    path = folder / MIXING_JSON
    path.write_text(json.dumps(mixing, indent=1))
    return [path, plot_mixing(mixing, folder / MIXING_PNG)]


def format_mixing(mixing: dict) -> str:
    """The α matrices and β vectors as aligned text."""
    lines = [f"{mixing.get('method', '?')}: {mixing.get('subspaces', 1)} subspace(s), layers "
             f"read by the heads: {mixing.get('layer_mix', '?')}"]
    for alpha in mixing.get("alpha") or []:
        labels = alpha["labels"]
        width = max(8, *(len(label) for label in labels))
        lines.append(f"alpha after {alpha['after']} (row: the input of, column: the output read)")
        lines.append(" " * (width + 2) + " ".join(f"{label:>{width}}" for label in labels))
        for label, row in zip(labels, alpha["values"]):
            lines.append(f"  {label:<{width}}" + " ".join(f"{v:>{width}.3f}" for v in row))
    beta = mixing.get("beta")
    if beta:
        lines.append("beta (each task's weights of the layers its head reads)")
        for task, entry in beta.items():
            pairs = "  ".join(f"{layer} {value:.3f}" for layer, value in zip(entry["layers"], entry["values"]))
            lines.append(f"  {task}: {pairs}")
    if not mixing.get("alpha") and not beta:
        lines.append("  (nothing learned: constant α and fixed layer weights)")
    return "\n".join(lines)


def plot_mixing(mixing: dict, path: Path) -> Path:
    """Heatmaps: one per α matrix, and one of β (tasks x layers) when learned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = mixing.get("alpha") or []
    beta = mixing.get("beta")
    panels = len(alphas) + (1 if beta else 0)
    figure, axes = plt.subplots(1, max(panels, 1), figsize=(3.6 * max(panels, 1), 3.4), squeeze=False)
    for axis, alpha in zip(axes[0], alphas):
        _heatmap(axis, alpha["values"], alpha["labels"], alpha["labels"], f"α after {alpha['after']}")
        axis.set_ylabel("input of")
        axis.set_xlabel("output read")
    if beta:
        tasks = list(beta)
        layers = max((entry["layers"] for entry in beta.values()), key=len)
        values = [entry["values"] + [float("nan")] * (len(layers) - len(entry["values"]))
                  for entry in beta.values()]
        _heatmap(axes[0][len(alphas)], values, tasks, layers, "β (layer weights)")
    if panels == 0:
        axes[0][0].text(0.5, 0.5, "nothing learned", ha="center", va="center")
        axes[0][0].axis("off")
    figure.suptitle(f"{mixing.get('method', '')}: what was learned", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)


def _heatmap(axis, values, rows, columns, title: str) -> None:
    import numpy as np

    matrix = np.asarray(values, dtype=float)
    image = axis.imshow(matrix, cmap="viridis", aspect="auto")
    axis.figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set_xticks(range(len(columns)), [_short(c) for c in columns], rotation=45, ha="right", fontsize=7)
    axis.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=7)
    axis.set_title(title, fontsize=9)
    if matrix.size <= 64:
        finite = matrix[np.isfinite(matrix)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):  # dark text on the bright (high) cells of viridis
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                          color="black" if value > middle else "white")


def _short(label: str) -> str:
    # "conll2000_chunk:1" -> "chunk:1": dataset prefixes crowd the axes
    head, _, rest = label.partition("_")
    return rest if rest and head.isalnum() and any(ch.isdigit() for ch in head) else label
