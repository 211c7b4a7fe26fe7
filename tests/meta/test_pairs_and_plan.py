"""Task pairs of §3.2 and the study's plan of trainings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from textmtl.errors import ConfigError
from textmtl.meta.study import StudySettings, plan_study, select_pairs, task_name


def test_pair_counts_are_the_papers():
    assert len(select_pairs("related")) == 52
    assert len(select_pairs("unrelated")) == 516


def test_named_examples_are_in_the_problems():
    related, unrelated = set(select_pairs("related")), set(select_pairs("unrelated"))
    baseball_autos = (("rec.sport.baseball", "rec.autos"), ("rec.sport.hockey", "rec.motorcycles"))
    autos_baseball = (("rec.autos", "rec.sport.baseball"), ("rec.motorcycles", "rec.sport.hockey"))
    # a pair and its mirror (B vs A, D vs C) are the same pair; either spelling is in the list
    assert baseball_autos in related or autos_baseball in related
    guns_autos = (("talk.politics.guns", "rec.autos"), ("talk.politics.mideast", "rec.motorcycles"))
    autos_guns = (("rec.autos", "talk.politics.guns"), ("rec.motorcycles", "talk.politics.mideast"))
    assert guns_autos in unrelated or autos_guns in unrelated
    assert not (guns_autos in related or autos_guns in related)  # different top-level classes
    assert related <= unrelated  # §3.2: RELATED instances are among the UNRELATED ones


def test_every_pair_obeys_the_definition():
    from textmtl.data.corpora.newsgroups import topic_path

    for (a, b), (c, d) in select_pairs("unrelated"):
        pa, pb, pc, pd = map(topic_path, (a, b, c, d))
        assert pa[:2] != pb[:2]                       # A and B have different fathers
        assert pc[:2] == pa[:2] and c != a            # C is a sibling of A
        assert pd[:2] == pb[:2] and d != b            # D is a sibling of B


def test_full_plan_shares_single_task_and_joint_runs():
    plan = plan_study(StudySettings())
    singles = [u for u in plan.units if u.kind == "single"]
    joints = [u for u in plan.units if u.kind == "mtl"]
    assert len(singles) == 153 * 5   # every topic-pair task once per seed
    assert len(joints) == 258 * 5    # both directions of a pair from one joint run
    assert plan.naive_trainings == 3 * (52 + 516) * 5
    assert len({u.key for u in plan.units}) == len(plan.units)


def test_quick_plan_is_small_and_seeded():
    a, b = plan_study(StudySettings.quick()), plan_study(StudySettings.quick())
    assert [u.key for u in a.units] == [u.key for u in b.units]
    assert all(len(p) == 20 for p in a.pairs.values())
    assert {u.seed for u in a.units} == {0}


def test_keys_change_with_the_settings_that_matter():
    base = plan_study(StudySettings.quick())
    other = plan_study(replace(StudySettings.quick(), lr=0.01))
    assert not {u.key for u in base.units} & {u.key for u in other.units}


@pytest.mark.parametrize("changes", [{"problems": ("both",)}, {"seeds": 0}, {"pairs": 0}, {"f1_epoch": 200}])
def test_bad_settings_are_config_errors(changes):
    with pytest.raises(ConfigError):
        replace(StudySettings(), **changes)


def test_task_names_are_canonical():
    assert task_name(("rec.autos", "comp.graphics")) == task_name(("comp.graphics", "rec.autos"))
