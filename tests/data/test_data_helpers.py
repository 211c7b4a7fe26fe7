"""Properties of the shared helpers: line splitting, stratified holdout, 20NG hierarchy, schemas."""

from __future__ import annotations

import inspect
from collections import Counter

import pytest

from textmtl.data.corpora import seeded_split, split_lines, stratified_holdout
from textmtl.data.corpora.newsgroups import (SIX_GROUPS, TOPIC_HIERARCHY, TOPICS, six_group,
                                             task_pairs, topic_path)
from textmtl.data.datasets import DATASETS
from textmtl.data.tasks import Split
from textmtl.errors import DataError


def test_split_lines_splits_on_newline_only():
    data = "a\x85b\u2028c\x1ed\r\ne\n".encode("latin-1", errors="ignore") + b"f\n"
    assert split_lines(data) == [b"a\x85bc\x1ed", b"e", b"f"]
    assert split_lines(b"no newline") == [b"no newline"]


def test_stratified_holdout_is_exact_proportional_and_seeded():
    labels = ["a"] * 70 + ["b"] * 20 + ["c"] * 9 + ["d"]
    kept, held = stratified_holdout(labels, 10, seed=0)
    assert len(held) == 10 and sorted(kept + held) == list(range(100))
    assert Counter(labels[i] for i in held) == {"a": 7, "b": 2, "c": 1}  # "d" (once) stays
    assert stratified_holdout(labels, 10, seed=0) == (kept, held)
    assert stratified_holdout(labels, 10, seed=1)[1] != held


def test_seeded_split_refuses_an_empty_part():
    with pytest.raises(DataError, match="cannot hold out"):
        seeded_split(Split(["x", "y"], [0, 1]), 0.1, 0, "tiny.csv")


def test_hierarchy_has_the_papers_shape():
    leaves = [t for subs in TOPIC_HIERARCHY.values() for ts in subs.values() for t in ts]
    assert sorted(leaves) == sorted(TOPICS) and len(leaves) == 20
    assert len(TOPIC_HIERARCHY) == 5
    assert sum(len(subs) for subs in TOPIC_HIERARCHY.values()) == 8
    assert topic_path("rec.sport.baseball") == ("rec", "sport", "rec.sport.baseball")
    assert topic_path("alt.atheism")[:2] == ("talk", "religion")


def test_hierarchy_gives_the_papers_task_pair_counts():
    related, unrelated = task_pairs(related=True), task_pairs(related=False)
    assert len(related) == 52 and len(unrelated) == 516  # Section 3.2 of the paper
    assert set(related) <= set(unrelated)
    # the paper's example, A=baseball B=autos C=hockey D=motorcycles, stored mirrored (A<B)
    assert (("rec.autos", "rec.sport.baseball"), ("rec.motorcycles", "rec.sport.hockey")) in related


def test_six_groups_partition_the_topics():
    grouped = [t for ts in SIX_GROUPS.values() for t in ts]
    assert sorted(grouped) == sorted(TOPICS)
    assert six_group("misc.forsale") == "forsale"


@pytest.mark.parametrize("name", DATASETS.names())
def test_loader_signature_is_a_config_schema(name):
    loader = DATASETS.get(name)
    params = list(inspect.signature(loader).parameters.values())
    assert params[0].name == "root" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    required = [p.name for p in DATASETS.parameters(name) if p.required]
    assert required == (["path"] if name == "user_files" else [])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    assert "Args:" in inspect.getdoc(loader) and "Returns:" in inspect.getdoc(loader)
    # every default passes the registry's own type check
    defaults = {p.name: p.default for p in DATASETS.parameters(name) if not p.required}
    DATASETS.validate(name, {**defaults, **({"path": "x"} if required else {})}, "data")
