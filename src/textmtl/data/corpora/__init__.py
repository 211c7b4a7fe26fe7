"""One module per dataset; each registers a loader in :data:`textmtl.data.datasets.DATASETS`.

This package holds only the helpers the loaders share (reading bytes, splitting lines, seeded
stratified splits). :mod:`textmtl.data.datasets` imports the loader modules explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ..tasks import Split


def read_bytes(path: Path) -> bytes:
    """The bytes of a data file; a missing file is a one-line DataError naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found") from error
    except IsADirectoryError as error:
        raise DataError(f"{path}: expected a file, found a folder") from error


def split_lines(data: bytes) -> list[bytes]:
    """Split on b"\\n" only, dropping a trailing "\\r" and the empty tail after the last newline.

    Never ``str.splitlines``: it also breaks at U+0085, U+2028, \\x1c-\\x1e, which occur inside
    records of FDU-MTL (byte 0x85 decoded as latin-1).
    """
    lines = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def decode_utf8_or_latin1(line: bytes) -> str:
    """UTF-8 where the bytes are valid UTF-8, else latin-1 (every byte one character, none lost)."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def check_fraction(value: float, option: str, dataset: str) -> None:
    """A holdout fraction must lie strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ConfigError(f"'{option}' of dataset {dataset!r} must be in (0, 1), got {value!r}")


def stratified_holdout(labels: Sequence, count: int, seed: int) -> tuple[list[int], list[int]]:
    """Pick ``count`` indices to hold out, stratified by label, reproducibly from ``seed``.

    Every label gets a share proportional to its frequency (largest remainder, so the total is
    exactly ``count``), but never all of its examples: a label seen once stays in the kept part,
    so held-out labels are always seen in training.

    Args:
        labels: one hashable label per example.
        count: how many examples to hold out.
        seed: seed of the ``numpy.random.RandomState`` that picks them.

    Returns:
        (kept indices, held-out indices), each in increasing order so that the examples keep
        their file order.
    """
    rng = np.random.RandomState(seed)
    by_label: dict = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    groups = sorted(by_label.items(), key=lambda item: str(item[0]))  # order fixed by label name
    total = len(labels)
    quotas = [count * len(indices) / total for _, indices in groups]
    shares = [min(int(q), len(ix) - 1) for q, (_, ix) in zip(quotas, groups)]
    # hand the remaining slots to the largest remainders that still have room
    order = sorted(range(len(groups)), key=lambda g: (-(quotas[g] - int(quotas[g])), g))
    left = count - sum(shares)
    while left > 0:
        progressed = False
        for g in order:
            if left and shares[g] < len(groups[g][1]) - 1:
                shares[g] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    held: list[int] = []
    for (_, indices), share in zip(groups, shares):
        held.extend(rng.permutation(indices)[:share].tolist())
    held_set = set(held)
    kept = [i for i in range(total) if i not in held_set]
    return kept, sorted(held)


def seeded_split(split: Split, fraction: float, seed: int, where: str) -> tuple[Split, Split]:
    """Hold out a stratified, seeded ``fraction`` of ``split`` (e.g. a dev set from train).

    Args:
        split: the examples to divide.
        fraction: share of examples held out, rounded to the nearest count.
        seed: seed of the selection.
        where: file or task name for messages.

    Returns:
        (rest, held out), both in file order.
    """
    count = int(round(len(split) * fraction))
    if count <= 0 or count >= len(split):
        raise DataError(
            f"{where}: cannot hold out {fraction:g} of {len(split)} examples "
            f"({count} examples); expected at least 1 in each part"
        )
    kept, held = stratified_holdout(split.labels, count, seed)
    if not held:  # every label occurs once: holding any out would leave it unseen in training
        raise DataError(f"{where}: every label occurs once; cannot hold out examples "
                        "whose labels stay seen in training")
    return (Split([split.texts[i] for i in kept], [split.labels[i] for i in kept]),
            Split([split.texts[i] for i in held], [split.labels[i] for i in held]))
