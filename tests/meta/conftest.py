"""Tiny synthetic stand-ins for the 20 Newsgroups study: same topic names, few rows, few words."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from textmtl.data.corpora.newsgroups import TOPICS
from textmtl.meta.corpus import StudyArrays
from textmtl.meta.engine import TaskArrays


def synthetic_arrays(n_features: int = 300, train_rows: int = 24, test_rows: int = 20, seed: int = 0) -> StudyArrays:
    """Every topic draws TF-IDF-like rows from its own word distribution (so tasks are learnable)."""
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for t, topic in enumerate(TOPICS):
        favoured = rng.choice(n_features, 30, replace=False)

        def rows(n: int) -> sp.csr_matrix:
            dense = np.zeros((n, n_features), dtype=np.float32)
            for r in range(n):
                words = np.concatenate([rng.choice(favoured, 6), rng.choice(n_features, 6)])
                dense[r, words] = rng.random(len(words)).astype(np.float32)
                dense[r] /= np.linalg.norm(dense[r])
            return sp.csr_matrix(dense)

        train[topic], test[topic] = rows(train_rows), rows(test_rows)
    return StudyArrays(TOPICS, train, test)


def random_task(name: str, rng: np.random.Generator, n: int = 96, n_features: int = 2000,
                words_per_row: int = 40) -> TaskArrays:
    """A binary task over sparse rows whose label depends on a hidden linear rule."""
    rule = rng.normal(size=n_features)

    def rows(count: int) -> sp.csr_matrix:
        matrix = sp.random(count, n_features, density=words_per_row / n_features, random_state=rng,
                           format="csr", dtype=np.float32)
        return sp.csr_matrix(matrix.multiply(1 / np.sqrt(matrix.multiply(matrix).sum(1) + 1e-12)))

    x, xt = rows(n), rows(n // 2)
    return TaskArrays(name, x, (x @ rule > 0).astype(int), xt, (xt @ rule > 0).astype(int))


@pytest.fixture(scope="session")
def study_arrays() -> StudyArrays:
    return synthetic_arrays()
