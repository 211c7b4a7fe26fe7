"""The study's protocol on any collection of binary tasks (the package's :class:`Task` type).

The 20 Newsgroups study builds each task from two topics. Here a task is one of the package's
binary classification tasks (an FDU-MTL domain, a user's file, a 20 Newsgroups topic pair read
by the advisor), and each of its two labels becomes a study "topic" named ``TASK:LABEL``; the
study's sampling, engine, store and features then apply unchanged (:mod:`.study`,
:mod:`.corpus`): the same per-task draws of ``train_per_task`` training texts and up to
``test_per_task`` test texts for every seed, the same MLP runs, the same 30 (or 46) features.

* Class 0 of a task is its label first in name order (``negative`` before ``positive``), as
  class 0 of a 20 Newsgroups task is its topic first in name order.
* Training texts: the task's train split (its dev split takes no part: the study selects no
  epoch); test texts: its test split.
* TF-IDF: over the ``max_features`` most frequent words of every task's training texts (the
  analogue of the study's "whole training set").
* Texts are used as given (the 20 Newsgroups header / footer / quote removal is for posts).

Used by ``textmtl study fdu`` (the out-of-corpus validation of the meta-model,
:mod:`.validation`) and by ``textmtl advise`` (the features of one pair).
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from ..data.tasks import Task
from ..errors import ConfigError
from .corpus import CorpusSettings, StudyArrays, StudyCorpus
from .study import Pair

#: the 16 FDU-MTL domains, the collection of ``textmtl study fdu``
FDU_DOMAINS = ("apparel", "baby", "books", "camera_photo", "dvd", "electronics", "health_personal_care", "imdb",
               "kitchen_housewares", "magazines", "MR", "music", "software", "sports_outdoors", "toys_games", "video")


def task_topics(task: Task) -> tuple[str, str]:
    """The two study topics of a binary task: ``TASK:LABEL``, class 0 first (name order)."""
    if len(task.labels) != 2:
        raise ConfigError(f"task {task.name!r}: the study compares binary tasks; it has {len(task.labels)} labels "
                          f"({', '.join(task.labels)})")
    if "|" in task.name or any("|" in label for label in task.labels):
        # the study names a run's task "TOPIC|TOPIC"
        raise ConfigError(f"task {task.name!r}: names and labels must not contain '|'")
    first, second = sorted(task.labels)
    return f"{task.name}:{first}", f"{task.name}:{second}"


def build_task_corpus(tasks: list[Task], settings: CorpusSettings) -> StudyCorpus:
    """The study's corpus of ``tasks``: TF-IDF rows and texts by topic (see the module docstring).

    Raises:
        ConfigError: a task that is not binary, two tasks of one name, or a label with no
            training or test text.
    """
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"tasks must have distinct names; found {sorted(n for n in set(names) if names.count(n) > 1)}")
    if settings.sampling != "per_task":
        # per-topic sampling draws a fixed sample of 20 Newsgroups topics; a task here has its own splits
        raise ConfigError("a study of tasks draws its texts per task: it needs corpus.sampling 'per_task'")
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for task in tasks:
        topics = task_topics(task)
        for topic in topics:
            label = task.labels.index(topic.rpartition(":")[2])
            train[topic] = [t for t, y in zip(task.train.texts, task.train.labels) if y == label]
            test[topic] = [t for t, y in zip(task.test.texts, task.test.labels) if y == label]
            for split, texts in (("training", train[topic]), ("test", test[topic])):
                if not texts:
                    raise ConfigError(f"task {task.name!r}: label {topic.rpartition(':')[2]!r} has no {split} text")
        pool = len(train[topics[0]]) + len(train[topics[1]])
        if settings.train_per_task > pool:
            raise ConfigError(f"task {task.name!r}: 'train_per_task' is {settings.train_per_task} but it has only "
                              f"{pool} training texts")
    order = tuple(topic for task in tasks for topic in task_topics(task))
    vectorizer = TfidfVectorizer(max_features=settings.max_features, dtype=np.float32)
    vectorizer.fit([text for topic in order for text in train[topic]])
    arrays = StudyArrays(order, {t: vectorizer.transform(train[t]).tocsr() for t in order},
                         {t: vectorizer.transform(test[t]).tocsr() for t in order}, settings,
                         draw_keys={t: zlib.crc32(t.encode("utf-8")) for t in order})
    return StudyCorpus(arrays, train, test, settings, vectorizer.build_analyzer())


def ordered_pairs(tasks: list[Task]) -> list[Pair]:
    """Every (main, auxiliary) pair of distinct tasks, as study pairs of topic tuples."""
    return [(task_topics(main), task_topics(aux)) for main, aux in itertools.permutations(tasks, 2)]


def load_fdu(data_dir: str | None = None, domains: tuple[str, ...] = FDU_DOMAINS) -> list[Task]:
    """The FDU-MTL domains as binary tasks (``fdu_mtl:DOMAIN``, negative / positive)."""
    from dataclasses import replace

    from .advisor import resolve_task

    # named as on the command line (the advisor's name also lists the labels picked)
    return [replace(resolve_task(f"fdu_mtl:{domain}", data_dir), name=f"fdu_mtl:{domain}") for domain in domains]
