"""What Fully-Adaptive Feature Sharing built: the branching tree of its trunk, as JSON and text.

A sharing method that widens itself exposes ``branching_tree() -> dict`` (see
:meth:`~textmtl.sharing.fully_adaptive.FullyAdaptiveSharing.branching_tree`); the experiment
writes it into each model folder as ``branching.json`` and ``textmtl branches RUN_DIR`` prints
it: per trunk layer its branches and their tasks, then per widening round the grouping chosen
and the score of each number of branches.
"""

from __future__ import annotations

import json
from pathlib import Path

BRANCHING_JSON = "branching.json"


def write_branching(folder: Path, tree: dict) -> list[Path]:
    """Write ``branching.json`` into ``folder``; returns the paths written."""
    path = Path(folder) / BRANCHING_JSON
    path.write_text(json.dumps(tree, indent=1))
    return [path]


def format_branching(tree: dict) -> str:
    """The tree top layer first (the way it was widened), then the rounds."""
    layers = tree["layers"]
    lines = [f"{len(tree['tasks'])} tasks; trunk widths {tree['widths']} (bottom first)"]
    for number in range(len(layers), 0, -1):
        branches = layers[number - 1]
        lines.append(f"layer {number}: {len(branches)} branch{'es' if len(branches) > 1 else ''}")
        for b, branch in enumerate(branches, start=1):
            parent = "" if branch["parent"] is None else f" (on branch {branch['parent'] + 1} of layer {number - 1})"
            lines.append(f"  {b}: {', '.join(branch['tasks'])}{parent}")
    if not tree.get("splits"):
        lines.append("no widening round ran")
    for split in tree.get("splits", []):
        head = f"round after epoch {split['epoch']}, layer {split['layer']}"
        if "skipped" in split:
            lines.append(f"{head}: skipped ({split['skipped']})")
            continue
        scores = ", ".join(f"{s['branches']}: {s['score']:.3f}" for s in split["scores"])
        made = " | ".join(", ".join(b) for b in split["branches"])
        lines.append(f"{head} ({split['rows']} rows): scores by number of branches {scores}; "
                     f"made {len(split['branches'])}: {made}")
    return "\n".join(lines)
