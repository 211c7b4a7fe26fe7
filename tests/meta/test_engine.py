"""The fast engine against the straightforward PyTorch loop it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.errors import ConfigError
from textmtl.meta.engine import (Job, SparseMLPEngine, TrainSettings, batch_plan, dropout_generator, dropout_masks,
                                 init_parameters)
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


#: the authors' Keras model (docs/meta-study.md): sigmoid, dropout 0.5, one sigmoid output with
#: Keras's clipped binary cross-entropy, Glorot / U(±0.05) initialisation, Keras's Adam
AUTHORS = dict(activation="sigmoid", head="sigmoid", init="keras", adam="keras", eps=1e-7, dropout=0.5,
               bce_clip=1e-7, batch_order="shared", f1_average="micro")


@pytest.mark.parametrize("lr", [1e-3, 1e-2])
@pytest.mark.parametrize("n_tasks", [1, 2])
def test_authors_settings_follow_the_reference_for_50_steps(tasks, n_tasks, lr):
    # lr 1e-3 is the authors' (Keras's default); 1e-2 moves the sigmoid network much further
    # from its start within the 50 steps, where a wrong derivative would show sooner
    settings = TrainSettings(epochs=17, eval_every=0, lr=lr, **AUTHORS)
    fast, slow = [], []
    SparseMLPEngine().train(tasks[:n_tasks], settings, seed=3, step_losses=fast)
    ReferenceEngine().train(tasks[:n_tasks], settings, seed=3, step_losses=slow)
    fast, slow = np.array(fast[:50]), np.array(slow[:50])
    assert len(fast) == 50
    np.testing.assert_allclose(fast, slow, rtol=1e-4)
    assert fast[-10:].mean() < fast[:10].mean()  # and it learns


@pytest.mark.parametrize("changes", [dict(activation="sigmoid"), dict(head="sigmoid"), dict(init="keras"),
                                     dict(adam="keras", eps=1e-7), dict(dropout=0.5), dict(batch_order="shared")])
def test_each_authors_setting_alone_follows_the_reference(tasks, changes):
    settings = TrainSettings(epochs=10, eval_every=0, **changes)
    fast, slow = [], []
    SparseMLPEngine().train(tasks[:2], settings, seed=1, step_losses=fast)
    ReferenceEngine().train(tasks[:2], settings, seed=1, step_losses=slow)
    np.testing.assert_allclose(fast, slow, rtol=1e-4)


def test_authors_test_scores_match_the_reference_at_every_epoch(tasks):
    settings = TrainSettings(epochs=8, eval_every=1, lr=1e-2, **AUTHORS)
    fast = SparseMLPEngine().train(tasks[:2], settings, seed=0).test_f1
    slow = ReferenceEngine().train(tasks[:2], settings, seed=0).test_f1
    for name in fast:
        assert sorted(fast[name]) == list(range(1, 9))
        for epoch in fast[name]:
            assert abs(fast[name][epoch] - slow[name][epoch]) <= 0.005


def test_keras_adam_is_the_epsilon_hat_form():
    # one Keras step by hand: lr_t = lr sqrt(1-b2^t)/(1-b1^t), p -= lr_t m / (sqrt(v) + eps)
    settings = TrainSettings(adam="keras", eps=1e-7, lr=0.1)
    g = torch.tensor([0.3, -2e-6, 0.0])
    p = torch.tensor([1.0, 1.0, 1.0])
    m, v = torch.zeros(3), torch.zeros(3)
    from textmtl.meta.engine import _adam

    expected = p.clone()
    m_t, v_t = 0.1 * g, 0.001 * g * g
    lr_t = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
    expected -= lr_t * m_t / (v_t.sqrt() + 1e-7)
    _adam([p], [g], [m], [v], 1, settings)
    torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-7)
    assert settings.adam_eps(1) == pytest.approx(1e-7 / np.sqrt(0.001))
    assert TrainSettings().adam_eps(1) == 1e-8  # PyTorch's: as given


def test_keras_initialisation():
    params = init_parameters(300, (100, 100), [1, 1], seed=0, init="keras")
    first = params["hidden.0.weight"]
    limit = np.sqrt(6 / (300 + 100))
    assert first.shape == (100, 300) and float(first.abs().max()) <= limit
    assert float(first.abs().max()) > 0.95 * limit  # uniform over the whole range
    assert float(params["hidden.1.weight"].abs().max()) <= np.sqrt(6 / 200)
    assert params["head.0.weight"].shape == (1, 100) and float(params["head.1.weight"].abs().max()) <= 0.05
    assert all(float(params[f"{n}.bias"].abs().max()) == 0 for n in ("hidden.0", "hidden.1", "head.0", "head.1"))


def test_dropout_masks_are_inverted_and_seeded():
    masks = dropout_masks(dropout_generator(4), [32, 8], (100, 50), 0.5)
    assert [m.shape for m in masks[0]] == [(32, 100), (32, 50)] and masks[1][1].shape == (8, 50)
    values = np.concatenate([m.ravel() for task in masks for m in task])
    assert set(np.unique(values)) == {0.0, 2.0}
    assert 0.45 < (values == 0).mean() < 0.55
    again = dropout_masks(dropout_generator(4), [32, 8], (100, 50), 0.5)
    assert all(np.array_equal(a, b) for x, y in zip(masks, again) for a, b in zip(x, y))


def test_shared_batch_order_takes_the_same_rows_from_equal_tasks():
    plan = batch_plan([10, 10], batch_size=4, epochs=2, seed=0, order="shared")
    assert all(np.array_equal(step[0], step[1]) for epoch in plan for step in epoch)
    separate = batch_plan([10, 10], batch_size=4, epochs=2, seed=0)
    assert not all(np.array_equal(step[0], step[1]) for epoch in separate for step in epoch)


def test_clipped_binary_cross_entropy_stops_at_keras_bound():
    settings = TrainSettings(head="sigmoid", bce_clip=1e-7)
    assert settings.clip_logit() == pytest.approx(np.log((1 - 1e-7) / 1e-7))
    assert TrainSettings(head="sigmoid").clip_logit() == np.inf


@pytest.mark.parametrize("changes, message", [
    (dict(activation="tanh"), "'activation' must be one of relu, sigmoid"),
    (dict(dropout=1.0), "'dropout' must be in [0, 1)"),
    (dict(bce_clip=1e-7), "needs head 'sigmoid'"),
    (dict(batch_order="zip"), "'batch_order'"),
])
def test_bad_train_settings_are_config_errors(changes, message):
    with pytest.raises(ConfigError) as error:
        TrainSettings(**changes)
    assert message in str(error.value)


def test_test_f1_matches_the_reference(tasks):
    settings = TrainSettings(epochs=6, eval_every=3)
    for task in tasks:
        fast = SparseMLPEngine().train([task], settings, seed=0).test_f1[task.name]
        slow = ReferenceEngine().train([task], settings, seed=0).test_f1[task.name]
        assert set(fast) == {3, 6}
        assert abs(fast[6] - slow[6]) <= 0.005


@pytest.mark.parametrize("protocol", ["cleaned", "authors"])
def test_models_trained_side_by_side_equal_models_trained_alone(tasks, protocol):
    settings = TrainSettings(epochs=3, eval_every=1, **(AUTHORS if protocol == "authors" else {}))
    jobs = [Job((tasks[0], tasks[1]), 0), Job((tasks[2], tasks[0]), 5)]
    together = SparseMLPEngine().train_many(jobs, settings)
    for job, result in zip(jobs, together):
        alone = SparseMLPEngine().train(list(job.tasks), settings, job.seed)
        for name in result.train_loss:
            np.testing.assert_allclose(result.train_loss[name], alone.train_loss[name], rtol=1e-5)
            assert result.test_f1[name] == pytest.approx(alone.test_f1[name], abs=0.01)


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


@pytest.mark.parametrize("average", ["macro", "binary", "micro", "weighted"])
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


def test_evaluating_every_epoch_leaves_the_loss_curve_unchanged(tasks):
    # the advisor trains without per-epoch test scores and reads the study's curves
    every = SparseMLPEngine().train(tasks[:1], TrainSettings(epochs=6, eval_every=1, **AUTHORS), seed=2)
    last = SparseMLPEngine().train(tasks[:1], TrainSettings(epochs=6, eval_every=0, **AUTHORS), seed=2)
    assert every.train_loss == last.train_loss
    assert len(every.test_f1[tasks[0].name]) == 6 and list(last.test_f1[tasks[0].name]) == [6]
