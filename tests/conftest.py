"""Tiny synthetic corpora for property tests (the real datasets are for loader tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.tasks import Split, Task

torch.set_num_threads(1)

WORDS = [f"w{i}" for i in range(40)]


def synthetic_task(name: str, num_classes: int, seed: int, sizes=(48, 16, 16)) -> Task:
    """A task whose label is the class of its most frequent cue word; texts of varied length.

    Each class c has cue words ``c{c}a``/``c{c}b`` (shared across tasks, so sharing can help).
    Sentences end with '.', so hierarchical encoders see several sentences.
    """
    rng = np.random.default_rng(seed)
    splits = []
    for size in sizes:
        texts, labels = [], []
        for i in range(size):
            label = int(rng.integers(num_classes))
            length = int(rng.integers(3, 18))
            tokens = list(rng.choice(WORDS, size=length))
            for _ in range(int(rng.integers(1, 4))):
                tokens.insert(int(rng.integers(len(tokens) + 1)), f"c{label}{'ab'[i % 2]}")
            if length > 8:
                tokens.insert(length // 2, ".")
            texts.append(" ".join(tokens) + " .")
            labels.append(label)
        splits.append(Split(texts, labels))
    return Task(name, tuple(f"class{c}" for c in range(num_classes)), *splits)


@pytest.fixture(scope="session")
def synthetic_tasks() -> list[Task]:
    """Three tasks with 2, 3 and 2 classes (unequal label spaces exercise head masking)."""
    return [synthetic_task("alpha", 2, 1), synthetic_task("beta", 3, 2, sizes=(40, 12, 12)),
            synthetic_task("gamma", 2, 3, sizes=(56, 16, 16))]
