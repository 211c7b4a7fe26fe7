"""TREC question classification (Li & Roth 2002): 6 coarse or 50 fine question types.

Lines are ``COARSE:fine question tokens ...``. ``train_5500.label`` has one latin-1 byte, so
both files are decoded as latin-1. Test is ``TREC_10.label``; dev is a seeded, stratified
``dev_fraction`` of the training file (the data set has no dev split).

References:
    Li and Roth (2002), Learning Question Classifiers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ...errors import DataError
from ..datasets import DATASETS
from ..tasks import Split, Task, encode_labels
from . import check_fraction, read_bytes, seeded_split, split_lines

TRAIN_FILE = "train_5500.label"
TEST_FILE = "TREC_10.label"


def _read(path: Path, labels: str) -> tuple[list[str], list[str]]:
    texts, names = [], []
    for number, line in enumerate(split_lines(read_bytes(path)), start=1):
        label, space, text = line.decode("latin-1").partition(" ")
        coarse, colon, fine = label.partition(":")
        if not space or not colon or not coarse or not fine:
            raise DataError(
                f"{path}: line {number} should be 'COARSE:fine question', found {line[:40]!r}"
            )
        texts.append(text)
        # fine labels keep their coarse prefix: "other" exists under ENTY, LOC and NUM
        names.append(coarse if labels == "coarse" else label)
    return texts, names


@DATASETS.register("trec")
def load_trec(root: Path, *, labels: Literal["coarse", "fine"] = "coarse",
              dev_fraction: float = 0.1, seed: int = 0) -> list[Task]:
    """TREC as one task named ``trec_coarse`` or ``trec_fine``.

    Args:
        root: the ``trec`` folder.
        labels: ``"coarse"`` (6 classes) or ``"fine"`` (50 in train, written ``"NUM:date"``).
        dev_fraction: share of ``train_5500.label`` held out as dev (stratified, seeded).
        seed: seed of the dev selection.

    Returns:
        One task; label names sorted. With the defaults 4,907 / 545 / 500 examples.
        A test label unseen in training is a DataError.
    """
    check_fraction(dev_fraction, "dev_fraction", "trec")
    train_texts, train_names = _read(root / TRAIN_FILE, labels)
    test_texts, test_names = _read(root / TEST_FILE, labels)
    label_names = tuple(sorted(set(train_names)))
    full = Split(train_texts, encode_labels(train_names, label_names, str(root / TRAIN_FILE)))
    test = Split(test_texts, encode_labels(test_names, label_names, str(root / TEST_FILE)))
    train, dev = seeded_split(full, dev_fraction, seed, str(root / TRAIN_FILE))
    return [Task(f"trec_{labels}", label_names, train, dev, test, source=str(root))]
