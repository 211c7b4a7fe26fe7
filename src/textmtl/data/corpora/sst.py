"""Stanford Sentiment Treebank, sentence level, from the official PTB trees.

Each line of ``trees/{train,dev,test}.txt`` is one sentence tree such as
``(3 (2 It) (4 (2 's) ...))``; every node carries a 0-4 sentiment, the root's is the
sentence label, and the text is the leaves joined by single spaces (tokens as in the treebank,
e.g. ``-LRB-``). SST-1 keeps the five classes; SST-2 drops neutral (2) sentences and maps
0-1 to negative, 3-4 to positive. The official train/dev/test splits are used as they are.

References:
    Socher et al. (2013), Recursive Deep Models for Semantic Compositionality over a
    Sentiment Treebank.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from ...errors import DataError
from ..datasets import DATASETS
from ..tasks import Split, Task
from . import read_bytes, split_lines

SST1_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")
SST2_LABELS = ("negative", "positive")

_LEAF = re.compile(r"\(\d ([^()\s]+)\)")  # a preterminal: "(2 It)"
_ROOT = re.compile(r"\((\d) ")


def _read_trees(path: Path) -> tuple[list[str], list[int]]:
    """(sentence, root label 0-4) per tree line."""
    texts, labels = [], []
    for number, line in enumerate(split_lines(read_bytes(path)), start=1):
        try:
            tree = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: line {number} is not valid UTF-8 ({error.reason})") from error
        root = _ROOT.match(tree)
        leaves = _LEAF.findall(tree)
        if root is None or not leaves or tree.count("(") != tree.count(")"):
            raise DataError(f"{path}: line {number} is not a sentiment tree '(label ...)', "
                            f"found {tree[:40]!r}")
        texts.append(" ".join(leaves))
        labels.append(int(root.group(1)))
    return texts, labels


@DATASETS.register("sst")
def load_sst(root: Path, *, variant: Literal["sst1", "sst2"] = "sst2") -> list[Task]:
    """SST as one sentence classification task named ``sst1`` or ``sst2``.

    Args:
        root: the ``sst`` folder.
        variant: ``"sst1"`` (5 classes: 8,544 / 1,101 / 2,210) or ``"sst2"`` (binary, neutral
            dropped: 6,920 / 872 / 1,821).

    Returns:
        One task with the official splits.
    """
    splits = {}
    for split in ("train", "dev", "test"):
        texts, labels = _read_trees(root / "trees" / f"{split}.txt")
        if variant == "sst2":
            kept = [(t, int(y > 2)) for t, y in zip(texts, labels) if y != 2]
            texts, labels = [t for t, _ in kept], [y for _, y in kept]
        splits[split] = Split(texts, labels)
    names = SST1_LABELS if variant == "sst1" else SST2_LABELS
    return [Task(variant, names, splits["train"], splits["dev"], splits["test"],
                 source=str(root / "trees"))]
