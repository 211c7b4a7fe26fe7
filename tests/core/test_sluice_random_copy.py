"""The Figure 2 script's reading of α (scripts/sluice_random_copy.py)."""

from __future__ import annotations


import pytest

from .helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("sluice_random_copy")


def test_relative_importance_reads_the_target_rows(script):
    labels = ["a:1", "a:2", "b:1", "b:2"]
    alpha = [[0.4, 0.2, 0.1, 0.1],   # inputs of the target's subspaces ...
             [0.2, 0.2, 0.3, 0.0],
             [9.0, 9.0, 9.0, 9.0],   # ... the auxiliary's rows must not count
             [9.0, 9.0, 9.0, 9.0]]
    mixing = {"alpha": [{"labels": labels, "values": alpha}, {"labels": labels, "values": [[0.25] * 4] * 4}]}
    ratios = script.relative_importance(mixing, "a", "b")
    assert ratios == pytest.approx([0.5 / 1.0, 1.0])  # (0.1+0.1+0.3+0) / (0.4+0.2+0.2+0.2); equal α: 1


def test_task_names_with_colons_are_split_at_the_subspace(script):
    labels = ["conll2000_pos:1", "conll2000_pos:2", "conll2000_pos_copy:1", "conll2000_pos_copy:2"]
    mixing = {"alpha": [{"labels": labels, "values": [[0.7, 0.1, 0.1, 0.1]] * 4}]}
    assert script.relative_importance(mixing, "conll2000_pos", "conll2000_pos_copy") == pytest.approx([0.2 / 0.8])
