"""Deep Relationship Networks: the matrix-normal prior's task covariance, learned in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from textmtl.errors import ConfigError
from textmtl.regularizers import REGULARIZERS
from textmtl.regularizers.base import layer_name
from textmtl.regularizers.task_covariance import TaskCovariance, closed_form_covariance
from textmtl.sharing.base import SharingMethod, TaskSpec
from textmtl.training.state import TrainState


class LayersModel(SharingMethod):
    """K tasks, task k owning ``layer.weight`` (rows k of ``weights``, shaped (1, P)) and
    ``layer.bias`` (``biases[k]``): one layer whose joined (K, P + 1) matrix has row k."""

    def __init__(self, weights, biases):
        super().__init__([TaskSpec(f"t{k}", 2) for k in range(len(weights))], lambda: None)
        self.layers = nn.ModuleList()
        for row, bias in zip(weights, biases):
            layer = nn.Linear(len(row), 1).double()
            with torch.no_grad():
                layer.weight.copy_(torch.tensor([row], dtype=torch.float64))
                layer.bias.copy_(torch.tensor([bias], dtype=torch.float64))
            self.layers.append(layer)

    def task_named_parameters(self, task):
        return {f"layer.{n}": p for n, p in self.layers[self.task_id(task)].named_parameters()}

    def task_parameters(self, task):
        return list(self.task_named_parameters(task).values())


def test_closed_form_covariance_by_hand():
    # A = [[1, 0], [0, 2]]: G = diag(1, 4), G^(1/2) = diag(1, 2), trace 3 -> Omega = diag(1/3, 2/3)
    # (the ridge 1e-9 * 2.5 moves it by ~1e-9)
    omega = closed_form_covariance(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), epsilon=1e-9)
    assert omega.dtype == torch.float64
    assert torch.allclose(omega, torch.tensor([[1 / 3, 0.0], [0.0, 2 / 3]], dtype=torch.float64), atol=1e-6)


def test_identical_tasks_get_the_documented_correlation():
    # two equal rows a: G = s [[1, 1], [1, 1]] + eps s I has eigenvalues s (2 + eps), s eps on
    # (1, 1) and (1, -1); the root's off-diagonal over its diagonal is
    # (sqrt(2 + eps) - sqrt(eps)) / (sqrt(2 + eps) + sqrt(eps)) = 0.9563 for eps = 1e-3
    omega = closed_form_covariance(torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), epsilon=1e-3)
    r1, r2 = math.sqrt(2.001), math.sqrt(0.001)
    assert float(omega[0, 1] / omega[0, 0]) == pytest.approx((r1 - r2) / (r1 + r2), abs=1e-9)
    assert float(omega[0, 1] / omega[0, 0]) == pytest.approx(0.956, abs=1e-3)
    assert float(torch.trace(omega)) == pytest.approx(1.0)


def test_weight_and_bias_form_one_layer_and_the_penalty_starts_as_k_times_weight_decay():
    model = LayersModel([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]], [1.0, 0.0, -1.0])
    regularizer = TaskCovariance(weight=0.5)
    (layer,) = regularizer.layer_matrices(model)  # weight and bias joined
    assert layer == "layer" and layer_name("encoders.hidden_layers.1.bias") == "encoders.hidden_layers.1"
    assert regularizer.layer_matrices(model)["layer"].shape == (3, 3)
    # Omega = I / 3 before any update: tr(A^T 3 I A) = 3 ||A||_F^2 = 3 * (6 + 1 + 10) = 51
    assert regularizer.penalty(model).item() == pytest.approx(0.5 * 51)
    assert regularizer.task_covariance()["layers"] == []


def test_the_update_lowers_the_penalty_to_the_squared_trace_norm():
    model = LayersModel([[1.0, 2.0], [2.0, 4.1], [-1.0, 0.5]], [0.2, 0.3, 0.0])
    regularizer = TaskCovariance(weight=1.0, epsilon=1e-9)
    before = regularizer.penalty(model).item()
    regularizer.update(model)
    after = regularizer.penalty(model).item()
    matrix = regularizer.layer_matrices(model)["layer"].detach()
    nuclear = float(torch.linalg.svdvals(matrix).sum())
    # the closed form minimises tr(A^T Omega^-1 A) over tr(Omega) = 1; I / K is feasible
    assert after < before
    assert after == pytest.approx(nuclear ** 2, rel=1e-4)
    report = regularizer.task_covariance()
    assert report["tasks"] == ["t0", "t1", "t2"] and report["updates"] == 1
    (entry,) = report["layers"]
    correlation = torch.tensor(entry["correlation"])
    assert torch.allclose(correlation.diagonal(), torch.ones(3, dtype=correlation.dtype))
    # tasks 0 and 1 have nearly parallel rows: the most related pair
    assert correlation[0, 1] > correlation[0, 2] and correlation[0, 1] > correlation[1, 2]


def test_the_penalty_has_gradients_through_the_weights_not_omega():
    model = LayersModel([[1.0, 2.0], [0.0, 1.0]], [0.5, -0.5])
    regularizer = TaskCovariance(weight=1.0)
    regularizer.update(model)
    regularizer.penalty(model).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_hooks_update_every_n_steps_or_at_epoch_ends_through_the_sharing_method():
    model = LayersModel([[1.0, 2.0], [0.0, 1.0]], [0.0, 0.0])
    every_two = TaskCovariance(update_every=2)
    at_epoch_end = TaskCovariance(update_every=0)
    model.regularizers = [every_two, at_epoch_end]
    for step in range(1, 6):
        model.on_step_end(TrainState(epoch=1, step=step))
    assert every_two.updates == 2 and at_epoch_end.updates == 0
    model.on_epoch_end(TrainState(epoch=1, step=5))
    assert every_two.updates == 2 and at_epoch_end.updates == 1


@pytest.mark.parametrize("params, message", [
    ({"update_every": -1}, "'update_every' of TaskCovariance must be an integer >= 0"),
    ({"update_every": 1.5}, "'regularizer.update_every' of regularizer 'task_covariance' must be int"),
    ({"epsilon": 0.0}, "'epsilon' of TaskCovariance must be > 0"),
])
def test_bad_options_are_one_line_errors(params, message):
    with pytest.raises(ConfigError, match=message):  # the registry names the component
        REGULARIZERS.build("task_covariance", params=params)
