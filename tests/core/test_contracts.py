"""Contracts checked over every registry entry: a new method is tested once it is registered.

For every encoder x sharing method: gradients reach every parameter, shared parameters get a
gradient from each task, a state-dict round trip predicts the same, a batch predicts like its
examples one by one, and two trainings with one seed give the same losses.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from textmtl.data.samplers import SAMPLERS
from textmtl.data.features import FEATURIZERS
from textmtl.data.datasets import DATASETS
from textmtl.encoders import ENCODERS
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.trainer import TrainingConfig, task_losses, train
from textmtl.weighting import WEIGHTINGS

from .helpers import ENCODER_NAMES, TINY_ENCODER_PARAMS, featurized

COMBINATIONS = [(e, s) for e in ENCODER_NAMES for s in SHARING.names()]


@pytest.fixture(scope="module")
def data_by_encoder(synthetic_tasks):
    return {name: featurized(synthetic_tasks, name) for name in ENCODER_NAMES}


def build(encoder_name, sharing_name, data, seed=0, sharing_params=None):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build(encoder_name, data.spec, params=TINY_ENCODER_PARAMS.get(encoder_name, {}))
    return SHARING.build(sharing_name, specs, factory, params=sharing_params or {})


def full_batch(data, split="train", per_task=6):
    return data.batch(split, [(k, np.arange(per_task)) for k in range(len(data.tasks))])


def grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_gradients_reach_every_parameter(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data)
    inputs, task_index, labels = full_batch(data)
    losses = task_losses(model(inputs, task_index), labels, task_index, data.task_names)
    grads = grads_of(model, sum(losses.values()))
    missing = [n for n, g in grads.items() if g is None or not torch.any(g != 0)]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_shared_parameters_learn_from_each_task(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data)
    inputs, task_index, labels = full_batch(data)
    logits = model(inputs, task_index)
    losses = task_losses(logits, labels, task_index, data.task_names)
    for name in data.task_names:
        model.zero_grad(set_to_none=True)
        losses[name].backward(retain_graph=True)
        for p in model.shared_parameters():
            assert p.grad is not None and torch.any(p.grad != 0), f"{name} does not train a shared parameter"
        for p in model.task_parameters(name):
            assert p.grad is not None and torch.any(p.grad != 0), f"{name} does not train its own parameters"
        for other in data.task_names:
            if other != name:  # another task's output layer never learns from this task
                head = model.task_parameters(other)[-1]
                assert head.grad is None or not torch.any(head.grad != 0)


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_parameter_groups_are_consistent(encoder_name, sharing_name, data_by_encoder):
    model = build(encoder_name, sharing_name, data_by_encoder[encoder_name])
    ids = lambda params: {id(p) for p in params}
    shared = ids(model.shared_parameters())
    per_task = [ids(model.task_parameters(n)) for n in model.task_names]
    assert all(shared.isdisjoint(t) for t in per_task)
    assert shared.union(*per_task) == ids(model.parameters()), "a parameter belongs to no group"


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_state_dict_round_trip_predicts_the_same(encoder_name, sharing_name, data_by_encoder, tmp_path):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data, seed=1).eval()
    inputs, task_index, _ = full_batch(data, "test", 5)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    other = build(encoder_name, sharing_name, data, seed=2).eval()
    with torch.no_grad():
        assert not torch.allclose(model(inputs, task_index), other(inputs, task_index))
        other.load_state_dict(torch.load(tmp_path / "model.pt"))
        torch.testing.assert_close(model(inputs, task_index), other(inputs, task_index))


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_batch_predicts_like_its_examples_one_by_one(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data).eval()
    parts = [(k, np.arange(4)) for k in range(len(data.tasks))]
    inputs, task_index, _ = data.batch("dev", parts)
    with torch.no_grad():
        together = model(inputs, task_index)
        for row, (k, position) in enumerate((k, p) for k, ps in parts for p in ps):
            alone_inputs, alone_index, _ = data.batch("dev", [(k, np.array([position]))])
            alone = model(alone_inputs, alone_index)
            torch.testing.assert_close(together[row: row + 1], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_same_seed_gives_same_losses(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    config = TrainingConfig(max_epochs=2, patience=0, batch_size=8, progress=False)
    runs = []
    for _ in range(2):
        model = build(encoder_name, sharing_name, data, seed=3)
        result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"),
                       data, config, seed=3)
        runs.append([c["train_loss"] for c in result.curves])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("registry", [ENCODERS, SHARING, WEIGHTINGS, SAMPLERS, FEATURIZERS, DATASETS],
                         ids=lambda r: r.axis)
def test_config_schema_is_keyword_only_with_defaults(registry):
    for name in registry.names():
        constructor = registry.get(name)
        target = constructor.__init__ if inspect.isclass(constructor) else constructor
        for p in inspect.signature(target).parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                assert p.annotation is not inspect.Parameter.empty, f"{registry.axis} {name}.{p.name} has no type"
        assert inspect.getdoc(constructor), f"{registry.axis} {name} has no docstring"
