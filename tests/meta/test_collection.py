"""The study's protocol on a collection of the package's tasks (tiny synthetic tasks)."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from textmtl.data.tasks import Split, Task
from textmtl.errors import ConfigError
from textmtl.meta.collection import build_task_corpus, ordered_pairs, task_topics
from textmtl.meta.corpus import CorpusSettings
from textmtl.meta.report import feature_matrix
from textmtl.meta.store import RunStore
from textmtl.meta.study import collect_outcomes, load_runs, plan_pairs, protocol_settings, run_study
from textmtl.sweep import LocalExecutor

WORDS = {"pos": ["great", "love", "fine", "superb"], "neg": ["awful", "broken", "hate", "poor"]}


def review_task(name: str, n: int = 40, seed: int = 0, labels: tuple[str, ...] = ("pos", "neg")) -> Task:
    rng = random.Random(seed)

    def split(size: int) -> Split:
        texts, ids = [], []
        for i in range(size):
            label = i % len(labels)
            words = WORDS.get(labels[label], ["x", "y"]) + [f"{name}word{rng.randint(0, 9)}"]
            texts.append(" ".join(rng.choices(words, k=8)))
            ids.append(label)
        return Split(texts, ids)

    return Task(name, labels, split(n), split(10), split(n // 2))


SETTINGS = CorpusSettings(sampling="per_task", train_per_task=24, test_per_task=30, mtl_equal_test=True)


def test_a_task_becomes_two_topics_with_class_0_first_in_name_order():
    assert task_topics(review_task("books")) == ("books:neg", "books:pos")
    corpus = build_task_corpus([review_task("books")], SETTINGS)
    docs = corpus.documents("books:neg", "books:pos", seed=0)
    assert all("awful" in t or "broken" in t or "hate" in t or "poor" in t or "bookswor" in t for t in docs.train[0])
    assert sum(map(len, docs.train)) == 24 and len(docs.test) == 20  # all 20 test texts (< 30)
    # a seed's draw is the same whichever tasks were drawn before it
    again = build_task_corpus([review_task("dvd"), review_task("books")], SETTINGS)
    assert again.documents("books:neg", "books:pos", seed=0).train == docs.train


@pytest.mark.parametrize("tasks, message", [
    ([review_task("a", labels=("x", "y", "z"))], "binary tasks"),
    ([review_task("a"), review_task("a")], "distinct names"),
    ([review_task("a|b")], "must not contain '|'"),
    ([review_task("a", n=10)], "'train_per_task' is 24 but it has only 10"),
])
def test_bad_collections_are_one_line_errors(tasks, message):
    with pytest.raises(ConfigError, match=message):
        build_task_corpus(tasks, SETTINGS)


def test_a_label_without_test_texts_is_an_error():
    task = review_task("a")
    task = replace(task, test=Split(["great love"] * 3, [0, 0, 0]))
    with pytest.raises(ConfigError, match="label 'neg' has no test text"):
        build_task_corpus([task], SETTINGS)


def test_per_topic_sampling_is_refused():
    with pytest.raises(ConfigError, match="per_task"):
        build_task_corpus([review_task("a")], CorpusSettings())


def test_a_small_collection_study_gives_every_ordered_pair_its_gain_and_30_features(tmp_path):
    tasks = [review_task(n, seed=i) for i, n in enumerate(("books", "dvd", "music"))]
    settings = protocol_settings("authors", seeds=2, mtl_epochs=4, curve_epochs=6, f1_epoch=4,
                                 corpus=replace(protocol_settings("authors").corpus, train_per_task=24,
                                                test_per_task=30))
    corpus = build_task_corpus(tasks, settings.corpus)
    pairs = ordered_pairs(tasks)
    assert len(pairs) == 6 and (task_topics(tasks[0]), task_topics(tasks[1])) in pairs
    plan = plan_pairs({"fdu": pairs}, settings)
    # 3 tasks x 2 seeds single-task runs, 3 unordered pairs x 2 seeds joint runs
    assert sorted(u.kind for u in plan.units).count("single") == 6 and len(plan.units) == 12
    assert len(plan_pairs({"fdu": pairs}, settings, mtl=False).units) == 6
    with RunStore(tmp_path / "s.sqlite") as store:
        run_study(plan, corpus.arrays, store, LocalExecutor(0))
        rows = load_runs(plan, store)
    outcomes = collect_outcomes(plan, settings, rows)["fdu"]
    assert len(outcomes) == 6 and all(len(o.single_f1) == 2 for o in outcomes)
    features = feature_matrix(outcomes, corpus, plan, settings, rows)
    assert features.shape == (6, 30) and np.isfinite(features).all()
