"""Task Oriented Sampling (Zhang et al. 2017, Algorithm 1): the counts, the collections, the seed.

- the oriented task's rows are each in exactly n0 collections of an epoch (N = n0 * N_k);
- another task gives N rows, without replacement when it has N rows or more, with replacement
  (uniform, independent draws) when it has fewer;
- every step holds one row of every task per collection, ``batch_size`` collections (the last
  step the rest), so the trainer's batch of a step is made of collections;
- the plan is a function of the generator: one seed, one plan; the oriented task is named by
  name or index; bad settings are one-line errors;
- the trainer reads the rows the sampler chose (not its own streams).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.data.task_oriented_sampling import TaskOrientedSampler, task_oriented_sets
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

NAMES = ["small", "oriented", "large"]
SIZES = [7, 30, 100]  # N = 2 * 30 = 60: "small" draws with replacement, "large" without


def sampler(**params) -> TaskOrientedSampler:
    return SAMPLERS.build("task_oriented", NAMES, params={"oriented_task": "oriented", **params})


def epoch_rows(plan) -> list[np.ndarray]:
    """Each task's rows over one epoch's steps, in collection order."""
    return [np.concatenate([step[k].rows for step in plan]) for k in range(len(plan[0]))]


@pytest.mark.parametrize("n0", [1, 2, 3])
def test_counts_follow_algorithm_1(n0):
    plan = sampler(upsampling_coefficient=n0).plan_epoch(SIZES, 16, np.random.default_rng(0))
    small, oriented, large = epoch_rows(plan)
    count = n0 * SIZES[1]
    assert len(small) == len(oriented) == len(large) == count
    # the oriented task: every sample exactly n0 times
    assert np.array_equal(np.bincount(oriented, minlength=SIZES[1]), np.full(SIZES[1], n0))
    # enough rows: N distinct ones (without replacement)
    assert len(set(large.tolist())) == count and large.max() < SIZES[2]
    # too few rows: drawn with replacement, within range
    assert small.min() >= 0 and small.max() < SIZES[0] and len(set(small.tolist())) < count


def test_with_replacement_draws_are_independent_not_balanced():
    """Algorithm 1 line 8 draws with replacement: counts vary around N / N_i (a stream of
    passes would give every row floor or ceil of it); over many epochs they are uniform."""
    rng = np.random.default_rng(1)
    counts = np.array([np.bincount(epoch_rows(sampler().plan_epoch(SIZES, 60, rng))[0], minlength=7)
                       for _ in range(300)])  # (epochs, N_small)
    assert (counts.max(axis=1) - counts.min(axis=1)).max() > 1
    np.testing.assert_allclose(counts.mean(axis=0), 60 / 7, rtol=0.05)


def test_a_task_with_exactly_n_rows_gives_each_once():
    (small, oriented, exact) = task_oriented_sets([5, 10, 20], 1, 2, np.random.default_rng(0))
    assert sorted(exact.tolist()) == list(range(20))


@pytest.mark.parametrize("batch", [1, 7, 16, 60, 500])
def test_steps_hold_collections_of_every_task(batch):
    plan = sampler().plan_epoch(SIZES, batch, np.random.default_rng(2))
    assert len(plan) == math.ceil(60 / batch)
    for index, step in enumerate(plan):
        assert [d.task for d in step] == [0, 1, 2] and all(d.source == "train" for d in step)
        sizes = {len(d.rows) for d in step}
        assert len(sizes) == 1, "a step's draws form collections: one row of every task each"
        size = sizes.pop()
        assert size == (batch if index < len(plan) - 1 else 60 - batch * (len(plan) - 1))


def test_collections_are_combined_at_random():
    """The rows of a collection are paired at random (not the i-th row of every task)."""
    plan = sampler().plan_epoch(SIZES, 60, np.random.default_rng(3))
    _, oriented, large = epoch_rows(plan)
    assert not np.array_equal(oriented, np.sort(oriented))
    assert abs(np.corrcoef(oriented, large)[0, 1]) < 0.5


def test_one_seed_one_plan_and_names_equal_indices():
    plans = [sampler().plan_epoch(SIZES, 8, np.random.default_rng(seed)) for seed in (4, 4, 5)]
    as_lists = lambda plan: [[(d.task, d.rows.tolist()) for d in step] for step in plan]
    assert as_lists(plans[0]) == as_lists(plans[1])
    assert as_lists(plans[0]) != as_lists(plans[2])
    by_index = sampler(oriented_task=1).plan_epoch(SIZES, 8, np.random.default_rng(4))
    assert as_lists(by_index) == as_lists(plans[0])
    # every epoch draws its sets afresh
    rng = np.random.default_rng(4)
    first, second = (sampler().plan_epoch(SIZES, 8, rng) for _ in range(2))
    assert as_lists(first) != as_lists(second)


@pytest.mark.parametrize("params,message", [
    ({"oriented_task": "nope"}, r"'oriented_task' of TaskOrientedSampler must name a task "
                                r"\(small, oriented, large\), got 'nope'"),
    ({"oriented_task": 3}, r"'oriented_task' of TaskOrientedSampler must be a task index in \[0, 2\], got 3"),
    ({"upsampling_coefficient": 0}, r"'upsampling_coefficient' of TaskOrientedSampler must be an "
                                    r"integer >= 1, got 0"),
    ({"oriented_task": 1.5}, r"'sampler.oriented_task' of sampler 'task_oriented' must be str \| int"),
])
def test_bad_settings_are_one_line_errors(params, message):
    with pytest.raises(ConfigError, match=message) as info:
        SAMPLERS.build("task_oriented", NAMES, params=params)
    assert "\n" not in str(info.value)


def test_an_empty_task_is_an_error():
    with pytest.raises(ValueError, match="task 'small' has no training rows"):
        sampler().plan_epoch([0, 30, 100], 8, np.random.default_rng(0))


def test_the_trainer_trains_on_the_chosen_collections(synthetic_tasks):
    """The trainer's batches are the plan's steps, row for row, as collections."""
    data = MultiTaskData.build(synthetic_tasks, FEATURIZERS.build("tfidf", params={"min_df": 1}))
    recorded = []
    batch = data.batch

    def recording(split, parts, collections=False, splits=None):
        if split == "train":
            recorded.append(([(k, np.asarray(rows).tolist()) for k, rows, *_ in parts], collections))
        return batch(split, parts, collections=collections, splits=splits)

    data.batch = recording  # the instance's method, for this test only
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    torch.manual_seed(0)
    model = SHARING.build("hard", specs, lambda: ENCODERS.build("mlp", data.spec, params={"hidden_dims": [4]}))
    chosen = SAMPLERS.build("task_oriented", data.task_names, params={"oriented_task": "gamma"})
    config = TrainingConfig(max_epochs=2, patience=0, batch_size=16, progress=False)
    train(model, WEIGHTINGS.build("fixed", data.task_names), chosen, data, config, seed=7)
    rng = np.random.default_rng(7)  # the trainer's generator (seed_everything)
    expected = [[(d.task, d.rows.tolist()) for d in step]
                for _ in range(2) for step in chosen.plan_epoch(data.train_sizes(), 16, rng)]
    assert [parts for parts, _ in recorded] == expected
    assert all(collections for _, collections in recorded)
    assert len(expected) == 2 * math.ceil(2 * 56 / 16)  # gamma has 56 training rows
