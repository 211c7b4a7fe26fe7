"""Contracts checked over every registry entry: a new method is tested once it is registered.

For every encoder x sharing method: gradients reach every parameter (task losses plus the
method's extra losses and penalties), shared parameters get a gradient from each task, the
three parameter groups partition the parameters, ``param_groups()`` covers every trainable
parameter once, an export / load round trip predicts the same, a batch predicts like its
examples one by one (or, for methods whose rows interact, like its collections one at a time),
and two trainings with one seed give the same losses. With ``head_hidden`` every method gives
every task its own MLP head (hidden layer, ReLU, output layer), trained and saved like the rest.
A method that reads only some encoder input kinds (``input_kinds``) is checked with the encoders
that give them; one that needs collections trains with a sampler that draws them.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData, UNLABELLED
from textmtl.data.datasets import DATASETS
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.data.tasks import Task
from textmtl.encoders import ENCODERS
from textmtl.regularizers import REGULARIZERS
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.step import task_losses
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import (ENCODER_NAMES, TINY_ENCODER_PARAMS, TINY_FEATURE_PARAMS, TINY_SHARING_PARAMS,
                      with_unlabelled)


def reads(sharing_name: str, encoder_name: str) -> bool:
    """The method can run with the encoder (its ``input_kinds`` capability)."""
    kinds = SHARING.get(sharing_name).input_kinds
    return kinds is None or ENCODERS.get(encoder_name).input_kind in kinds


COMBINATIONS = [(e, s) for e in ENCODER_NAMES for s in SHARING.names() if reads(s, e)]


@pytest.fixture(scope="module")
def data_by_encoder(synthetic_tasks):
    tasks = [with_unlabelled(t, i) for i, t in enumerate(synthetic_tasks)]
    out = {}
    for name in ENCODER_NAMES:
        kind = ENCODERS.get(name).input_kind
        featurizer = FEATURIZERS.build(kind, params=TINY_FEATURE_PARAMS.get(kind, {}))
        out[name] = MultiTaskData.build(tasks, featurizer, unlabelled=True)
    return out


def build(encoder_name, sharing_name, data, seed=0, sharing_params=None):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build(encoder_name, data.spec, params=TINY_ENCODER_PARAMS.get(encoder_name, {}))
    params = {**TINY_SHARING_PARAMS.get(sharing_name, {}), **(sharing_params or {})}
    return SHARING.build(sharing_name, specs, factory, params=params)


def full_batch(data, model, split="train", per_task=6):
    """Rows of every task; unlabelled rows too for a method that reads them; as collections for
    a method that needs them."""
    parts = [(k, np.arange(per_task)) for k in range(len(data.tasks))]
    if split == "train" and model.needs_unlabelled_rows:
        parts += [(k, np.arange(3), UNLABELLED) for k in range(len(data.tasks))]
    return data.batch(split, parts, collections=model.needs_collections)


def total_loss(model, batch, data):
    losses = task_losses(model(batch), batch.labels, batch.task_index, data.task_names)
    extras = list(model.extra_losses().values()) + list(model.penalties().values())
    return losses, sum(losses.values()) + sum(extras)


def parameters_without_gradient(model, batch, data) -> list[str]:
    """Names of the trainable parameters the total loss of ``batch`` gives no non-zero gradient."""
    _, total = total_loss(model, batch, data)
    model.zero_grad(set_to_none=True)
    total.backward()
    return [n for n, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))]


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_gradients_reach_every_parameter(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data)
    batch = full_batch(data, model)
    missing = parameters_without_gradient(model, batch, data)
    assert not missing, f"no gradient for {missing}"
    assert set(model.extra_losses()) <= set(model.extra_loss_names), "an extra loss is not declared"


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_shared_parameters_learn_from_each_task(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data)
    batch = full_batch(data, model)
    logits = model(batch)
    losses = task_losses(logits, batch.labels, batch.task_index, data.task_names)
    for name in data.task_names:
        model.zero_grad(set_to_none=True)
        losses[name].backward(retain_graph=True)
        for p in model.shared_parameters():
            assert p.grad is not None and torch.any(p.grad != 0), f"{name} does not train a shared parameter"
        for p in model.task_parameters(name):
            if p.requires_grad:
                assert p.grad is not None and torch.any(p.grad != 0), f"{name} does not train its own parameters"
        for other in data.task_names:
            # another task's output layer never learns from this task (a method that pools the
            # tasks, ``pooled``, has no task-specific parameters at all)
            if other != name and model.task_parameters(other):
                head = model.task_parameters(other)[-1]
                assert head.grad is None or not torch.any(head.grad != 0)


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_parameter_groups_are_consistent(encoder_name, sharing_name, data_by_encoder):
    model = build(encoder_name, sharing_name, data_by_encoder[encoder_name])
    ids = lambda params: {id(p) for p in params}
    shared, method = ids(model.shared_parameters()), ids(model.method_parameters())
    per_task = [ids(model.task_parameters(n)) for n in model.task_names]
    assert shared.isdisjoint(method) and all(shared.isdisjoint(t) and method.isdisjoint(t) for t in per_task)
    for i, a in enumerate(per_task):
        assert all(a.isdisjoint(b) for b in per_task[i + 1:]), "a parameter belongs to two tasks"
    assert shared.union(method, *per_task) == ids(model.parameters()), "a parameter belongs to no group"
    grouped = [id(p) for g in model.param_groups() for p in g["params"]]
    assert len(grouped) == len(set(grouped)), "a parameter is in two optimiser groups"
    assert set(grouped) == ids(p for p in model.parameters() if p.requires_grad)
    assert all(g.get("lr_scale", 1.0) > 0 and "name" in g for g in model.param_groups())


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_exported_state_round_trip_predicts_the_same(encoder_name, sharing_name, data_by_encoder, tmp_path):
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data, seed=1).eval()
    batch = full_batch(data, model, "test", 5)
    torch.save(model.export_state(), tmp_path / "model.pt")
    other = build(encoder_name, sharing_name, data, seed=2).eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch), other(batch))
        other.load_exported_state(torch.load(tmp_path / "model.pt"))
        torch.testing.assert_close(model(batch), other(batch))


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_batch_predicts_like_its_parts(encoder_name, sharing_name, data_by_encoder):
    """Rows that do not interact predict alone as in the batch; rows that interact (a method
    flag) predict per collection as in the batch."""
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data).eval()
    k = len(data.tasks)
    parts = [(t, np.arange(4)) for t in range(k)]
    batch = data.batch("dev", parts, collections=model.rows_interact)
    with torch.no_grad():
        together = model(batch)
        if model.rows_interact:
            for i in range(4):
                alone = model(data.batch("dev", [(t, np.array([i])) for t in range(k)], collections=True))
                rows = (batch.collection == i).nonzero(as_tuple=True)[0]
                torch.testing.assert_close(together[rows], alone, rtol=1e-4, atol=1e-5)
        else:
            for row, (t, position) in enumerate((t, p) for t, ps in parts for p in ps):
                alone = model(data.batch("dev", [(t, np.array([position]))]))
                torch.testing.assert_close(together[row: row + 1], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("encoder_name,sharing_name", COMBINATIONS)
def test_same_seed_gives_same_losses(encoder_name, sharing_name, data_by_encoder):
    data = data_by_encoder[encoder_name]
    config = TrainingConfig(max_epochs=2, patience=0, batch_size=8, progress=False)
    runs = []
    for _ in range(2):
        model = build(encoder_name, sharing_name, data, seed=3)
        params = {"unlabelled_per_step": 4} if model.needs_unlabelled_rows else {}
        sampler_name = "task_oriented" if model.needs_collections else "every_task"
        sampler = SAMPLERS.build(sampler_name, data.task_names, params=params)
        result = train(model, WEIGHTINGS.build("fixed", data.task_names), sampler, data, config, seed=3)
        runs.append([(c["train_loss"], c.get("extra_losses")) for c in result.curves])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("registry", [ENCODERS, SHARING, WEIGHTINGS, SAMPLERS, REGULARIZERS,
                                      FEATURIZERS, DATASETS], ids=lambda r: r.axis)
def test_config_schema_is_keyword_only_with_defaults(registry):
    for name in registry.names():
        constructor = registry.get(name)
        target = constructor.__init__ if inspect.isclass(constructor) else constructor
        for p in inspect.signature(target).parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                assert p.annotation is not inspect.Parameter.empty, f"{registry.axis} {name}.{p.name} has no type"
        assert inspect.getdoc(constructor), f"{registry.axis} {name} has no docstring"


HEAD_COMBINATIONS = [(e, s) for e in ("mlp", "bilstm") if e in ENCODER_NAMES for s in SHARING.names()
                     if reads(s, e)]


@pytest.mark.parametrize("encoder_name,sharing_name", HEAD_COMBINATIONS)
def test_per_task_mlp_heads(encoder_name, sharing_name, data_by_encoder, tmp_path):
    """``head_hidden: 7``: each task's last four parameters are its hidden layer (7, D), (7,) and
    its output layer (C, 7), (C,); every parameter gets a gradient; a saved model predicts the
    same; rows that do not interact predict alone as in the batch."""
    data = data_by_encoder[encoder_name]
    model = build(encoder_name, sharing_name, data, seed=1, sharing_params={"head_hidden": 7})
    for task in data.tasks:
        if not model.task_parameters(task.name):  # pooled: one shared head, checked below
            continue
        hidden_weight, hidden_bias, output_weight, output_bias = model.task_parameters(task.name)[-4:]
        assert hidden_weight.shape[0] == 7 and hidden_bias.shape == (7,)
        assert output_weight.shape == (task.num_classes, 7) and output_bias.shape == (task.num_classes,)
    batch = full_batch(data, model)
    missing = parameters_without_gradient(model, batch, data)
    assert not missing, f"no gradient for {missing}"
    model.eval()
    test_batch = full_batch(data, model, "test", 5)
    torch.save(model.export_state(), tmp_path / "model.pt")
    other = build(encoder_name, sharing_name, data, seed=2, sharing_params={"head_hidden": 7}).eval()
    with torch.no_grad():
        other.load_exported_state(torch.load(tmp_path / "model.pt"))
        torch.testing.assert_close(model(test_batch), other(test_batch))
        if not model.rows_interact:
            parts = [(t, np.arange(3)) for t in range(len(data.tasks))]
            together = model(data.batch("dev", parts))
            for row, (t, position) in enumerate((t, p) for t, ps in parts for p in ps):
                alone = model(data.batch("dev", [(t, np.array([position]))]))
                torch.testing.assert_close(together[row: row + 1], alone, rtol=1e-4, atol=1e-5)
    with pytest.raises(Exception, match="'head_hidden' of .* must be an integer >= 0"):
        build(encoder_name, sharing_name, data, sharing_params={"head_hidden": -1})
