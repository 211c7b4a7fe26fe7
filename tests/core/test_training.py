"""Training-loop properties: cross-stitch identity, early stopping and model selection,
samplers, task streams, loss weightings, the results table and the baselines' C selection."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

from textmtl import baselines
from textmtl.data.samplers import SAMPLERS, TaskStreams
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.results import AVERAGE_ROW, Record, build_table
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.evaluation import evaluate
from textmtl.training.step import task_losses
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import ENCODER_NAMES, TINY_ENCODER_PARAMS, featurized

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data_by_encoder(synthetic_tasks):
    return {name: featurized(synthetic_tasks, name) for name in ENCODER_NAMES}


@pytest.fixture(scope="module")
def tfidf_data(synthetic_tasks):
    return featurized(synthetic_tasks, "mlp")


def build(sharing_name, data, encoder_name="mlp", seed=0, params=None, encoder_params=None):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes, "token" if t.kind == "tagging" else "sequence")
             for t in data.tasks]
    encoder_params = TINY_ENCODER_PARAMS.get(encoder_name, {}) if encoder_params is None else encoder_params
    factory = lambda: ENCODERS.build(encoder_name, data.spec, params=encoder_params)
    return SHARING.build(sharing_name, specs, factory, params=params or {})


def quick_config(**changes) -> TrainingConfig:
    values = dict(max_epochs=6, patience=0, batch_size=8, lr=0.01, progress=False, device="cpu")
    values.update(changes)
    return TrainingConfig(**values)


def fixed(data, **params):
    return WEIGHTINGS.build("fixed", data.task_names, params=params)


def every_task():
    return SAMPLERS.build("every_task")


# ---------------------------------------------------------------- cross-stitch identity

@pytest.mark.parametrize("encoder_name", ENCODER_NAMES)
def test_cross_stitch_identity_equals_single_task(encoder_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    single = build("single_task", data, encoder_name, seed=1).eval()
    stitch = build("cross_stitch", data, encoder_name, seed=2, params={"self_weight": 1.0}).eval()
    missing, unexpected = stitch.load_state_dict(single.state_dict(), strict=False)
    assert list(missing) == ["alphas"] and list(unexpected) == []
    k = len(data.tasks)
    assert torch.equal(stitch.alphas.detach(), torch.eye(k).repeat(stitch.alphas.shape[0], 1, 1))
    # a combined batch with rows of every task, interleaved
    batch = data.batch("dev", [(t, np.arange(8)) for t in range(k)])
    order = torch.randperm(batch.size, generator=torch.Generator().manual_seed(0))
    batch = batch.select(order)
    with torch.no_grad():
        expected = single(batch)
        got = stitch(batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_cross_stitch_identity_equals_single_task_tagging():
    from textmtl.data.batching import MultiTaskData
    from textmtl.data.features import FEATURIZERS

    tasks = [token_task("tag_a", 3, 1), token_task("tag_b", 2, 2)]
    data = MultiTaskData.build(tasks, FEATURIZERS.build("tokens"))
    params = {"embedding_dim": 6, "hidden_dim": 4, "pooling": "none"}
    single = build("single_task", data, "bilstm", 1, encoder_params=params).eval()
    stitch = build("cross_stitch", data, "bilstm", 2, {"self_weight": 1.0}, params).eval()
    stitch.load_state_dict(single.state_dict(), strict=False)
    batch = data.batch("dev", [(0, np.arange(5)), (1, np.arange(5))])
    with torch.no_grad():
        expected, got = single(batch), stitch(batch)
    assert got.shape == batch.labels.shape + (3,)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def token_task(name, num_tags, seed, sizes=(30, 10, 10)):
    """Tagging task: each word's tag is a fixed function of the word (learnable, unambiguous)."""
    from textmtl.data.tasks import Split, Task

    rng = np.random.default_rng(seed)
    splits = []
    for size in sizes:
        texts, labels = [], []
        for _ in range(size):
            words = [int(w) for w in rng.integers(0, 12, size=int(rng.integers(2, 9)))]
            texts.append([f"t{w}" for w in words])
            labels.append([w % num_tags for w in words])
        splits.append(Split(texts, labels))
    return Task(name, tuple(f"T{i}" for i in range(num_tags)), *splits, kind="tagging")


# ---------------------------------------------------------------- early stopping, selection

def check_selection(result, config):
    # the dev metric decides; the dev loss breaks ties (lower is better)
    keys = [(c["dev_score"], -c["dev_loss"]) for c in result.curves]
    assert [c["epoch"] for c in result.curves] == list(range(1, len(keys) + 1))
    best = max(range(len(keys)), key=lambda i: (keys[i], -i)) + 1  # first epoch with the best key
    assert result.best_epoch == best
    assert result.dev == result.curves[best - 1]["dev"]
    if config.patience and len(keys) < config.max_epochs:
        # stopped after exactly `patience` epochs without a gain over the best
        assert len(keys) == best + config.patience
        assert all(k <= keys[best - 1] for k in keys[best:])
    return [k[0] for k in keys]


def test_early_stopping_and_best_epoch_metrics(tfidf_data):
    config = quick_config(max_epochs=40, patience=2, lr=0.05)
    model = build("hard", tfidf_data, seed=3)
    result = train(model, fixed(tfidf_data), every_task(), tfidf_data, config, seed=3)
    scores = check_selection(result, config)
    assert len(scores) < config.max_epochs, "the run never stopped early; the test checks nothing"
    # the returned model holds the best-dev weights: dev and test re-evaluate to the record
    assert evaluate(model, tfidf_data, "dev", CPU) == result.dev
    assert evaluate(model, tfidf_data, "test", CPU) == result.test
    fresh = build("hard", tfidf_data, seed=99)
    fresh.load_state_dict(result.state_dict)
    assert evaluate(fresh, tfidf_data, "test", CPU) == result.test


def test_patience_stops_on_a_flat_dev_score(tfidf_data):
    # lr so small that the dev score never moves: the first epoch stays best
    config = quick_config(max_epochs=20, patience=3, lr=1e-9, clip_norm=None)
    result = train(build("hard", tfidf_data), fixed(tfidf_data), every_task(), tfidf_data, config, seed=1)
    assert result.best_epoch == 1
    assert len(result.curves) == 1 + 3


def test_patience_zero_never_stops(tfidf_data):
    config = quick_config(max_epochs=5, patience=0, lr=1e-9)
    result = train(build("hard", tfidf_data), fixed(tfidf_data), every_task(), tfidf_data, config, seed=1)
    assert len(result.curves) == 5 and result.best_epoch == 1


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_select_on_task_uses_that_tasks_dev_metric(tfidf_data, metric):
    config = quick_config(max_epochs=8, select_on="beta", select_metric=metric, lr=0.02)
    result = train(build("hard", tfidf_data, seed=4), fixed(tfidf_data), every_task(), tfidf_data,
                   config, seed=4)
    for curve in result.curves:
        assert curve["dev_score"] == curve["dev"]["beta"][metric]
        assert curve["dev_loss"] == pytest.approx(curve["dev"]["beta"]["loss"])
    check_selection(result, config)
    average = [np.mean([m["accuracy"] for m in c["dev"].values()]) for c in result.curves]
    beta = [(c["dev"]["beta"][metric], -c["dev"]["beta"]["loss"]) for c in result.curves]
    best_beta = max(range(len(beta)), key=lambda i: (beta[i], -i))
    assert result.best_epoch == best_beta + 1
    if best_beta != int(np.argmax(average)):
        assert result.best_epoch != int(np.argmax(average)) + 1


def test_select_on_average_is_mean_over_tasks(tfidf_data):
    config = quick_config(max_epochs=3)
    result = train(build("hard", tfidf_data), fixed(tfidf_data), every_task(), tfidf_data, config, seed=2)
    for curve in result.curves:
        assert curve["dev_score"] == pytest.approx(np.mean([m["accuracy"] for m in curve["dev"].values()]))


def test_select_on_unknown_task_is_a_config_error(tfidf_data):
    from textmtl.errors import ConfigError

    with pytest.raises(ConfigError, match="'training.select_on'.*alpha, beta, gamma.*'delta'"):
        train(build("hard", tfidf_data), fixed(tfidf_data), every_task(), tfidf_data,
              quick_config(select_on="delta"), seed=1)


# ---------------------------------------------------------------- samplers

SIZES = [100, 300, 600]


def plans(sampler, epochs=60, sizes=SIZES, batch=10, seed=0):
    rng = np.random.default_rng(seed)
    return [sampler.plan_epoch(sizes, batch, rng) for _ in range(epochs)]


def draw_rows(rows) -> int:
    """Rows of a draw: a count, or the positions a sampler chose itself (Task Oriented Sampling)."""
    return rows if isinstance(rows, (int, np.integer)) else len(rows)


def step_task_counts(epoch_plans, k):
    counts = np.zeros(k)
    for plan in epoch_plans:
        for step in plan:
            for task, *_ in step:
                counts[task] += 1
    return counts


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_plans_valid_epochs(name):
    """Generic contract: valid task ids and batch sizes, documented epoch length, every task trained."""
    sampler = SAMPLERS.build(name)
    batch = 10
    for epoch in plans(sampler, epochs=20, batch=batch):
        for step in epoch:
            assert step, "empty step"
            assert all(0 <= k < len(SIZES) and draw_rows(n) == batch and source == "train"
                       for k, n, source in step)
            assert len({k for k, *_ in step}) == len(step), "a task twice in one step"
        # a sampler choosing its rows (Task Oriented Sampling) has an epoch length of its own,
        # tested with it
        if isinstance(epoch[0][0].rows, (int, np.integer)):
            one_task = all(len(step) == 1 for step in epoch)
            expected = math.ceil(sum(SIZES) / batch) if one_task else math.ceil(max(SIZES) / batch)
            assert len(epoch) == expected
    counts = step_task_counts(plans(sampler, epochs=20, batch=batch), len(SIZES))
    assert (counts > 0).all(), f"{name} never trains some task: {counts}"


def test_proportional_frequencies_match_sizes():
    counts = step_task_counts(plans(SAMPLERS.build("proportional")), len(SIZES))
    np.testing.assert_allclose(counts / counts.sum(), np.array(SIZES) / sum(SIZES), atol=0.02)


def test_uniform_frequencies_are_equal():
    counts = step_task_counts(plans(SAMPLERS.build("uniform")), len(SIZES))
    np.testing.assert_allclose(counts / counts.sum(), 1 / 3, atol=0.02)


def test_temperature_one_is_proportional():
    proportional = SAMPLERS.build("proportional")
    tempered = SAMPLERS.build("temperature", params={"temperature": 1.0})
    np.testing.assert_allclose(tempered.probabilities(SIZES), proportional.probabilities(SIZES))
    assert plans(tempered, epochs=5, seed=7) == plans(proportional, epochs=5, seed=7)


def test_temperature_flattens_towards_uniform():
    p2 = SAMPLERS.build("temperature", params={"temperature": 2.0}).probabilities(SIZES)
    np.testing.assert_allclose(p2, np.sqrt(SIZES) / np.sqrt(SIZES).sum())
    p_hot = SAMPLERS.build("temperature", params={"temperature": 1e6}).probabilities(SIZES)
    np.testing.assert_allclose(p_hot, 1 / 3, atol=1e-4)
    counts = step_task_counts(plans(SAMPLERS.build("temperature", params={"temperature": 2.0})), 3)
    np.testing.assert_allclose(counts / counts.sum(), p2, atol=0.02)


def test_temperature_must_be_positive():
    from textmtl.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'temperature' of TemperatureSampler must be > 0, got -1"):
        SAMPLERS.build("temperature", params={"temperature": -1.0})


def test_round_robin_cycles_in_order():
    (plan,) = plans(SAMPLERS.build("round_robin"), epochs=1)
    assert [step[0][0] for step in plan] == [i % 3 for i in range(len(plan))]
    assert len(plan) == math.ceil(sum(SIZES) / 10)


def test_every_task_one_batch_per_task_per_step():
    (plan,) = plans(SAMPLERS.build("every_task"), epochs=1)
    assert plan == [[(0, 10, "train"), (1, 10, "train"), (2, 10, "train")]] * math.ceil(max(SIZES) / 10)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_unlabelled_rows_follow_each_labelled_draw(name):
    """With ``unlabelled_per_step``, every task drawn in a step brings that many unlabelled
    rows, except tasks without unlabelled texts; the labelled plan is unchanged."""
    sampler = SAMPLERS.build(name, ["a", "b", "c"], params={"unlabelled_per_step": 4})
    plain = SAMPLERS.build(name, ["a", "b", "c"])
    with_rows = sampler.plan_epoch(SIZES, 10, np.random.default_rng(3), unlabelled_sizes=[50, 0, 20])
    without = plain.plan_epoch(SIZES, 10, np.random.default_rng(3))
    for step, reference in zip(with_rows, without):
        labelled = [d for d in step if d.source == "train"]
        as_lists = lambda draws: [(d.task, np.asarray(d.rows).tolist(), d.source) for d in draws]
        assert as_lists(labelled) == as_lists(reference)
        expected = [(d.task, 4, "unlabelled") for d in labelled if d.task != 1]
        assert [d for d in step if d.source == "unlabelled"] == expected


def test_streams_give_exact_counts_for_collections():
    """Collections need one row of every task: a small task's rows repeat within one draw."""
    streams = TaskStreams([3, 10], np.random.default_rng(0))
    rows = streams.take(0, 7, exact=True)
    assert len(rows) == 7 and set(rows) == {0, 1, 2}
    assert len(streams.take(0, 7)) == 3  # not exact: a task smaller than the batch gives all once


# ---------------------------------------------------------------- task streams

@pytest.mark.parametrize("chunks", [[7], [3, 5, 11], [64]])
def test_task_streams_yield_every_row_once_per_pass(chunks):
    sizes = [23, 9]
    streams = TaskStreams(sizes, np.random.default_rng(0))
    for k, size in enumerate(sizes):
        taken, i = [], 0
        while len(taken) < 4 * size:
            piece = streams.take(k, chunks[i % len(chunks)])
            assert len(piece) == min(chunks[i % len(chunks)], size)
            taken.extend(piece.tolist())
            i += 1
        passes = [sorted(taken[p * size:(p + 1) * size]) for p in range(4)]
        assert all(p == list(range(size)) for p in passes)
        assert taken[:size] != taken[size:2 * size], "passes are not reshuffled"


def test_task_streams_use_the_given_order():
    order = lambda k, rng: np.arange(5)[::-1].copy()
    streams = TaskStreams([5], np.random.default_rng(0), order)
    assert [streams.take(0, 3).tolist() for _ in range(3)] == [[4, 3, 2], [1, 0, 4], [3, 2, 1]]


# ---------------------------------------------------------------- weightings

def test_fixed_weights_scale_losses_exactly():
    weighting = WEIGHTINGS.build("fixed", ["a", "b", "c"], params={"weights": {"a": 2.5}, "default": 0.5})
    la, lb = torch.tensor(1.3, requires_grad=True), torch.tensor(0.7, requires_grad=True)
    total = weighting.combine({"a": la, "b": lb})  # task c absent from this step
    assert total.item() == pytest.approx(2.5 * 1.3 + 0.5 * 0.7, rel=1e-7)
    total.backward()
    assert la.grad.item() == 2.5 and lb.grad.item() == 0.5


def test_fixed_weights_scale_gradients_in_a_model(tfidf_data):
    model = build("hard", tfidf_data, seed=5)
    batch = tfidf_data.batch("train", [(k, np.arange(6)) for k in range(3)])
    losses = task_losses(model(batch), batch.labels, batch.task_index, tfidf_data.task_names)
    grads = {}
    for weights in ({}, {"alpha": 3.0, "beta": 3.0, "gamma": 3.0}):
        model.zero_grad()
        fixed(tfidf_data, weights=weights).combine(losses).backward(retain_graph=True)
        grads[len(weights)] = [p.grad.clone() for p in model.parameters()]
    for g1, g3 in zip(grads[0], grads[3]):
        torch.testing.assert_close(g3, 3.0 * g1)


def test_fixed_weights_reject_bad_values():
    from textmtl.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown task 'zeta'"):
        WEIGHTINGS.build("fixed", ["a"], params={"weights": {"zeta": 1.0}})
    with pytest.raises(ConfigError, match=">= 0"):
        WEIGHTINGS.build("fixed", ["a"], params={"weights": {"a": -1.0}})


def test_uncertainty_weighting_parameters_get_gradients():
    weighting = WEIGHTINGS.build("uncertainty", ["a", "b", "c"])
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(0.25)}
    total = weighting.combine(losses)
    assert total.item() == pytest.approx(2.25)  # s = 0: weights 1, no offset
    total.backward()
    # d/ds [exp(-s) L + s] = 1 - L at s = 0; task c is absent: no gradient
    np.testing.assert_allclose(weighting.log_variances.grad.numpy(), [1 - 2.0, 1 - 0.25, 0.0])


def test_trainer_optimises_uncertainty_parameters(tfidf_data):
    weighting = WEIGHTINGS.build("uncertainty", tfidf_data.task_names)
    before = weighting.log_variances.detach().clone()
    train(build("hard", tfidf_data), weighting, every_task(), tfidf_data, quick_config(max_epochs=2), seed=1)
    assert not torch.equal(weighting.log_variances.detach(), before)


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_every_weighting_ignores_absent_tasks_and_is_differentiable(name):
    weighting = WEIGHTINGS.build(name, ["a", "b"])
    loss = torch.tensor(0.8, requires_grad=True)
    total = weighting.combine({"b": loss})
    total.backward()
    assert loss.grad is not None and loss.grad.item() > 0


# ---------------------------------------------------------------- results table

def parse_cell(cell: str) -> tuple[float, float]:
    match = re.fullmatch(r"(-?[\d.]+)(?: ± ([\d.]+))?", cell)
    assert match, cell
    return float(match.group(1)), float(match.group(2) or 0.0)


def test_table_average_is_mean_over_seeds_of_per_seed_task_averages():
    accuracy = {  # (method, seed, task) -> test accuracy
        ("single_task", 1, "x"): 0.60, ("single_task", 1, "y"): 0.90,
        ("single_task", 2, "x"): 0.70, ("single_task", 2, "y"): 0.70,
        ("single_task", 3, "x"): 0.65, ("single_task", 3, "y"): 0.95,
        ("hard", 1, "x"): 0.80, ("hard", 1, "y"): 0.80,
        ("hard", 2, "x"): 0.50, ("hard", 2, "y"): 1.00,
        ("hard", 3, "x"): 0.75, ("hard", 3, "y"): 0.85,
    }
    records = [Record(m, s, t, {"accuracy": a}, {"accuracy": a}) for (m, s, t), a in accuracy.items()]
    table = build_table(records, ["single_task", "hard"], ["x", "y"], baseline="single_task")
    assert table.header == ["task", "single_task", "hard", "Δ hard"]
    rows = {row[0]: row for row in table.rows}
    assert list(rows) == ["x", "y", AVERAGE_ROW]
    for column, method in ((1, "single_task"), (2, "hard")):
        per_seed = [100 * np.mean([accuracy[(method, s, t)] for t in "xy"]) for s in (1, 2, 3)]
        mean, std = parse_cell(rows[AVERAGE_ROW][column])
        assert mean == pytest.approx(np.mean(per_seed), abs=0.006)
        assert std == pytest.approx(np.std(per_seed, ddof=1), abs=0.006)
        for task in "xy":
            values = [100 * accuracy[(method, s, task)] for s in (1, 2, 3)]
            assert parse_cell(rows[task][column]) == pytest.approx(
                (np.mean(values), np.std(values, ddof=1)), abs=0.006)
    delta = float(rows[AVERAGE_ROW][3])
    expected = 100 * (np.mean([accuracy[k] for k in accuracy if k[0] == "hard"])
                      - np.mean([accuracy[k] for k in accuracy if k[0] == "single_task"]))
    assert delta == pytest.approx(expected, abs=0.006)


def test_table_average_uses_only_seeds_complete_for_every_task():
    records = [Record("hard", 1, "x", {"accuracy": 0.5}, {}), Record("hard", 1, "y", {"accuracy": 0.7}, {}),
               Record("hard", 2, "x", {"accuracy": 0.9}, {})]  # seed 2 lacks task y
    table = build_table(records, ["hard"], ["x", "y"])
    assert table.rows[-1] == [AVERAGE_ROW, "60.00"]


# ---------------------------------------------------------------- baselines choose C on dev

def dev_accuracy_per_task(data, c):
    out = {}
    for k, task in enumerate(data.tasks):
        x = data.tables["train"].matrix[data.rows["train"][k]]
        y = np.asarray(task.train.labels)
        model = baselines._fit(x, y, c)
        dev_x = data.tables["dev"].matrix[data.rows["dev"][k]]
        out[task.name] = float((model.predict(dev_x) == np.asarray(task.dev.labels)).mean())
    return out


@pytest.mark.parametrize("grid", [(1e-4, 100.0), (100.0, 1e-4)])
def test_logreg_per_task_chooses_c_on_dev(tfidf_data, monkeypatch, grid):
    monkeypatch.setattr(baselines, "C_GRID", grid)
    results = baselines.logreg_per_task(tfidf_data)
    scores = {c: dev_accuracy_per_task(tfidf_data, c) for c in grid}
    differs = 0
    for task in tfidf_data.task_names:
        a, b = scores[grid[0]][task], scores[grid[1]][task]
        best = grid[0] if a >= b else grid[1]  # ties keep the first
        assert results[task]["C"] == best
        assert results[task]["dev"]["accuracy"] == pytest.approx(max(a, b))
        differs += a != b
    assert differs, "both C values score the same on every dev set; the test checks nothing"


def test_logreg_pooled_chooses_c_on_mean_dev(monkeypatch, synthetic_tasks):
    data = featurized([t for t in synthetic_tasks if t.num_classes == 2], "mlp")  # one label space
    monkeypatch.setattr(baselines, "C_GRID", (1e-4, 100.0))
    results = baselines.logreg_pooled(data)
    chosen = {r["C"] for r in results.values()}
    assert len(chosen) == 1
    means = {}
    for c in (1e-4, 100.0):
        monkeypatch.setattr(baselines, "C_GRID", (c,))
        means[c] = np.mean([r["dev"]["accuracy"] for r in baselines.logreg_pooled(data).values()])
    assert means[1e-4] != means[100.0]
    assert chosen == {max(means, key=means.get)}


def test_baselines_fit_their_own_unrestricted_vocabulary(synthetic_tasks):
    """Per task: every 1-2-gram of that task's training texts, terms seen once included; pooled:
    of all tasks' training texts. Results equal the fit on those features."""
    from sklearn.feature_extraction.text import CountVectorizer

    binary = [t for t in synthetic_tasks if t.num_classes == 2]

    def terms(tasks):
        texts = [text for task in tasks for text in task.train.texts]
        return len(CountVectorizer(ngram_range=(1, 2), min_df=1).fit(texts).vocabulary_)

    per_task = baselines.run_baseline("logreg_per_task", synthetic_tasks)
    for task in synthetic_tasks:
        assert per_task[task.name]["features"] == terms([task])
        alone = baselines.logreg_per_task(baselines.own_features([task]))[task.name]
        assert per_task[task.name]["test"] == alone["test"] and per_task[task.name]["C"] == alone["C"]
    pooled = baselines.run_baseline("logreg_pooled", binary)
    assert {r["features"] for r in pooled.values()} == {terms(binary)}
    assert terms(binary) > max(terms([t]) for t in binary)
    with pytest.raises(Exception, match="unknown baseline 'nope'"):
        baselines.run_baseline("nope", binary)


# -- training.train_max_tokens -----------------------------------------------------------------

def test_truncated_batch_cuts_ids_lengths_and_tagging_labels(data_by_encoder):
    data = data_by_encoder["bilstm"]
    batch = data.batch("train", [(0, np.arange(6))])
    cut = batch.truncated(4)
    assert cut.inputs.token_ids.shape[1] == 4
    assert torch.equal(cut.inputs.token_ids, batch.inputs.token_ids[:, :4])
    assert torch.equal(cut.inputs.lengths, batch.inputs.lengths.clamp(max=4))
    assert batch.truncated(batch.inputs.token_ids.shape[1]) is batch  # nothing longer: unchanged
    tagging = dataclasses.replace(batch, labels=torch.arange(batch.inputs.token_ids.shape[1]).repeat(6, 1),
                                  level="token")
    assert torch.equal(tagging.truncated(4).labels, tagging.labels[:, :4])


def test_train_max_tokens_cuts_training_batches_only(data_by_encoder):
    """The model sees training texts of at most N tokens, evaluation the whole texts."""
    data = data_by_encoder["bilstm"]
    model = build("hard", data, "bilstm")
    widths = {True: set(), False: set()}
    forward = model.forward

    def spy(batch):
        widths[model.training].add(batch.inputs.token_ids.shape[1])
        return forward(batch)

    model.forward = spy
    train(model, fixed(data), every_task(), data, quick_config(max_epochs=1, train_max_tokens=3), seed=0)
    assert widths[True] == {3}  # every synthetic batch has a text longer than 3 tokens
    assert max(widths[False]) > 3


def test_train_max_tokens_refuses_other_features_and_bad_values(tfidf_data):
    model = build("hard", tfidf_data)
    with pytest.raises(ConfigError, match="train_max_tokens.*'tfidf'"):
        train(model, fixed(tfidf_data), every_task(), tfidf_data, quick_config(train_max_tokens=3), seed=0)
    with pytest.raises(ConfigError, match="train_max_tokens' must be an integer >= 1"):
        quick_config(train_max_tokens=0).validate()
