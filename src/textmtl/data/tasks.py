"""The Task abstraction: a name, a label space and fixed train/dev/test splits.

A classification task holds one text and one label per example. A tagging task (CoNLL-2000
chunking, POS) holds one token list and one label per token. Labels are stored as integer ids
into ``Task.labels``; the label names are kept so that results and errors speak in them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from ..errors import DataError

TaskKind = Literal["classification", "tagging"]
SPLITS = ("train", "dev", "test")


@dataclass
class Split:
    """One split of a task.

    Attributes:
        texts: classification: one string per example; tagging: one token list per sentence.
        labels: classification: one label id per example; tagging: one list of ids per sentence.
    """

    texts: list
    labels: list

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Task:
    """A labelled text task with fixed splits.

    Attributes:
        name: unique name within an experiment (e.g. ``"books"``, ``"trec_coarse"``).
        labels: the label names; ids index into this tuple.
        train, dev, test: the splits. Model selection uses ``dev`` only.
        kind: ``"classification"`` or ``"tagging"``.
        unlabeled: unlabelled texts of the task's domain, for methods that use them.
        source: where the data was read from (a path), for messages.
    """

    name: str
    labels: tuple[str, ...]
    train: Split
    dev: Split
    test: Split
    kind: TaskKind = "classification"
    unlabeled: list[str] | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        where = self.source or self.name
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"{where}: task {self.name!r} has duplicate label names {self.labels}")
        for split_name in SPLITS:
            split = getattr(self, split_name)
            if len(split.texts) != len(split.labels):
                raise DataError(
                    f"{where}: {split_name} split of task {self.name!r} has "
                    f"{len(split.texts)} texts but {len(split.labels)} labels"
                )
            if len(split) == 0:
                raise DataError(
                    f"{where}: {split_name} split of task {self.name!r} is empty; "
                    "expected at least one example"
                )
            ids = split.labels if self.kind == "classification" else [
                i for row in split.labels for i in row]
            bad = [i for i in ids if not (isinstance(i, int) and 0 <= i < len(self.labels))]
            if bad:
                raise DataError(
                    f"{where}: {split_name} split of task {self.name!r} has label id {bad[0]!r}; "
                    f"expected an id in 0..{len(self.labels) - 1}"
                )
        # a one-class task trains a head that is always right: it scores 100 % and lifts the
        # table's average while nothing was learned
        seen = set(self.train.labels) if self.kind == "classification" else \
            {i for row in self.train.labels for i in row}
        if len(seen) < 2:
            only = self.labels[next(iter(seen))] if seen else "(none)"
            raise DataError(f"{where}: the training split of task {self.name!r} has one label "
                            f"({only!r}); expected at least two different labels")
        if self.kind == "classification" and not any(str(t).strip() for t in self.train.texts):
            raise DataError(f"{where}: every training text of task {self.name!r} is empty; "
                            f"expected text in the text column")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def limited(self, max_rows: dict[str, int], seed: int = 0) -> "Task":
        """The task with at most ``max_rows[split]`` rows in each split named there.

        For quick checks of a whole config (``max_rows`` in a config, ``--set max_rows.train=200``):
        the kept rows are a seeded sample that takes the classes in turn (classification), so a
        small sample keeps every class the split has while it can; their order is the split's.
        A split not named, or with fewer rows, is kept whole.

        Args:
            max_rows: split name (``train``, ``dev``, ``test``) -> the most rows to keep (>= 1).
            seed: the sample's seed (the same rows for every method and seed of a run).
        Returns:
            A new task; ``meta["max_rows"]`` records the limits.
        """
        import numpy as np

        splits = {}
        for name in SPLITS:
            split = getattr(self, name)
            limit = max_rows.get(name)
            if limit is None or len(split) <= limit:
                splits[name] = split
                continue
            order = np.random.default_rng([seed, SPLITS.index(name)]).permutation(len(split))
            if self.kind == "classification":
                # round-robin over the classes, each class's rows in the seeded order
                by_class: dict[int, list[int]] = {}
                for i in order:
                    by_class.setdefault(split.labels[i], []).append(int(i))
                queues = [by_class[c] for c in sorted(by_class)]
                picked: list[int] = []
                while len(picked) < limit:
                    for queue in queues:
                        if queue and len(picked) < limit:
                            picked.append(queue.pop(0))
            else:
                picked = [int(i) for i in order[:limit]]
            keep = sorted(picked)
            splits[name] = Split([split.texts[i] for i in keep], [split.labels[i] for i in keep])
        return replace(self, **splits, meta={**self.meta, "max_rows": dict(max_rows)})

    def label_counts(self, split: str = "train") -> dict[str, int]:
        """Examples per label name (tokens per tag for tagging tasks)."""
        rows = self.split(split).labels
        ids = rows if self.kind == "classification" else [i for r in rows for i in r]
        counts = Counter(ids)
        return {self.labels[i]: counts.get(i, 0) for i in range(len(self.labels))}

    def sizes(self) -> dict[str, int]:
        return {s: len(self.split(s)) for s in SPLITS}


def encode_labels(names: Sequence[str], label_names: Sequence[str], where: str) -> list[int]:
    """Map label names to ids; a name outside ``label_names`` is a :class:`DataError`.

    Used for dev/test labels, which must be seen in training.
    """
    index = {name: i for i, name in enumerate(label_names)}
    out = []
    for position, name in enumerate(names):
        if name not in index:
            raise DataError(
                f"{where}: label {name!r} (example {position + 1}) was not seen in training; "
                f"expected one of {sorted(index)}"
            )
        out.append(index[name])
    return out


def split_off_dev(split: Split, dev_size: int, where: str) -> tuple[Split, Split]:
    """Take the last ``dev_size`` examples of ``split`` as dev (FDU-MTL's convention)."""
    if dev_size <= 0 or dev_size >= len(split):
        raise DataError(
            f"{where}: cannot take a dev split of {dev_size} from {len(split)} training examples"
        )
    cut = len(split) - dev_size
    return (Split(split.texts[:cut], split.labels[:cut]),
            Split(split.texts[cut:], split.labels[cut:]))
