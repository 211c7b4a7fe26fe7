"""The fast engine against the straightforward PyTorch loop it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.meta.engine import Job, SparseMLPEngine, TrainSettings, batch_plan, init_parameters
from textmtl.meta.reference import ReferenceEngine

from .conftest import random_task


@pytest.fixture(scope="module")
def tasks():
    rng = np.random.default_rng(0)
    return [random_task(name, rng) for name in ("a", "b", "c")]


@pytest.mark.parametrize("n_tasks", [1, 2])
def test_losses_follow_the_reference_for_50_steps(tasks, n_tasks):
    settings = TrainSettings(epochs=17, eval_every=0)  # 3 steps per epoch: 51 steps
    fast, slow = [], []
    SparseMLPEngine().train(tasks[:n_tasks], settings, seed=3, step_losses=fast)
    ReferenceEngine().train(tasks[:n_tasks], settings, seed=3, step_losses=slow)
    fast, slow = np.array(fast[:50]), np.array(slow[:50])
    assert len(fast) == 50
    np.testing.assert_allclose(fast, slow, rtol=1e-4)
    assert fast[-1] < fast[0]  # and it learns


def test_test_f1_matches_the_reference(tasks):
    settings = TrainSettings(epochs=6, eval_every=3)
    for task in tasks:
        fast = SparseMLPEngine().train([task], settings, seed=0).test_f1[task.name]
        slow = ReferenceEngine().train([task], settings, seed=0).test_f1[task.name]
        assert set(fast) == {3, 6}
        assert abs(fast[6] - slow[6]) <= 0.005


def test_models_trained_side_by_side_equal_models_trained_alone(tasks):
    settings = TrainSettings(epochs=3, eval_every=0)
    jobs = [Job((tasks[0], tasks[1]), 0), Job((tasks[2], tasks[0]), 5)]
    together = SparseMLPEngine().train_many(jobs, settings)
    for job, result in zip(jobs, together):
        alone = SparseMLPEngine().train(list(job.tasks), settings, job.seed)
        for name in result.train_loss:
            np.testing.assert_allclose(result.train_loss[name], alone.train_loss[name], rtol=1e-5)


def test_same_seed_same_run_different_seed_different_run(tasks):
    settings = TrainSettings(epochs=2, eval_every=0)
    a = SparseMLPEngine().train(tasks[:1], settings, seed=1).train_loss["a"]
    b = SparseMLPEngine().train(tasks[:1], settings, seed=1).train_loss["a"]
    c = SparseMLPEngine().train(tasks[:1], settings, seed=2).train_loss["a"]
    assert a == b and a != c


def test_batch_plan_covers_each_epoch_and_cycles_smaller_tasks():
    plan = batch_plan([10, 4], batch_size=4, epochs=2, seed=0)
    assert len(plan) == 2 and all(len(epoch) == 3 for epoch in plan)
    for epoch in plan:
        assert sorted(np.concatenate([step[0] for step in epoch]).tolist()) == list(range(10))
        assert all(len(step[1]) == 4 for step in epoch)  # the small task keeps full batches


def test_init_parameters_do_not_touch_the_global_generator():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    init_parameters(50, (8, 8), [2], seed=7)
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.parametrize("average", ["macro", "binary", "weighted"])
def test_fast_f1_is_scikit_learns(average):
    from sklearn.metrics import f1_score

    from textmtl.meta.engine import f1

    rng = np.random.default_rng(0)
    for classes in (2, 3):
        gold, predicted = rng.integers(0, classes, 50), rng.integers(0, classes, 50)
        if average == "binary" and classes > 2:
            continue
        assert f1(gold, predicted, average) == pytest.approx(
            f1_score(gold, predicted, average=average, zero_division=0), abs=1e-12)
    # one class never predicted nor present: zero division is 0
    assert f1(np.zeros(5, int), np.zeros(5, int), "binary") == 0.0
