"""The study's data: 20 Newsgroups topics as TF-IDF rows, sampled as a protocol says.

* TF-IDF over the ``max_features`` (10,000) most frequent words of the *whole* bydate training
  set (all 11,314 posts, all 20 topics), scikit-learn's defaults otherwise (lower-case, its word
  pattern, l2-normalised rows, smooth idf). Both protocols (docs/meta-study.md).
* ``remove``: parts of each post dropped before anything else. The headers name the newsgroup
  (``Newsgroups: rec.autos``), which would make every task trivial, so both protocols drop
  headers, signature footers and quoted replies. ``cleaning`` says whose rules: "sklearn" is
  scikit-learn's ``fetch_20newsgroups(remove=...)`` exactly (the authors' code), "textmtl" this
  package's first reading of them (a footer is cut at a ``--`` line only; scikit-learn cuts at
  the last blank or ``--`` line, which drops the last paragraph of most posts).
* Training documents, ``sampling``:

  - "per_topic" (cleaned): ``train_per_topic`` (200) posts per topic, drawn once with
    ``sample_seed``; a task of two topics has 400, the same posts in every task and seed;
  - "per_task" (authors): ``train_per_task`` (200) posts drawn from the pair's training posts
    together (not balanced), anew for every task and seed, as the authors' ``make_inputs``
    draws them for every task of every run.

* Test documents: every test post of the task's two topics, or (``test_per_task``: the authors'
  700) as many drawn at random, anew for every task and seed.
* ``mtl_equal_test``: a multi-task run cuts both tasks' test sets to the length of the shorter,
  as the authors' ``run_models.py`` does before ``fit``; the test rows are then in drawn
  (random) order, so the cut keeps a random subset.

Class 0 of a task is the topic named first; the study names a task's topics in name order, which
is also scikit-learn's label order for ``fetch_20newsgroups(categories=...)``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..data.corpora.newsgroups import TOPICS, load_newsgroup_documents, strip_headers
from ..errors import ConfigError
from .engine import TaskArrays

REMOVABLE = ("headers", "footers", "quotes")
CLEANINGS = ("textmtl", "sklearn")
SAMPLINGS = ("per_topic", "per_task")
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


def sklearn_strip_header(post: str) -> str:
    """scikit-learn's header rule: everything after the first blank line ("" if there is none)."""
    return post.partition("\n\n")[2]


def sklearn_strip_footer(post: str) -> str:
    """scikit-learn's footer rule: cut at the last line that is blank or only dashes, once the
    post is stripped; a post whose only such line is its first is returned whole (unstripped)."""
    lines = post.strip().split("\n")
    line_num = 0
    for line_num in range(len(lines) - 1, -1, -1):
        if lines[line_num].strip().strip("-") == "":
            break
    return "\n".join(lines[:line_num]) if line_num > 0 else post


def clean_post(post: str, remove: tuple[str, ...], cleaning: str = "textmtl") -> str:
    """A post with the parts named in ``remove`` dropped (see :data:`REMOVABLE`), by the rules of
    ``cleaning`` (:data:`CLEANINGS`), in scikit-learn's order: headers, footers, quotes."""
    sklearn_rules = cleaning == "sklearn"
    if "headers" in remove:
        post = sklearn_strip_header(post) if sklearn_rules else strip_headers(post)
    if "footers" in remove:
        post = sklearn_strip_footer(post) if sklearn_rules else strip_footer(post)
    if "quotes" in remove:
        post = strip_quotes(post)
    return post


@dataclass(frozen=True)
class CorpusSettings:
    """How the study's documents are drawn and featurised (defaults: the cleaned protocol's;
    the module docstring says what each means)."""

    max_features: int = 10000
    train_per_topic: int = 200
    sample_seed: int = 0
    remove: tuple[str, ...] = REMOVABLE
    cleaning: str = "textmtl"
    sampling: str = "per_topic"
    train_per_task: int = 200
    test_per_task: int | None = None
    mtl_equal_test: bool = False

    #: added after the first study; left out of run keys while at their defaults (see
    #: :attr:`textmtl.meta.engine.TrainSettings.ADDED_FIELDS`)
    ADDED_FIELDS: ClassVar[tuple[str, ...]] = ("cleaning", "sampling", "train_per_task", "test_per_task",
                                               "mtl_equal_test")

    def __post_init__(self) -> None:
        unknown = [r for r in self.remove if r not in REMOVABLE]
        if unknown:
            raise ConfigError(f"'remove' must name parts among {', '.join(REMOVABLE)}; found {unknown[0]!r}")
        if self.train_per_topic < 1 or self.max_features < 1 or self.train_per_task < 1:
            raise ConfigError("'train_per_topic', 'train_per_task' and 'max_features' must be >= 1")
        if self.test_per_task is not None and self.test_per_task < 1:
            raise ConfigError(f"'test_per_task' must be >= 1 or None (every test post), got {self.test_per_task}")
        for name, allowed in (("cleaning", CLEANINGS), ("sampling", SAMPLINGS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"'{name}' must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")

    @property
    def draws_per_seed(self) -> bool:
        """Whether a task's documents depend on the run's seed (drawn anew for every seed)."""
        return self.sampling == "per_task" or self.test_per_task is not None or self.mtl_equal_test


@dataclass(frozen=True)
class TaskRows:
    """Which posts a task uses: rows of ``[posts of topic a; posts of topic b]`` (a, b in name
    order) for training and test, in drawn order; None = all, topic a's first."""

    train: np.ndarray | None
    test: np.ndarray | None


@dataclass
class StudyArrays:
    """The numeric part, which every worker needs: TF-IDF rows by topic.

    ``train_x[topic]`` holds the sampled posts (sampling "per_topic") or every training post
    ("per_task", drawn per task by :meth:`rows`); ``test_x[topic]`` every test post.
    """

    topics: tuple[str, ...]
    train_x: dict[str, sp.csr_matrix]
    test_x: dict[str, sp.csr_matrix]
    settings: CorpusSettings = field(default_factory=CorpusSettings)
    #: a number per topic that keys its draws; None: its index in ``topics`` (20 Newsgroups'
    #: fixed order). A collection of tasks keys by name, so a task's draws do not depend on
    #: which other tasks share the collection.
    draw_keys: dict[str, int] | None = None

    def _check(self, *names: str) -> None:
        for topic in names:
            if topic not in self.train_x:
                raise ConfigError(f"unknown topic {topic!r}; expected one of {', '.join(self.topics)}")

    def rows(self, main: str, other: str, seed: int = 0) -> TaskRows:
        """The posts of task ``main`` vs ``other`` for ``seed`` (see :class:`TaskRows`).

        Drawn from a generator keyed by (sample seed, seed, the two topics), never from a shared
        stream, so a task's draw does not depend on which other tasks were drawn before it.
        """
        self._check(main, other)
        settings = self.settings
        a, b = sorted((main, other))
        keys = self.draw_keys
        key = [settings.sample_seed, seed, *((keys[a], keys[b]) if keys else (self.topics.index(a), self.topics.index(b)))]
        rng = np.random.default_rng(key)
        train = test = None
        if settings.sampling == "per_task":
            pool = self.train_x[a].shape[0] + self.train_x[b].shape[0]
            if settings.train_per_task > pool:
                raise ConfigError(f"'train_per_task' is {settings.train_per_task} but {a} and {b} have only "
                                  f"{pool} training posts")
            train = rng.choice(pool, settings.train_per_task, replace=False)
        if settings.test_per_task is not None or settings.mtl_equal_test:
            pool = self.test_x[a].shape[0] + self.test_x[b].shape[0]
            wanted = pool if settings.test_per_task is None else min(settings.test_per_task, pool)
            test = rng.choice(pool, wanted, replace=False)
        return TaskRows(train, test)

    def train_size(self, main: str, other: str) -> int:
        """Training rows of a task (without building it)."""
        self._check(main, other)
        if self.settings.sampling == "per_task":
            return self.settings.train_per_task
        return self.train_x[main].shape[0] + self.train_x[other].shape[0]

    def task(self, main: str, other: str, seed: int = 0) -> TaskArrays:
        """Binary task ``main`` (class 0) vs ``other`` (class 1) for the run of ``seed``."""
        rows = self.rows(main, other, seed)
        train_x, train_y = _select(self.train_x, main, other, rows.train)
        test_x, test_y = _select(self.test_x, main, other, rows.test)
        return TaskArrays(f"{main}|{other}", train_x, train_y, test_x, test_y)

    def run_tasks(self, names: list[str], seed: int) -> tuple[TaskArrays, ...]:
        """The tasks of one run (names ``a|b``), each test set cut to the shortest when
        ``mtl_equal_test`` says so and the run has several tasks."""
        tasks = tuple(self.task(*name.split("|"), seed=seed) for name in names)
        if self.settings.mtl_equal_test and len(tasks) > 1:
            shortest = min(t.test_x.shape[0] for t in tasks)
            tasks = tuple(TaskArrays(t.name, t.train_x, t.train_y, t.test_x[:shortest], t.test_y[:shortest],
                                     t.num_classes) for t in tasks)
        return tasks


def _select(by_topic: dict[str, sp.csr_matrix], main: str, other: str,
            rows: np.ndarray | None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows and labels (main = 0) of ``[a; b]`` (name order) picked by ``rows`` (None: all, main's first)."""
    if rows is None:
        x = sp.vstack([by_topic[main], by_topic[other]], format="csr")
        return x, np.repeat([0, 1], [by_topic[main].shape[0], by_topic[other].shape[0]])
    a, b = sorted((main, other))
    in_b = rows >= by_topic[a].shape[0]
    x = sp.vstack([by_topic[a], by_topic[b]], format="csr")[rows]
    return x, (in_b if main == a else ~in_b).astype(np.int64)


@dataclass
class TaskDocuments:
    """A task's texts as one run saw them: training texts by class, test texts with labels."""

    train: tuple[list, list]
    test: list
    test_labels: np.ndarray

    def test_by_class(self) -> tuple[list, list]:
        return ([t for t, y in zip(self.test, self.test_labels) if y == 0],
                [t for t, y in zip(self.test, self.test_labels) if y == 1])


@dataclass
class StudyCorpus:
    """Arrays plus the cleaned texts the meta-features read (parent process only).

    ``train_texts[topic]`` and ``test_texts[topic]`` are aligned with the rows of
    ``arrays.train_x[topic]`` / ``arrays.test_x[topic]``.
    """

    arrays: StudyArrays
    train_texts: dict[str, list[str]] = field(repr=False)
    test_texts: dict[str, list[str]] = field(repr=False)
    settings: CorpusSettings = field(default_factory=CorpusSettings)
    analyzer: Callable[[str], list[str]] | None = field(default=None, repr=False)
    _tokens: dict[tuple[str, str], list[list[str]]] = field(default_factory=dict, repr=False)

    def documents(self, main: str, other: str, seed: int = 0, *, as_tokens: bool = False) -> TaskDocuments:
        """The texts (or, ``as_tokens``, the token lists) of task ``main`` (class 0) vs ``other``
        in the run of ``seed``."""
        rows = self.arrays.rows(main, other, seed)
        if as_tokens:
            train_items = {t: self.tokens("train", t) for t in (main, other)}
            test_items = {t: self.tokens("test", t) for t in (main, other)}
        else:
            train_items, test_items = self.train_texts, self.test_texts
        train = _pick(train_items, main, other, rows.train)
        test = _pick(test_items, main, other, rows.test)
        return TaskDocuments((train[0], train[1]), test[2], test[3])

    def tokens(self, split: str, topic: str) -> list[list[str]]:
        """scikit-learn word tokens (the TF-IDF analyzer's) of every post of ``topic``, cached."""
        if (split, topic) not in self._tokens:
            if self.analyzer is None:
                raise ValueError("this corpus has no analyzer: built without build_corpus")
            interned: dict[str, str] = {}
            texts = (self.train_texts if split == "train" else self.test_texts)[topic]
            # one string object per word type keeps 2M tokens in a few MB
            self._tokens[split, topic] = [[interned.setdefault(w, sys.intern(w)) for w in self.analyzer(p)]
                                          for p in texts]
        return self._tokens[split, topic]

    @property
    def train_tokens(self) -> dict[str, list[list[str]]]:
        """Tokens of the training posts by topic (``train_texts``' rows)."""
        return {t: self.tokens("train", t) for t in self.arrays.topics}

    @property
    def test_tokens(self) -> dict[str, list[list[str]]]:
        return {t: self.tokens("test", t) for t in self.arrays.topics}


def _pick(by_topic: dict[str, list], main: str, other: str,
          rows: np.ndarray | None) -> tuple[list, list, list, np.ndarray]:
    """(class-0 items, class-1 items, all items in drawn order, their labels) of a task."""
    if rows is None:
        first, second = list(by_topic[main]), list(by_topic[other])
        return first, second, first + second, np.repeat([0, 1], [len(first), len(second)])
    a, b = sorted((main, other))
    pool = list(by_topic[a]) + list(by_topic[b])
    picked = [pool[i] for i in rows]
    labels = (rows >= len(by_topic[a])) if main == a else (rows < len(by_topic[a]))
    labels = labels.astype(np.int64)
    return ([p for p, y in zip(picked, labels) if y == 0], [p for p, y in zip(picked, labels) if y == 1],
            picked, labels)


def build_corpus(root: Path, settings: CorpusSettings = CorpusSettings()) -> StudyCorpus:
    """Read the archive once and build the study's TF-IDF rows and cleaned texts."""
    documents = load_newsgroup_documents(root)
    train = {t: [clean_post(p, settings.remove, settings.cleaning) for p in documents["train"][t]] for t in TOPICS}
    test = {t: [clean_post(p, settings.remove, settings.cleaning) for p in documents["test"][t]] for t in TOPICS}
    vectorizer = TfidfVectorizer(max_features=settings.max_features, dtype=np.float32)
    vectorizer.fit([post for t in TOPICS for post in train[t]])
    if settings.sampling == "per_topic":
        rng = np.random.default_rng(settings.sample_seed)
        sampled = {}
        for topic in TOPICS:  # fixed topic order: each topic's draw does not depend on the others'
            posts = train[topic]
            if len(posts) < settings.train_per_topic:
                raise ConfigError(f"'train_per_topic' is {settings.train_per_topic} but {topic} has "
                                  f"only {len(posts)} training posts")
            chosen = np.sort(rng.choice(len(posts), settings.train_per_topic, replace=False))
            sampled[topic] = [posts[i] for i in chosen]
    else:  # every post: each task draws its own (StudyArrays.rows)
        sampled = train
    arrays = StudyArrays(
        TOPICS,
        {t: vectorizer.transform(sampled[t]).tocsr() for t in TOPICS},
        {t: vectorizer.transform(test[t]).tocsr() for t in TOPICS},
        settings,
    )
    return StudyCorpus(arrays, sampled, test, settings, vectorizer.build_analyzer())
