"""Regularisers over aligned task parameter matrices, on a real single-task model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.regularizers import REGULARIZERS, Regularizer, aligned_task_parameters
from textmtl.regularizers.l2_to_mean import L2ToMean
from textmtl.sharing import SHARING
from textmtl.sharing.base import SharingMethod, TaskSpec

from .helpers import TINY_ENCODER_PARAMS, featurized

ENCODER_LAYERS = ["encoders.input_weight", "encoders.input_bias",
                  "encoders.hidden_layers.0.weight", "encoders.hidden_layers.0.bias"]


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    return featurized(synthetic_tasks, "mlp")  # 3 tasks with 2, 3 and 2 classes


def single_task_model(data, seed=0):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params=TINY_ENCODER_PARAMS["mlp"])
    return SHARING.build("single_task", specs, factory)


class TwoVectors(SharingMethod):
    """Two tasks, each owning one 2-vector ``weights.k``: a case small enough to do by hand."""

    def __init__(self, first, second):
        super().__init__([TaskSpec("a", 2), TaskSpec("b", 2)], lambda: None)
        self.weights = nn.ParameterList([nn.Parameter(torch.tensor(first)),
                                         nn.Parameter(torch.tensor(second))])

    def task_parameters(self, task):
        return [self.weights[self.task_id(task)]]


def test_encoder_layers_align_into_k_by_p_matrices(data):
    model = single_task_model(data)
    matrices = aligned_task_parameters(model)
    # heads have 2, 3 and 2 classes: their shapes differ, so they are not aligned
    assert list(matrices) == ENCODER_LAYERS
    for name, matrix in matrices.items():
        copies = [model.task_named_parameters(t)[name] for t in model.task_names]
        assert matrix.shape == (3, copies[0].numel())
        for k, copy in enumerate(copies):  # row k is task k's copy, flattened
            assert torch.equal(matrix[k], copy.detach().reshape(-1))
    assert matrices["encoders.input_weight"].shape == (3, 200 * 8)


def test_heads_align_when_label_spaces_agree(data):
    torch.manual_seed(0)
    specs = [TaskSpec(t.name, 2) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params=TINY_ENCODER_PARAMS["mlp"])
    model = SHARING.build("single_task", specs, factory)
    matrices = aligned_task_parameters(model, ["heads"])
    assert {n: tuple(m.shape) for n, m in matrices.items()} == {
        "heads.heads.weight": (3, 2 * 6), "heads.heads.bias": (3, 2)}


def test_prefixes_select_whole_name_components(data):
    model = single_task_model(data)
    assert list(aligned_task_parameters(model, ["encoders.hidden_layers"])) == ENCODER_LAYERS[2:]
    assert list(aligned_task_parameters(model, ["encoders.input_bias", "encoders.hidden_layers.0.bias"])) == [
        "encoders.input_bias", "encoders.hidden_layers.0.bias"]
    with pytest.raises(ValueError, match=r"'encoders.input_w' matches no parameter.*"
                                         r"aligned names: encoders.input_weight"):
        aligned_task_parameters(model, ["encoders.input_w"])


def test_unknown_prefix_names_the_prefix_and_the_aligned_names(data):
    model = single_task_model(data)
    with pytest.raises(ValueError, match="'heads' matches no parameter aligned across tasks") as error:
        L2ToMean(parameters=["heads"]).penalty(model)  # heads differ in shape here
    assert all(name in str(error.value) for name in ENCODER_LAYERS)


def test_matrices_are_differentiable(data):
    model = single_task_model(data)
    matrix = aligned_task_parameters(model)["encoders.input_bias"]
    matrix[1].sum().backward()
    gamma, beta = (model.task_named_parameters(t)["encoders.input_bias"] for t in ("gamma", "beta"))
    assert torch.equal(beta.grad, torch.ones(8))
    assert gamma.grad is None or not torch.any(gamma.grad != 0)  # only row 1 was used


def test_l2_to_mean_by_hand():
    # a = [1, 2], b = [3, 6]; mean [2, 4]; ||a - m||^2 = 1 + 4 = 5, ||b - m||^2 = 1 + 4 = 5
    # penalty = 0.1 * (5 + 5) = 1.0
    model = TwoVectors([1.0, 2.0], [3.0, 6.0])
    assert L2ToMean(weight=0.1).penalty(model).item() == pytest.approx(1.0)


def test_l2_to_mean_on_a_model_filled_by_hand(data):
    model = single_task_model(data)
    with torch.no_grad():  # task k's encoder is all k: 0, 1, 2; mean 1, distances^2 1, 0, 1
        for k, task in enumerate(model.task_names):
            for name, parameter in model.task_named_parameters(task).items():
                parameter.fill_(float(k) if name.startswith("encoders") else 10.0 * k)
    encoder_size = 200 * 8 + 8 + 6 * 8 + 6
    # penalty = weight * sum over entries of (1 + 0 + 1) = 0.5 * 2 * encoder_size
    assert L2ToMean(weight=0.5).penalty(model).item() == pytest.approx(encoder_size)
    # only the hidden layer: 0.5 * 2 * (6*8 + 6)
    hidden = L2ToMean(weight=0.5, parameters=["encoders.hidden_layers"]).penalty(model)
    assert hidden.item() == pytest.approx(6 * 8 + 6)


def test_penalty_is_zero_when_all_copies_are_equal(data):
    model = single_task_model(data)
    with torch.no_grad():
        for name in ENCODER_LAYERS:
            copies = [model.task_named_parameters(t)[name] for t in model.task_names]
            for copy in copies[1:]:
                copy.copy_(copies[0])
    # 0 up to the rounding of (x + x + x) / 3
    assert L2ToMean(weight=3.0).penalty(model).item() == pytest.approx(0.0, abs=1e-10)
    assert L2ToMean(weight=3.0).penalty(single_task_model(data)).item() > 0.0  # random init


def test_gradient_pulls_each_copy_to_the_mean(data):
    model = single_task_model(data)
    weight = 0.25
    L2ToMean(weight=weight).penalty(model).backward()
    for name in ENCODER_LAYERS:
        copies = [model.task_named_parameters(t)[name] for t in model.task_names]
        mean = torch.stack([c.detach() for c in copies]).mean(dim=0)
        for copy in copies:  # d/da_k = 2 * weight * (a_k - mean): gradient descent moves to it
            torch.testing.assert_close(copy.grad, 2 * weight * (copy.detach() - mean))
    for k in range(3):  # heads are not aligned here: no penalty gradient
        assert model.heads.heads[k].weight.grad is None


def test_negative_weight_is_rejected():
    with pytest.raises(ValueError, match="'weight' of L2ToMean must be >= 0, got -1"):
        L2ToMean(weight=-1)
    with pytest.raises(ConfigError, match="'weight' of L2ToMean must be >= 0, got -1"):
        REGULARIZERS.build("l2_to_mean", params={"weight": -1})


def test_registry_entry_and_config_schema():
    assert "l2_to_mean" in REGULARIZERS.names()
    schema = {p.name: (p.type_name(), p.default) for p in REGULARIZERS.parameters("l2_to_mean")}
    assert schema == {"weight": ("float", 1.0), "parameters": ("list[str]", [])}
    regularizer = REGULARIZERS.build("l2_to_mean", params={"weight": 0.5, "parameters": ["encoders"]})
    assert isinstance(regularizer, Regularizer)
    assert regularizer.name == "l2_to_mean"
    assert (regularizer.weight, regularizer.parameters) == (0.5, ["encoders"])
    with pytest.raises(ConfigError, match="valid keys: parameters, weight"):
        REGULARIZERS.build("l2_to_mean", params={"lambda": 1.0})
