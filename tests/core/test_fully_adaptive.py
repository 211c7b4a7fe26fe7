"""Fully-Adaptive Feature Sharing: the affinity criterion, the grouping, the widening (the
function is kept), the optimiser rebuilt for new branches, and the tree saved and restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.sharing.fully_adaptive import branch_affinity, group_branches, task_affinity
from textmtl.training.config import TrainingConfig
from textmtl.training.trainer import build_run_optimizer, train
from textmtl.weighting import WEIGHTINGS

from .helpers import TINY_FEATURE_PARAMS


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    return MultiTaskData.build(synthetic_tasks, FEATURIZERS.build("tfidf", params=TINY_FEATURE_PARAMS["tfidf"]))


def build(data, seed=0, **params):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params={"hidden_dims": [8]})
    return SHARING.build("fully_adaptive", specs, factory, params={"widths": [6, 5], **params})


def test_task_affinity_by_hand():
    # 4 rows, 3 tasks. Means 0.5, 0.5, 0.5: task 0 hard on rows 0, 1; task 1 too; task 2 on 0, 2.
    # 0 vs 1 agree on all 4 rows -> 1; 0 vs 2 agree on rows 0 (hard) and 3 (easy) -> 0.5
    losses = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    expected = torch.tensor([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.5, 0.5, 1.0]], dtype=torch.float64)
    assert torch.equal(task_affinity(losses), expected)


def test_branch_affinity_by_hand():
    affinity = torch.tensor([[1.0, 0.9, 0.4], [0.9, 1.0, 0.6], [0.4, 0.6, 1.0]], dtype=torch.float64)
    between = branch_affinity(affinity, [[0, 1], [2]])
    # {0,1} -> {2}: mean(min 0.4, min 0.6) = 0.5; {2} -> {0,1}: min(0.4, 0.6) = 0.4; symmetrised 0.45
    # {0,1} -> itself: mean(min(1, .9), min(.9, 1)) = 0.9
    assert between[0, 1].item() == pytest.approx(0.45) and between[1, 0].item() == pytest.approx(0.45)
    assert between[0, 0].item() == pytest.approx(0.9) and between[1, 1].item() == pytest.approx(1.0)


def test_grouping_splits_unrelated_blocks_unless_branches_are_expensive():
    # two blocks {0, 1} and {2, 3}: 0.9 within, 0.5 across
    affinity = torch.full((4, 4), 0.5, dtype=torch.float64)
    affinity[:2, :2] = affinity[2:, 2:] = 0.9
    affinity.fill_diagonal_(1.0)
    groups, scores = group_branches(affinity, max_branches=4, complexity_weight=0.1)
    assert groups == [[0, 1], [2, 3]]
    # one branch: 0 + (1 - 0.5) = 0.5; two: 0.1 + mean(0.1, 0.1) = 0.2;
    # three ({0, 1}, {2}, {3}): 0.2 + mean(0.1, 0, 0) = 0.2333; four: 0.3 + 0
    assert [s["score"] for s in scores] == pytest.approx([0.5, 0.2, 0.2 + 0.1 / 3, 0.3])
    assert group_branches(affinity, max_branches=4, complexity_weight=1.0)[0] == [[0, 1, 2, 3]]
    assert group_branches(affinity, max_branches=1, complexity_weight=0.0)[0] == [[0, 1, 2, 3]]


def recorded_losses(rows=200, seed=0):
    """Expected losses where tasks 0 and 1 are easy and hard together and task 2 is independent."""
    rng = np.random.default_rng(seed)
    shared = rng.random(rows)
    other = rng.random(rows)
    return torch.tensor(np.stack([shared, shared + 0.01 * rng.random(rows), other], 1))


def test_widening_groups_related_tasks_and_keeps_the_function(data):
    model = build(data)
    model.eval()
    batch = data.batch("dev", [(k, np.arange(6)) for k in range(3)])
    before = model(batch)
    model._recorded = [recorded_losses()]
    assert model.widen(epoch=1)
    assert model.parameters_changed() and not model.parameters_changed()  # once per change
    tree = model.branching_tree()
    top = [b["tasks"] for b in tree["layers"][1]]
    assert top == [["alpha", "beta"], ["gamma"]]
    assert [b["tasks"] for b in tree["layers"][0]] == [["alpha", "beta", "gamma"]]
    assert tree["splits"][0]["layer"] == 2 and tree["splits"][0]["branches"] == top
    assert torch.allclose(model(batch), before)  # the copies start as their parent
    # a branch of one task belongs to it; a branch of two is shared
    gamma_branch = model.trunk[1][1]
    assert all(any(p is q for q in model.task_parameters("gamma")) for p in gamma_branch.parameters())
    assert all(any(p is q for q in model.shared_parameters()) for p in model.trunk[1][0].parameters())
    # next round at layer 1: its children are the two branches; they are unrelated -> split
    model._recorded = [recorded_losses(seed=1)]
    assert model.widen(epoch=2)
    assert [b["tasks"] for b in model.branching_tree()["layers"][0]] == [["alpha", "beta"], ["gamma"]]
    assert model.next_layer == -1
    assert torch.allclose(model(batch), before)


def test_one_group_stops_the_widening(data):
    model = build(data, complexity_weight=10.0)
    model._recorded = [recorded_losses()]
    assert not model.widen(epoch=1)
    assert model.next_layer == -1 and not model.parameters_changed()
    assert model.branching_tree()["splits"][0]["branches"] == [["alpha", "beta", "gamma"]]


def test_the_saved_tree_is_rebuilt_on_load(data):
    model = build(data)
    model._recorded = [recorded_losses()]
    model.widen(epoch=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    state = model.export_state()
    fresh = build(data, seed=5)
    fresh.load_exported_state(state)
    model.eval(), fresh.eval()
    batch = data.batch("test", [(k, np.arange(5)) for k in range(3)])
    assert torch.equal(fresh(batch), model(batch))
    assert fresh.branching_tree() == model.branching_tree()
    with pytest.raises(ValueError, match="no 'tree' entry"):
        fresh.load_exported_state(dict(model.state_dict()))


def test_the_rebuilt_optimiser_keeps_old_state_and_trains_new_branches(data):
    model = build(data)
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    config = TrainingConfig(optimizer="adam", lr=0.01)
    _, optimizer, _ = build_run_optimizer(model, weighting, config, config.lr)
    batch = data.batch("train", [(k, np.arange(8)) for k in range(3)])
    loss = torch.nn.functional.cross_entropy(model(batch), batch.labels)
    loss.backward()
    optimizer.step()
    encoder_weight = model.encoder.input_weight
    kept = optimizer.state[encoder_weight]["exp_avg"].clone()
    model._recorded = [recorded_losses()]
    model.widen(epoch=1)
    parameters, rebuilt, _ = build_run_optimizer(model, weighting, config, config.lr, previous=optimizer)
    trained = {id(p) for group in rebuilt.param_groups for p in group["params"]}
    assert all(id(p) in trained for p in model.parameters())
    assert torch.equal(rebuilt.state[encoder_weight]["exp_avg"], kept)  # Adam's moments kept
    new_branch = model.trunk[1][1].weight
    assert new_branch not in rebuilt.state  # a new copy starts without state
    assert any(p is new_branch for p in parameters)  # and is clipped


def test_training_widens_on_schedule_and_selects_a_tree(data):
    model = build(data, split_epochs=[1, 2], complexity_weight=0.0)
    config = TrainingConfig(max_epochs=3, patience=0, batch_size=8, lr=0.05, progress=False)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("proportional"),
        data, config, seed=1)
    tree = result.state_dict["tree"]
    rounds = [s for s in model.splits if "skipped" not in s]
    # complexity 0: every round prefers separate branches (the rounds the best epoch had seen)
    assert len(tree["splits"]) == min(result.best_epoch, 2)
    assert all(len(s["branches"]) > 1 for s in rounds)
    assert all(s["rows"] > 0 for s in rounds)


def test_bad_options_are_one_line_errors(data):
    for params, message in [({"widths": []}, "'widths' of FullyAdaptiveSharing"),
                            ({"split_epochs": [2, 1]}, "'split_epochs' of FullyAdaptiveSharing"),
                            ({"split_epochs": [1, 2, 3]}, "at most one per trunk layer"),
                            ({"max_branches": 0}, "'max_branches' of FullyAdaptiveSharing"),
                            ({"affinity_rows": 0}, "'affinity_rows' of FullyAdaptiveSharing")]:
        with pytest.raises((ValueError, ConfigError), match=message):
            build(data, **params)
