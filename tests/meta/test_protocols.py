"""The two protocols: their settings, keys, the authors' sampling and scikit-learn's cleaning."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from textmtl.data.corpora.newsgroups import TOPICS
from textmtl.errors import ConfigError
from textmtl.meta.corpus import REMOVABLE, CorpusSettings, StudyArrays, StudyCorpus, clean_post
from textmtl.meta.study import (StudySettings, apply_overrides, plan_study, protocol_settings, run_group,
                                group_units)

# ------------------------------------------------------------------------------ cleaning

POSTS = [
    "From: a@b\nSubject: x\n\nHello there.\n\nSecond paragraph\n-- \nJohn\n",
    "no blank line at all\njust text",
    "From: a\n\nIn article <1@x> b writes:\n> quoted\nreply line\n\n\n",
    "From: a\n\nbody\n\nlast paragraph without a signature",
    "",
    "\n\n",
    "From: a\n\n----\nonly dashes first\nthen text",
]


@pytest.mark.parametrize("post", POSTS)
def test_sklearn_cleaning_is_scikit_learns(post):
    from sklearn.datasets._twenty_newsgroups import (strip_newsgroup_footer, strip_newsgroup_header,
                                                     strip_newsgroup_quoting)

    expected = strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(post)))
    assert clean_post(post, REMOVABLE, "sklearn") == expected


def test_the_two_cleanings_differ_where_documented():
    # scikit-learn cuts at the last blank line (the last paragraph goes); ours at "--" only
    post = POSTS[3]
    assert clean_post(post, REMOVABLE, "sklearn") == "body"
    assert clean_post(post, REMOVABLE, "textmtl").endswith("last paragraph without a signature")
    # without a blank line scikit-learn's header rule drops everything
    assert clean_post(POSTS[1], ("headers",), "sklearn") == "" and clean_post(POSTS[1], ("headers",)) == POSTS[1]


# ------------------------------------------------------------------------------ sampling

def _coded_arrays(settings: CorpusSettings, train_rows: int = 30, test_rows: int = 20) -> StudyArrays:
    """Row r of topic t has one entry, at column t*100 + r: a task's rows say where they came from."""
    def block(t: int, n: int) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), t * 100 + np.arange(n))),
                             shape=(n, 100 * len(TOPICS)))

    return StudyArrays(TOPICS, {t: block(i, train_rows) for i, t in enumerate(TOPICS)},
                       {t: block(i, test_rows) for i, t in enumerate(TOPICS)}, settings)


def _origin(x: sp.csr_matrix) -> list[tuple[str, int]]:
    return [(TOPICS[c // 100], c % 100) for c in x.indices]


AUTHORS_CORPUS = CorpusSettings(sampling="per_task", train_per_task=12, test_per_task=15, mtl_equal_test=True,
                                cleaning="sklearn")


def test_per_task_sampling_draws_from_the_pair_and_labels_by_topic():
    arrays = _coded_arrays(AUTHORS_CORPUS)
    task = arrays.task("sci.med", "rec.autos", seed=0)
    assert task.train_x.shape[0] == 12 and task.test_x.shape[0] == 15 and arrays.train_size("sci.med", "rec.autos") == 12
    for x, y in ((task.train_x, task.train_y), (task.test_x, task.test_y)):
        origin = _origin(x)
        assert {t for t, _ in origin} <= {"sci.med", "rec.autos"}
        assert [0 if t == "sci.med" else 1 for t, _ in origin] == list(y)   # main = class 0
        assert len(set(origin)) == len(origin)                               # without replacement
    # the same posts whichever way round the task is named; another seed, another draw
    flipped = arrays.task("rec.autos", "sci.med", seed=0)
    assert sorted(_origin(flipped.train_x)) == sorted(_origin(task.train_x))
    assert list(flipped.train_y) == list(1 - task.train_y)
    assert _origin(arrays.task("sci.med", "rec.autos", seed=1).train_x) != _origin(task.train_x)
    assert _origin(arrays.task("sci.med", "rec.autos", seed=0).train_x) == _origin(task.train_x)


def test_a_joint_run_cuts_both_test_sets_to_the_shortest():
    arrays = _coded_arrays(replace(AUTHORS_CORPUS, test_per_task=None))  # every test post, in drawn order
    small = _coded_arrays(replace(AUTHORS_CORPUS, test_per_task=None), test_rows=8)
    arrays.test_x["talk.religion.misc"] = small.test_x["talk.religion.misc"]  # a task with fewer test posts
    names = ["rec.autos|sci.med", "alt.atheism|talk.religion.misc"]
    tasks = arrays.run_tasks(names, seed=0)
    assert [t.test_x.shape[0] for t in tasks] == [28, 28]
    alone = arrays.run_tasks(names[:1], seed=0)[0]
    assert alone.test_x.shape[0] == 40
    assert _origin(tasks[0].test_x) == _origin(alone.test_x)[:28]  # the cut keeps the first (random) rows
    assert {t for t, _ in _origin(tasks[0].test_x)} == {"rec.autos", "sci.med"}  # not one topic's block


def test_corpus_documents_are_the_arrays_rows():
    arrays = _coded_arrays(AUTHORS_CORPUS)
    texts = {split: {t: [f"{t}:{r}" for r in range(n)] for t in TOPICS} for split, n in (("train", 30), ("test", 20))}
    corpus = StudyCorpus(arrays, texts["train"], texts["test"], AUTHORS_CORPUS)
    docs = corpus.documents("sci.med", "rec.autos", seed=3)
    task = arrays.task("sci.med", "rec.autos", seed=3)
    picked = [f"{t}:{r}" for t, r in _origin(task.train_x)]
    assert sorted(docs.train[0] + docs.train[1]) == sorted(picked)
    assert all(t.startswith("sci.med:") for t in docs.train[0]) and all(t.startswith("rec.autos:") for t in docs.train[1])
    assert docs.test == [f"{t}:{r}" for t, r in _origin(task.test_x)] and list(docs.test_labels) == list(task.test_y)


def test_per_topic_sampling_is_unchanged():
    arrays = _coded_arrays(CorpusSettings())
    task = arrays.task("sci.med", "rec.autos")
    assert task.train_x.shape[0] == 60 and list(task.train_y) == [0] * 30 + [1] * 30
    assert not CorpusSettings().draws_per_seed and AUTHORS_CORPUS.draws_per_seed


def test_run_group_trains_on_the_seeds_sample(study_arrays):
    settings = replace(protocol_settings("authors", quick=True), mtl_epochs=2, curve_epochs=4, f1_epoch=2,
                       corpus=replace(AUTHORS_CORPUS, train_per_task=20, test_per_task=16))
    arrays = StudyArrays(study_arrays.topics, study_arrays.train_x, study_arrays.test_x, settings.corpus)
    plan = plan_study(replace(settings, pairs=1))
    unit = next(u for u in plan.units if u.kind == "mtl")
    payload = {"units": [{"key": unit.key, "kind": unit.kind, "tasks": list(unit.tasks), "seed": unit.seed,
                          "config": unit.config}], "device": "cpu"}
    result = run_group(payload, arrays)[0]
    assert sorted(result["metrics"]) == sorted(unit.tasks)
    assert all(sorted(m) == [1, 2] for m in result["metrics"].values())  # every epoch scored
    assert len(group_units(plan.units, arrays, 4)) >= 1


# ------------------------------------------------------------------------------ settings and keys

def test_cleaned_keys_are_those_of_the_study_before_protocols():
    # keys computed with the code of commit 3fa4d11 (before protocols): a cleaned store made then resumes
    keys = {u.key for u in plan_study(StudySettings.quick()).units}
    assert "single|alt.atheism|talk.politics.guns|seed=0|1e4101ed7d94" in keys
    assert "mtl|alt.atheism|talk.politics.guns+soc.religion.christian|talk.politics.misc|seed=0|5dbee54392f9" in keys
    assert {u.key for u in plan_study(protocol_settings("cleaned", quick=True)).units} == keys


def test_protocols_never_share_a_key():
    for quick in (False, True):
        authors = {u.key for u in plan_study(protocol_settings("authors", quick=quick)).units}
        cleaned = {u.key for u in plan_study(protocol_settings("cleaned", quick=quick)).units}
        assert len(authors) == len(cleaned) and not authors & cleaned
    # and every single setting of the authors' protocol is in the key
    base = {u.key for u in plan_study(protocol_settings("authors", quick=True)).units}
    for change in ("dropout=0.2", "activation='relu'", "corpus.test_per_task=600", "corpus.mtl_equal_test=False",
                   "eps=1e-8", "batch_order='per_task'"):
        other = apply_overrides(protocol_settings("authors", quick=True), [change])
        assert not base & {u.key for u in plan_study(other).units}, change


def test_the_authors_preset():
    settings = protocol_settings("authors")
    assert (settings.mtl_epochs, settings.curve_epochs, settings.f1_epoch, settings.eval_every) == (100, 150, 81, 1)
    train = settings.train_settings("mtl")
    assert (train.activation, train.head, train.init, train.adam, train.dropout, train.f1_average) == (
        "sigmoid", "sigmoid", "keras", "keras", 0.5, "micro")
    assert train.f1_epochs == () and settings.gradient_epochs == 80
    assert settings.corpus.sampling == "per_task" and settings.corpus.test_per_task == 700
    assert settings.features == "authors" and settings.meta.score == "accuracy"
    # the meta-model's evaluation is analysis only: not in any key
    other = replace(settings, meta=replace(settings.meta, score="f1"))
    assert [u.key for u in plan_study(other).units] == [u.key for u in plan_study(settings).units]


def test_overrides_mix_the_protocols():
    settings = apply_overrides(protocol_settings("authors"), ["activation=relu", "dropout=0", "corpus.sampling=per_topic",
                                                              "meta.score='f1'", "hidden=[50, 50]", "pairs=None"])
    assert settings.activation == "relu" and settings.dropout == 0.0 and isinstance(settings.dropout, float)
    assert settings.corpus.sampling == "per_topic" and settings.corpus.test_per_task == 700
    assert settings.meta.score == "f1" and settings.hidden == (50, 50) and settings.pairs is None


@pytest.mark.parametrize("assignment, message", [
    ("nosuch=1", "--set nosuch: unknown setting"),
    ("corpus.nosuch=1", "--set corpus.nosuch: unknown setting"),
    ("train.lr=1", "expected a study setting or corpus.NAME"),
    ("dropout", "expects KEY=VALUE"),
    ("activation=tanh", "'activation' must be one of relu, sigmoid"),
    ("meta.groups=authors_code", None),
])
def test_bad_overrides_are_one_line_config_errors(assignment, message):
    base = protocol_settings("cleaned")
    with pytest.raises(ConfigError) as error:
        apply_overrides(base, [assignment])
    assert "\n" not in str(error.value)
    assert (message or "needs features 'authors'") in str(error.value)


def test_the_multitask_score_is_read_at_f1_epoch():
    settings = protocol_settings("cleaned", f1_epoch=80)
    assert settings.train_settings("mtl").f1_epochs == (80,)
    with pytest.raises(ConfigError, match="'f1_epoch' must be within 1..100"):
        protocol_settings("cleaned", f1_epoch=120)


def test_the_advisor_refuses_a_model_over_features_it_does_not_compute(tmp_path):
    from textmtl.meta.advisor import advise
    from textmtl.meta.metamodel import MetaModel

    path = tmp_path / "advisor.json"
    MetaModel(["jsd_classes.main", "no_such_feature"], np.zeros(2), np.ones(2), np.ones(2), 0.0).to_json(path)
    with pytest.raises(ConfigError, match="uses features the advisor does not compute .*'no_such_feature'"):
        advise("20ng:baseball,hockey", "20ng:autos,motorcycles", model_path=path)
