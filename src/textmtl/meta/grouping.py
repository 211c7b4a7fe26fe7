"""Task groupings from a measured gain matrix (``textmtl advise --tasks``).

``gain[i][j]`` is the mean gain of task i (main) when trained with task j (auxiliary); the
diagonal is unused. The rules:

* **best auxiliary** of task i: the j with the largest mean gain (none if no gain is positive;
  "positive" is > :data:`POSITIVE`, 1e-9, everywhere here);
* **groups**: maximal sets of at least two tasks in which *every ordered pair* gains -- i with
  auxiliary j and j with auxiliary i -- i.e. the maximal cliques of the graph with an edge i-j
  where both ``gain[i][j] > 0`` and ``gain[j][i] > 0`` (rule "mean"), or where both lower ends
  of the 95 % intervals are > 0 (rule "ci": gains that are positive beyond seed noise);
* **partition**: a disjoint grouping to train with: repeatedly take the largest remaining group
  (ties: the higher mean gain inside it), drop its members from the rest, until no group of two
  is left; the other tasks are trained alone.

Pairwise gains say nothing certain about a group trained all together: the groups are
candidates that no measured pair speaks against, not measured groups.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

RULES = ("mean", "ci")
#: a gain counts as positive above this: gains are differences of score fractions (k/n), and their
#: floating-point mean can come out as 2e-17 where the exact mean is 0
POSITIVE = 1e-9


def best_auxiliary(names: list[str], gain: np.ndarray) -> list[tuple[str, str | None, float]]:
    """Per task: (task, its best auxiliary or None when no auxiliary gains, that gain)."""
    out = []
    for i, name in enumerate(names):
        row = np.where(np.arange(len(names)) == i, -np.inf, np.nan_to_num(gain[i], nan=-np.inf))
        j = int(np.argmax(row))
        out.append((name, names[j] if row[j] > POSITIVE else None, float(gain[i, j]) if np.isfinite(row[j]) else math.nan))
    return out


def _maximal_cliques(adjacent: list[set[int]]) -> list[set[int]]:
    """Bron-Kerbosch with pivoting: every maximal clique of an undirected graph."""
    found: list[set[int]] = []

    def expand(r: set[int], p: set[int], x: set[int]) -> None:
        if not p and not x:
            found.append(r)
            return
        pivot = max(p | x, key=lambda v: len(adjacent[v] & p))
        for v in list(p - adjacent[pivot]):
            expand(r | {v}, p & adjacent[v], x & adjacent[v])
            p = p - {v}
            x = x | {v}

    expand(set(), set(range(len(adjacent))), set())
    return found


def mutual_groups(names: list[str], gain: np.ndarray, low: np.ndarray | None = None,
                  rule: str = "mean") -> list[tuple[str, ...]]:
    """Maximal groups (2+ tasks) in which every ordered pair gains, by ``rule`` (:data:`RULES`).

    Sorted largest first, then by the mean gain inside the group (highest first); members in
    the order of ``names``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    values = gain if rule == "mean" else low
    if values is None:
        raise ValueError("rule 'ci' needs the lower ends of the intervals")
    n = len(names)
    positive = np.nan_to_num(values, nan=-np.inf) > POSITIVE
    adjacent = [{j for j in range(n) if j != i and positive[i, j] and positive[j, i]} for i in range(n)]
    cliques = [sorted(c) for c in _maximal_cliques(adjacent) if len(c) >= 2]
    cliques.sort(key=lambda c: (-len(c), -inner_gain(gain, c), c))
    return [tuple(names[i] for i in c) for c in cliques]


def inner_gain(gain: np.ndarray, members: list[int]) -> float:
    """Mean gain over the ordered pairs inside a group."""
    return float(np.mean([gain[i, j] for i in members for j in members if i != j]))


def partition(names: list[str], gain: np.ndarray, groups: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A disjoint grouping: the largest (then best) remaining group, its members removed, again."""
    left = set(names)
    chosen = []
    while True:
        candidates = []
        for group in groups:
            members = [m for m in group if m in left]
            if len(members) >= 2:
                candidates.append(tuple(members))
        if not candidates:
            break
        # a group cut down by earlier choices is still mutual (a sub-clique of a clique)
        best = min(candidates, key=lambda g: (-len(g), -inner_gain(gain, [names.index(m) for m in g]),
                                              [names.index(m) for m in g]))
        chosen.append(best)
        left -= set(best)
    return chosen + [(name,) for name in names if name in left]


def short_names(names: list[str]) -> list[str]:
    """Names without the prefix they all share up to a ':' (``fdu_mtl:books`` -> ``books``)."""
    prefix = names[0].split(":")[0] + ":" if names and ":" in names[0] else ""
    if prefix and all(n.startswith(prefix) and len(n) > len(prefix) for n in names):
        return [n[len(prefix):] for n in names]
    return list(names)


def heatmap(path: Path, names: list[str], gain: np.ndarray, title: str, scale: float = 100.0,
            unit: str = "points") -> Path:
    """A PNG of the gain matrix (rows: main task, columns: auxiliary), cells annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = gain * scale
    n = len(names)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    limit = limit or 1.0
    size = max(4.0, 0.55 * n + 2.5)
    figure, axes = plt.subplots(figsize=(size + 1.2, size))
    shown = np.ma.masked_invalid(values)
    image = axes.imshow(shown, cmap="RdBu", vmin=-limit, vmax=limit)
    labels = short_names(names)
    axes.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(n), labels, fontsize=8)
    axes.set_xlabel("auxiliary task")
    axes.set_ylabel("main task")
    for i in range(n):
        for j in range(n):
            if np.isfinite(values[i, j]):
                axes.text(j, i, f"{values[i, j]:+.1f}", ha="center", va="center", fontsize=6 if n > 10 else 8,
                          color="white" if abs(values[i, j]) > 0.6 * limit else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=f"gain of the main task ({unit})")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_matrix(out: Path, measurement_json: dict, names: list[str], gain: np.ndarray, low: np.ndarray,
                 high: np.ndarray) -> tuple[Path, Path]:
    """``gain_matrix.json`` (everything measured) and ``gain_matrix.csv`` (one row per direction)."""
    out = Path(out)
    json_path, csv_path = out / "gain_matrix.json", out / "gain_matrix.csv"
    json_path.write_text(json.dumps(measurement_json, indent=2, default=str))
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["main", "aux", "mean_gain", "ci_low", "ci_high"])
        for i, main in enumerate(names):
            for j, aux in enumerate(names):
                if i != j and np.isfinite(gain[i, j]):
                    writer.writerow([main, aux, f"{gain[i, j]:.6f}",
                                     "" if math.isnan(low[i, j]) else f"{low[i, j]:.6f}",
                                     "" if math.isnan(high[i, j]) else f"{high[i, j]:.6f}"])
    return json_path, csv_path
