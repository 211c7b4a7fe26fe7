"""Featurized multi-task data and the batches a training step or an evaluation reads.

Tasks keep their own row ranges into shared feature tables (one per split, plus the
``unlabelled`` texts when a method reads them), so a step that trains several tasks gathers one
combined batch with one index array, and a single-task run reuses the same tables.

A :class:`Batch` carries, besides the encoder inputs, which task each row belongs to, its labels,
whether it is labelled, where it came from (``train`` or ``unlabelled``) and, for methods whose
tasks interact row by row (Zhang et al. 2017's Type-III input), which collection it belongs to:
row i of every task's draw forms collection i.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .inputs import EncoderInput, FeatureTable, InputSpec, TfidfInput, TokenInput
from .tasks import SPLITS, Task

#: label id ignored by the loss (token padding of tagging tasks, unlabelled rows)
IGNORE_LABEL = -100
#: where a training row comes from; ``Batch.source`` holds indices into this tuple
SOURCES = ("train", "unlabelled")
UNLABELLED = "unlabelled"


class Draw(NamedTuple):
    """Rows of one task in one step: ``count`` rows (or the given positions) from ``source``."""

    task: int
    rows: int | np.ndarray
    source: str = "train"


@dataclass
class Batch:
    """One combined batch of rows of several tasks (B rows).

    Attributes:
        inputs: the encoder inputs of all rows.
        task_index: (B,) long, the task of each row.
        labels: (B,) long, or (B, T) for tagging tasks; IGNORE_LABEL where unlabelled.
        labelled: (B,) bool, False for rows without a label (unlabelled text).
        source: (B,) long, index into :data:`SOURCES`.
        collection: (B,) long or None: rows with the same id form one collection (one row of
            each task), for methods whose rows interact.
        level: "sequence" (one label per row) or "token" (one label per token).
    """

    inputs: EncoderInput
    task_index: torch.Tensor
    labels: torch.Tensor
    labelled: torch.Tensor
    source: torch.Tensor
    collection: torch.Tensor | None = None
    level: str = "sequence"

    @classmethod
    def of(cls, inputs: EncoderInput, task_index: torch.Tensor,
           labels: torch.Tensor | None = None, level: str = "sequence") -> "Batch":
        """A batch of labelled training rows (labels may be omitted for prediction)."""
        size = task_index.shape[0]
        if labels is None:
            labels = torch.full((size,), IGNORE_LABEL, dtype=torch.long)
        return cls(inputs, task_index, labels, torch.ones(size, dtype=torch.bool),
                   torch.zeros(size, dtype=torch.long), None, level)

    @property
    def size(self) -> int:
        return int(self.task_index.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if value is not None and hasattr(value, "to") and name != "level":
                moved[name] = value.to(device)
        return Batch(**moved)

    def truncated(self, max_tokens: int) -> "Batch":
        """Every text cut to its first ``max_tokens`` tokens (token inputs only; tagging labels
        cut alike). The batch itself when no text is longer."""
        inputs = self.inputs
        if not isinstance(inputs, TokenInput):
            raise TypeError(f"only token inputs can be cut to a number of tokens, not {type(inputs).__name__}")
        if inputs.token_ids.shape[1] <= max_tokens:
            return self
        char_ids = None if inputs.char_ids is None else inputs.char_ids[:, :max_tokens]
        cut = TokenInput(inputs.token_ids[:, :max_tokens], inputs.lengths.clamp(max=max_tokens), char_ids)
        labels = self.labels[:, :max_tokens] if self.labels.dim() == 2 else self.labels
        return replace(self, inputs=cut, labels=labels)

    def select(self, rows: torch.Tensor) -> "Batch":
        """The sub-batch of ``rows`` ((R,) long), in that order."""
        return replace(self, inputs=self.inputs.select(rows), task_index=self.task_index[rows],
                       labels=self.labels[rows], labelled=self.labelled[rows],
                       source=self.source[rows],
                       collection=None if self.collection is None else self.collection[rows])


@dataclass
class EvaluationChunk:
    """One evaluation batch: the rows of ``draws`` go in, the rows of the first draw (task
    ``task``) are scored. Methods whose rows interact put rows of the other tasks beside them
    (``collections``: row i of every draw forms collection i).

    ``companion_split`` names the split the draws after the first are read from (None: the
    evaluated split), so the companions of a scored row may be training rows. A position the
    first draw lists several times (one copy per companion draw) is scored once, on the mean
    of its copies' class probabilities.
    """

    task: int
    draws: list[tuple[int, np.ndarray]]
    collections: bool = False
    companion_split: str | None = None


def per_task_plan(split_sizes: Sequence[int], batch_size: int) -> list[EvaluationChunk]:
    """The default evaluation plan: each task's rows alone, in order, ``batch_size`` at a time."""
    return [EvaluationChunk(k, [(k, np.arange(start, min(start + batch_size, size)))])
            for k, size in enumerate(split_sizes) for start in range(0, size, batch_size)]


@dataclass
class MultiTaskData:
    """Featurized splits of several tasks.

    Attributes:
        tasks: the tasks, in task-id order.
        tables: split -> feature table holding the rows of all tasks (possibly more); the
            ``unlabelled`` table exists when the data was built with unlabelled texts.
        rows: split -> per task, the task's row ids in that table.
        spec: the encoder input spec of the featurizer.
        featurizer: the fitted featurizer (saved with a trained model, to read new text).
    """

    tasks: list[Task]
    tables: dict[str, FeatureTable]
    rows: dict[str, list[np.ndarray]]
    spec: InputSpec
    featurizer: object = None

    @classmethod
    def build(cls, tasks: list[Task], featurizer, unlabelled: bool = False,
              unlabelled_in_vocabulary: bool = False) -> "MultiTaskData":
        """Fit ``featurizer`` on the training texts of all tasks and featurize every split.

        Args:
            tasks: the tasks.
            featurizer: an unfitted featurizer.
            unlabelled: also featurize each task's unlabelled texts (``Task.unlabeled``) into
                an ``unlabelled`` table (tasks without any get no rows there).
            unlabelled_in_vocabulary: fit the featurizer on the unlabelled texts too.
        """
        fit_texts = [t for task in tasks for t in task.train.texts]
        if unlabelled and unlabelled_in_vocabulary:
            fit_texts += [t for task in tasks for t in (task.unlabeled or [])]
        try:
            featurizer.fit(fit_texts)
        except ConfigError as error:
            # the settings may be fine and the texts not: name where the texts came from
            sources = ", ".join(f"{t.name} ({t.source})" if t.source and t.source != t.name
                                else t.name for t in tasks)
            raise ConfigError(f"{error}; the training texts of: {sources}") from None
        parts = {split: [task.split(split).texts for task in tasks] for split in SPLITS}
        if unlabelled:
            parts[UNLABELLED] = [list(task.unlabeled or []) for task in tasks]
        tables, rows = {}, {}
        for split, per_task_texts in parts.items():
            texts, per_task, start = [], [], 0
            for part in per_task_texts:
                texts.extend(part)
                per_task.append(np.arange(start, start + len(part)))
                start += len(part)
            tables[split] = featurizer.transform(texts) if texts else None
            rows[split] = per_task
        return cls(tasks, tables, rows, featurizer.spec(), featurizer)

    def subset(self, names: list[str]) -> "MultiTaskData":
        """The same tables restricted to the named tasks (e.g. one task for a single-task run)."""
        index = [self.task_names.index(n) for n in names]
        return MultiTaskData([self.tasks[i] for i in index], self.tables,
                             {s: [r[i] for i in index] for s, r in self.rows.items()}, self.spec,
                             self.featurizer)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def train_sizes(self) -> list[int]:
        return [len(r) for r in self.rows["train"]]

    def unlabelled_sizes(self) -> list[int]:
        """Unlabelled rows per task (zeros when the data was built without them)."""
        return [len(r) for r in self.rows.get(UNLABELLED, [np.empty(0)] * len(self.tasks))]

    def level(self, task_id: int) -> str:
        return "token" if self.tasks[task_id].kind == "tagging" else "sequence"

    def batch(self, split: str, parts: Sequence[tuple], collections: bool = False,
              splits: Sequence[str | None] | None = None) -> Batch:
        """Gather one combined batch.

        Args:
            split: "train", "dev" or "test"; a part whose third element is ``"unlabelled"``
                (a :class:`Draw`) reads the task's unlabelled rows instead.
            parts: (task id, positions within the task's split[, source]) triples; all of one
                level (all classification or all tagging tasks).
            collections: row i of every part belongs to collection i (all parts must then have
                the same number of rows).
            splits: optionally, the split each part reads (None entries: ``split``), e.g.
                training rows beside evaluated ones (``EvaluationChunk.companion_split``).
        Returns:
            The batch; tagging labels are (B, T) padded with IGNORE_LABEL, and gold tokens the
            input cut off are not in it (evaluation scores them separately).
        """
        sources = [part[2] if len(part) > 2 else "train" for part in parts]
        levels = {self.level(part[0]) for part in parts}
        if len(levels) != 1:
            raise ValueError("a batch holds tasks of one level; split mixed steps by level first")
        level = levels.pop()
        part_splits = [split] * len(parts) if splits is None else [s or split for s in splits]
        if len(part_splits) != len(parts):
            raise ValueError(f"'splits' names {len(part_splits)} splits for {len(parts)} parts")
        pieces = []
        for (k, pos, *_), source, part_split in zip(parts, sources, part_splits):
            table_split = UNLABELLED if source == UNLABELLED else part_split
            pieces.append((table_split, self.rows[table_split][k][pos]))
        inputs = _gather(self.tables, pieces)
        task_index = torch.from_numpy(
            np.concatenate([np.full(len(part[1]), part[0], dtype=np.int64) for part in parts]))
        labelled = torch.from_numpy(np.concatenate(
            [np.full(len(part[1]), source != UNLABELLED) for part, source in zip(parts, sources)]))
        source_ids = torch.from_numpy(np.concatenate(
            [np.full(len(part[1]), SOURCES.index(source), dtype=np.int64)
             for part, source in zip(parts, sources)]))
        label_rows = [self.tasks[k].split(part_split).labels[i] if source != UNLABELLED else None
                      for (k, pos, *_), source, part_split in zip(parts, sources, part_splits)
                      for i in pos]
        if level == "sequence":
            labels = torch.tensor([IGNORE_LABEL if y is None else y for y in label_rows],
                                  dtype=torch.long)
        else:
            width = inputs.token_ids.shape[1]
            labels = torch.full((len(label_rows), width), IGNORE_LABEL, dtype=torch.long)
            for b, row in enumerate(label_rows):
                if row is not None:
                    row = row[:width]
                    labels[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        collection = None
        if collections:
            sizes = {len(part[1]) for part in parts}
            if len(sizes) != 1:
                raise ValueError(f"collections need the same rows per task, got sizes {sorted(sizes)}")
            collection = torch.arange(sizes.pop()).repeat(len(parts))
        return Batch(inputs, task_index, labels, labelled, source_ids, collection, level)


def _gather(tables: dict[str, FeatureTable], pieces: list[tuple[str, np.ndarray]]) -> EncoderInput:
    """Rows of one or several tables as one encoder input (one gather per table)."""
    splits = [split for split, _ in pieces]
    if len(set(splits)) == 1:
        return tables[splits[0]].gather(np.concatenate([rows for _, rows in pieces]))
    # rows of the labelled split and of the unlabelled texts: gather each, then concatenate
    # in the order of the pieces
    return concatenate_inputs([tables[split].gather(rows) for split, rows in pieces])


def concatenate_inputs(parts: list[EncoderInput]) -> EncoderInput:
    """Stack encoder inputs of one kind along the batch, padding every other dimension with 0.

    Right padding with 0 (the padding id) is what every token featurizer produces, and every
    encoder is padding-invariant, so the rows encode as they would alone.
    """
    first = parts[0]
    if isinstance(first, TfidfInput):
        sizes = [p.indices.shape[0] for p in parts]
        shifts = np.cumsum([0] + sizes[:-1])
        return TfidfInput(torch.cat([p.indices for p in parts]),
                          torch.cat([p.offsets + int(s) for p, s in zip(parts, shifts)]),
                          torch.cat([p.weights for p in parts]))
    merged = {}
    for f in fields(first):
        values = [getattr(p, f.name) for p in parts]
        if values[0] is None:
            merged[f.name] = None
            continue
        shape = [max(v.shape[d] for v in values) for d in range(1, values[0].dim())]
        padded = []
        for v in values:
            pad = []
            for d in reversed(range(1, v.dim())):
                pad += [0, shape[d - 1] - v.shape[d]]
            padded.append(torch.nn.functional.pad(v, pad) if any(pad) else v)
        merged[f.name] = torch.cat(padded)
    return type(first)(**merged)
