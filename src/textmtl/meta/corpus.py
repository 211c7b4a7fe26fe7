"""The study's data: 20 Newsgroups topics as TF-IDF rows, sampled as §3.3 and §4 say.

* TF-IDF over the ``max_features`` (10,000) most frequent words of the *whole* bydate training
  set (all 11,314 posts, all 20 topics), scikit-learn's defaults otherwise (lower-case, its word
  pattern, l2-normalised rows, smooth idf).
* ``train_per_topic`` (200) training posts per topic, drawn without replacement from the bydate
  train split with ``sample_seed``; the same posts serve every task that uses the topic.
* Test: every bydate test post of the task's two topics.
* ``remove``: parts of each post dropped before anything else. The paper does not say; the
  headers name the newsgroup (``Newsgroups: rec.autos``), which would make every task trivial,
  so the default drops headers, signature footers and quoted replies, as scikit-learn's
  ``fetch_20newsgroups(remove=...)`` does (choice recorded in docs/meta-study.md).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..data.corpora.newsgroups import TOPICS, load_newsgroup_documents, strip_headers
from ..errors import ConfigError
from .engine import TaskArrays

REMOVABLE = ("headers", "footers", "quotes")
_QUOTE = re.compile(r"(writes in|writes:|wrote:|says:|said:|^In article|^Quoted from|^\||^>)")


def strip_footer(post: str) -> str:
    """Drop a signature: everything after the last line that is only ``--`` (if any)."""
    lines = post.strip().split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip().strip("-") == "":
            if lines[i].strip():  # a "--" separator line
                return "\n".join(lines[:i])
    return post


def strip_quotes(post: str) -> str:
    """Drop quoted lines (``>``, ``|``) and the "... writes:" lines that introduce them."""
    return "\n".join(line for line in post.split("\n") if not _QUOTE.search(line))


def clean_post(post: str, remove: tuple[str, ...]) -> str:
    """A post with the parts named in ``remove`` dropped (see :data:`REMOVABLE`)."""
    if "headers" in remove:
        post = strip_headers(post)
    if "footers" in remove:
        post = strip_footer(post)
    if "quotes" in remove:
        post = strip_quotes(post)
    return post


@dataclass(frozen=True)
class CorpusSettings:
    """How the study's documents are drawn and featurised (§3.3, §4; defaults = the paper's)."""

    max_features: int = 10000
    train_per_topic: int = 200
    sample_seed: int = 0
    remove: tuple[str, ...] = REMOVABLE

    def __post_init__(self) -> None:
        unknown = [r for r in self.remove if r not in REMOVABLE]
        if unknown:
            raise ConfigError(f"'remove' must name parts among {', '.join(REMOVABLE)}; found {unknown[0]!r}")
        if self.train_per_topic < 1 or self.max_features < 1:
            raise ConfigError("'train_per_topic' and 'max_features' must be >= 1")


@dataclass
class StudyArrays:
    """The numeric part, which every worker needs: TF-IDF rows by topic."""

    topics: tuple[str, ...]
    train_x: dict[str, sp.csr_matrix]
    test_x: dict[str, sp.csr_matrix]

    def task(self, main: str, other: str) -> TaskArrays:
        """Binary task ``main`` (class 0) vs ``other`` (class 1)."""
        for topic in (main, other):
            if topic not in self.train_x:
                raise ConfigError(f"unknown 20 Newsgroups topic {topic!r}; expected one of {', '.join(self.topics)}")
        train = sp.vstack([self.train_x[main], self.train_x[other]], format="csr")
        test = sp.vstack([self.test_x[main], self.test_x[other]], format="csr")
        train_y = np.repeat([0, 1], [self.train_x[main].shape[0], self.train_x[other].shape[0]])
        test_y = np.repeat([0, 1], [self.test_x[main].shape[0], self.test_x[other].shape[0]])
        return TaskArrays(f"{main}|{other}", train, train_y, test, test_y)


@dataclass
class StudyCorpus:
    """Arrays plus the token lists the meta-features read (parent process only)."""

    arrays: StudyArrays
    train_tokens: dict[str, list[list[str]]] = field(repr=False)
    test_tokens: dict[str, list[list[str]]] = field(repr=False)
    settings: CorpusSettings = field(default_factory=CorpusSettings)


def build_corpus(root: Path, settings: CorpusSettings = CorpusSettings()) -> StudyCorpus:
    """Read the archive once and build the study's TF-IDF rows and token lists."""
    documents = load_newsgroup_documents(root)
    train = {t: [clean_post(p, settings.remove) for p in documents["train"][t]] for t in TOPICS}
    test = {t: [clean_post(p, settings.remove) for p in documents["test"][t]] for t in TOPICS}
    vectorizer = TfidfVectorizer(max_features=settings.max_features, dtype=np.float32)
    vectorizer.fit([post for t in TOPICS for post in train[t]])
    rng = np.random.default_rng(settings.sample_seed)
    sampled = {}
    for topic in TOPICS:  # fixed topic order: each topic's draw does not depend on the others'
        posts = train[topic]
        if len(posts) < settings.train_per_topic:
            raise ConfigError(f"'train_per_topic' is {settings.train_per_topic} but {topic} has "
                              f"only {len(posts)} training posts")
        chosen = np.sort(rng.choice(len(posts), settings.train_per_topic, replace=False))
        sampled[topic] = [posts[i] for i in chosen]
    analyzer = vectorizer.build_analyzer()
    interned: dict[str, str] = {}

    def tokens(post: str) -> list[str]:
        # one string object per word type keeps 2M tokens in a few MB
        return [interned.setdefault(w, sys.intern(w)) for w in analyzer(post)]

    arrays = StudyArrays(
        TOPICS,
        {t: vectorizer.transform(sampled[t]).tocsr() for t in TOPICS},
        {t: vectorizer.transform(test[t]).tocsr() for t in TOPICS},
    )
    return StudyCorpus(arrays, {t: [tokens(p) for p in sampled[t]] for t in TOPICS},
                       {t: [tokens(p) for p in test[t]] for t in TOPICS}, settings)
