"""Featurized multi-task data: one feature table per split with the rows of every task.

Tasks keep their own row ranges into the shared tables, so a step that trains several tasks
gathers one combined batch with one index array, and a single-task run reuses the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .inputs import EncoderInput, FeatureTable, InputSpec
from .tasks import SPLITS, Task

#: label id ignored by the loss (token padding of tagging tasks)
IGNORE_LABEL = -100


@dataclass
class MultiTaskData:
    """Featurized splits of several tasks.

    Attributes:
        tasks: the tasks, in task-id order.
        tables: split -> feature table holding the rows of all tasks (possibly more).
        rows: split -> per task, the task's row ids in that table.
        spec: the encoder input spec of the featurizer.
    """

    tasks: list[Task]
    tables: dict[str, FeatureTable]
    rows: dict[str, list[np.ndarray]]
    spec: InputSpec

    @classmethod
    def build(cls, tasks: list[Task], featurizer) -> "MultiTaskData":
        """Fit ``featurizer`` on the training texts of all tasks and featurize every split."""
        featurizer.fit([t for task in tasks for t in task.train.texts])
        tables, rows = {}, {}
        for split in SPLITS:
            texts, per_task, start = [], [], 0
            for task in tasks:
                part = task.split(split).texts
                texts.extend(part)
                per_task.append(np.arange(start, start + len(part)))
                start += len(part)
            tables[split] = featurizer.transform(texts)
            rows[split] = per_task
        return cls(tasks, tables, rows, featurizer.spec())

    def subset(self, names: list[str]) -> "MultiTaskData":
        """The same tables restricted to the named tasks (e.g. one task for a single-task run)."""
        index = [self.task_names.index(n) for n in names]
        return MultiTaskData([self.tasks[i] for i in index], self.tables,
                             {s: [r[i] for i in index] for s, r in self.rows.items()}, self.spec)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def train_sizes(self) -> list[int]:
        return [len(r) for r in self.rows["train"]]

    def batch(self, split: str, parts: list[tuple[int, np.ndarray]]
              ) -> tuple[EncoderInput, torch.Tensor, torch.Tensor]:
        """Gather one combined batch.

        Args:
            split: "train", "dev" or "test".
            parts: (task id, positions within the task's split) pairs.
        Returns:
            (inputs, task_index (B,), labels (B,) or (B, T) padded with IGNORE_LABEL).
        """
        global_rows = np.concatenate([self.rows[split][k][pos] for k, pos in parts])
        inputs = self.tables[split].gather(global_rows)
        task_index = torch.from_numpy(
            np.concatenate([np.full(len(pos), k, dtype=np.int64) for k, pos in parts]))
        labels = [self.tasks[k].split(split).labels[i] for k, pos in parts for i in pos]
        if self.tasks[parts[0][0]].kind == "classification":
            return inputs, task_index, torch.tensor(labels, dtype=torch.long)
        width = inputs.token_ids.shape[1]  # tokens beyond the featurizer's max_length are cut
        padded = torch.full((len(labels), width), IGNORE_LABEL, dtype=torch.long)
        for b, row in enumerate(labels):
            row = row[:width]
            padded[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        return inputs, task_index, padded
