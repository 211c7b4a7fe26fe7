"""Loss weightings that own the backward pass (jacobian, gradnorm) or follow the epochs (dwa),
checked against gradients and weights computed by hand.

The model is a toy with explicit losses, so every gradient is known in closed form:

    L_k = <g_k, theta> + 0.5 (k+1) h_k^2 + (k+1) m

theta: the shared parameter (its per-task gradient is the chosen g_k), h_k: task k's parameter
(gradient (k+1) h_k), m: a method parameter (gradient k+1 from each task).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from textmtl.errors import ConfigError
from textmtl.training.state import TrainState
from textmtl.weighting import WEIGHTINGS


class ToyModel(nn.Module):
    """The three parameter groups of a sharing method, with losses in closed form."""

    def __init__(self, task_gradients: dict[str, list[float]], shared: bool = True) -> None:
        super().__init__()
        self.task_names = list(task_gradients)
        self.directions = {n: torch.tensor(g) for n, g in task_gradients.items()}
        dim = len(next(iter(task_gradients.values())))
        self.theta = nn.Parameter(torch.linspace(0.5, 1.5, dim))
        self.heads = nn.ParameterDict({n: nn.Parameter(torch.tensor(1.0)) for n in self.task_names})
        self.mixer = nn.Parameter(torch.tensor(0.5))
        self.shared = shared

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.theta] if self.shared else []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return [self.heads[task]]

    def method_parameters(self) -> list[nn.Parameter]:  # unshared: theta is the method's
        return [self.mixer] + ([] if self.shared else [self.theta])

    def losses(self, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        out = {}
        for k, name in enumerate(self.task_names):
            if names is None or name in names:
                out[name] = (self.directions[name] @ self.theta + 0.5 * (k + 1) * self.heads[name] ** 2
                             + (k + 1) * self.mixer)
        return out


def step(weighting, model, names=None, extra=None):
    model.zero_grad(set_to_none=True)
    weighting.zero_grad(set_to_none=True)
    losses = model.losses(names)
    weighting.backward(losses, extra(model) if extra else None, model)
    return losses


def grads(model):
    return {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}


# ---------------------------------------------------------------- jacobian (TorchJD)

def jacobian(model, aggregator, **params):
    pytest.importorskip("torchjd")
    return WEIGHTINGS.build("jacobian", model.task_names,
                            params={"aggregator": aggregator, "aggregator_params": params})


def test_jacobian_mean_averages_shared_gradients_and_keeps_task_gradients_plain():
    model = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]})
    weighting = jacobian(model, "mean")
    step(weighting, model)
    torch.testing.assert_close(model.theta.grad, torch.tensor([0.0, 0.5]))  # (g_a + g_b) / 2
    assert model.heads["a"].grad.item() == pytest.approx(1.0)  # 1 * h_a
    assert model.heads["b"].grad.item() == pytest.approx(2.0)  # 2 * h_b
    assert model.mixer.grad.item() == pytest.approx(3.0)  # 1 + 2: plain gradient of the sum
    assert weighting.current_weights() == pytest.approx({"a": 0.5, "b": 0.5})


def test_jacobian_sum_is_plain_backpropagation_of_the_summed_loss_and_extra_loss():
    model = ToyModel({"a": [1.0, 2.0, 0.0], "b": [-3.0, 1.0, 1.0], "c": [0.5, 0.5, -2.0]})

    def extra(m):  # reaches shared, task and method parameters
        return 2.0 * m.theta.sum() + 3.0 * m.mixer + m.heads["c"] ** 3

    step(jacobian(model, "sum"), model, extra=extra)
    by_jacobian = grads(model)
    step(WEIGHTINGS.build("fixed", model.task_names), model, extra=extra)  # the default backward
    for name, grad in grads(model).items():
        torch.testing.assert_close(by_jacobian[name], grad, msg=name)
    torch.testing.assert_close(by_jacobian["theta"], torch.tensor([-1.5, 3.5, -1.0]) + 2.0)


def test_jacobian_pcgrad_projects_conflicting_gradients_as_by_hand():
    # g_a . g_b = -1 < 0: each is projected on the normal plane of the other and the two summed
    # g_a' = g_a - (g_a.g_b / |g_b|^2) g_b = (1, 0) + (-1, 1) / 2 = (0.5, 0.5)
    # g_b' = g_b - (g_b.g_a / |g_a|^2) g_a = (-1, 1) + (1, 0)     = (0, 1)
    model = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]})
    weighting = jacobian(model, "pcgrad")
    step(weighting, model)
    torch.testing.assert_close(model.theta.grad, torch.tensor([0.5, 1.5]))
    # as weights of the rows: g_a' + g_b' = (g_a + g_b / 2) + (g_b + g_a) = 2 g_a + 1.5 g_b
    assert weighting.current_weights() == pytest.approx({"a": 2.0, "b": 1.5})
    assert model.mixer.grad.item() == pytest.approx(3.0)


def test_jacobian_upgrad_never_conflicts_with_a_task():
    torch.manual_seed(0)
    rows = torch.randn(3, 5)
    rows[1] = -rows[0] + 0.1 * rows[1]  # a strong conflict between a and b
    model = ToyModel({n: r.tolist() for n, r in zip("abc", rows)})
    step(jacobian(model, "upgrad"), model)
    inner = rows @ model.theta.grad  # (K,)
    assert (inner >= -1e-5).all(), inner
    assert model.theta.grad.norm() > 1e-3
    # the plain mean does conflict here, so the property is UPGrad's, not the data's
    assert (rows @ rows.mean(dim=0)).min() < 0


def test_jacobian_one_task_step_and_unshared_model_get_the_plain_gradient():
    model = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]})
    weighting = jacobian(model, "pcgrad")
    step(weighting, model, names=["b"])
    torch.testing.assert_close(model.theta.grad, torch.tensor([-1.0, 1.0]))
    assert model.heads["a"].grad is None and model.heads["b"].grad.item() == pytest.approx(2.0)
    assert weighting.current_weights() == {"b": 1.0}

    unshared = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]}, shared=False)
    step(jacobian(unshared, "upgrad"), unshared)
    torch.testing.assert_close(unshared.theta.grad, torch.tensor([0.0, 1.0]))  # g_a + g_b


def test_torchjd_aggregates_one_row_to_that_row():
    """What the one-task shortcut relies on: every aggregator that is linear in a lone row."""
    pytest.importorskip("torchjd")
    model = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]})
    row = torch.tensor([[1.0, 2.0, -3.0]])
    for name in ["aligned_mtl", "config", "dualproj", "graddrop", "gradvac", "imtl_g", "mean",
                 "mgda", "pcgrad", "sum", "upgrad"]:
        aggregator = jacobian(model, name).aggregator
        torch.testing.assert_close(aggregator(row), row[0], msg=name)


def test_jacobian_non_weighted_aggregator_reports_no_weights_and_leaves_no_jac():
    model = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]})
    weighting = jacobian(model, "graddrop")
    step(weighting, model)
    assert weighting.current_weights() == {}
    assert not hasattr(model.theta, "jac")


def test_jacobian_rejects_unknown_aggregators_and_parameters():
    pytest.importorskip("torchjd")
    with pytest.raises(ConfigError, match=r"'aggregator' of JacobianWeighting must be one of: "
                                          r"aligned_mtl, .*mgda, .*pcgrad, .*upgrad, got 'pcgard'"):
        WEIGHTINGS.build("jacobian", ["a", "b"], params={"aggregator": "pcgard"})
    with pytest.raises(ConfigError, match=r"'aggregator_params\.tau' is not a parameter of "
                                          r"aggregator 'upgrad' \(UPGrad\); valid keys: pref_vector"):
        WEIGHTINGS.build("jacobian", ["a", "b"], params={"aggregator_params": {"tau": 0.1}})
    with pytest.raises(ConfigError, match=r"'parallel_chunk_size' of JacobianWeighting must be"):
        WEIGHTINGS.build("jacobian", ["a", "b"], params={"parallel_chunk_size": 0})


def test_jacobian_passes_aggregator_params_lists_as_tensors():
    model = ToyModel({"a": [1.0, 0.0], "b": [0.0, 1.0]})  # orthogonal: no projection needed
    weighting = jacobian(model, "upgrad", pref_vector=[0.25, 0.75])
    step(weighting, model)
    torch.testing.assert_close(model.theta.grad, torch.tensor([0.25, 0.75]))


# ---------------------------------------------------------------- gradnorm

class MatrixModel(nn.Module):
    """Shared W (1, 2) with L_a = 5 + 3 W[0,0] (|dL_a/dW| = 3) and L_b = 2 + W[0,1] (|dL_b/dW| = 1)."""

    task_names = ["a", "b"]

    def __init__(self, scale_a: float = 3.0, scale_b: float = 1.0) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2))  # 1-dim shared parameter: not the balanced one
        self.W = nn.Parameter(torch.zeros(1, 2))
        self.scales = (scale_a, scale_b)

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.W, self.bias]

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return []

    def method_parameters(self) -> list[nn.Parameter]:
        return []

    def losses(self, offsets=(5.0, 2.0)) -> dict[str, torch.Tensor]:
        return {"a": offsets[0] + self.scales[0] * self.W[0, 0] + self.bias[0],
                "b": offsets[1] + self.scales[1] * self.W[0, 1] + self.bias[1]}


def test_gradnorm_raises_the_weight_of_the_task_with_the_smaller_gradient_norm():
    model = MatrixModel()
    weighting = WEIGHTINGS.build("gradnorm", model.task_names)
    weighting.backward(model.losses(), None, model)
    # step 1: r = 1, G = (3, 1), target = mean(G) = 2 for both; dL_grad/dw_k = sign(G_k - 2) |dL_k/dW|
    torch.testing.assert_close(weighting.task_weights.grad, torch.tensor([3.0, -1.0]))
    # the model's gradient is that of w . L with w = 1, nothing from L_grad
    torch.testing.assert_close(model.W.grad, torch.tensor([[3.0, 1.0]]))
    torch.testing.assert_close(model.bias.grad, torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(weighting.initial_losses, torch.tensor([5.0, 2.0]))


def test_gradnorm_pushes_the_task_that_trains_slower():
    model = MatrixModel(scale_a=1.0, scale_b=1.0)  # equal gradient norms
    weighting = WEIGHTINGS.build("gradnorm", model.task_names, params={"alpha": 1.5})
    weighting.backward(model.losses(), None, model)  # records L(0) = (5, 2)
    weighting.zero_grad()
    # a's loss halved, b's unchanged: r = (0.5, 1) / 0.75; target = 1 * r^1.5 = (0.544, 1.540)
    weighting.backward(model.losses(offsets=(2.5, 2.0)), None, model)
    torch.testing.assert_close(weighting.task_weights.grad, torch.tensor([1.0, -1.0]))


def test_gradnorm_renormalises_weights_to_sum_to_the_number_of_tasks():
    weighting = WEIGHTINGS.build("gradnorm", ["a", "b", "c"])
    with torch.no_grad():
        weighting.task_weights.copy_(torch.tensor([2.0, 0.5, 1.5]))
    weighting.on_step_end(TrainState())
    torch.testing.assert_close(weighting.task_weights.detach(), torch.tensor([1.5, 0.375, 1.125]))
    assert weighting.current_weights() == pytest.approx({"a": 1.5, "b": 0.375, "c": 1.125})
    total = weighting.combine({"a": torch.tensor(2.0), "c": torch.tensor(4.0)})
    assert total.item() == pytest.approx(1.5 * 2.0 + 1.125 * 4.0)


def test_gradnorm_balances_the_named_layer_and_falls_back_to_fixed_weights():
    model = MatrixModel()
    weighting = WEIGHTINGS.build("gradnorm", model.task_names, params={"layer": "bias"})
    weighting.backward(model.losses(), None, model)  # |dL_k/dbias| = 1 for both: G equal
    torch.testing.assert_close(weighting.task_weights.grad, torch.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match=r"'layer' of GradNorm must be 'last' or a shared "
                                         r"parameter of the model \(bias, W\), got 'heads'"):
        WEIGHTINGS.build("gradnorm", model.task_names, params={"layer": "heads"}).backward(
            model.losses(), None, model)

    unshared = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]}, shared=False)
    weighting = WEIGHTINGS.build("gradnorm", unshared.task_names)
    step(weighting, unshared)
    torch.testing.assert_close(weighting.task_weights.grad, torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(unshared.theta.grad, torch.tensor([0.0, 1.0]))


def test_gradnorm_rejects_negative_alpha():
    with pytest.raises(ConfigError, match=r"'alpha' of GradNorm must be >= 0, got -1.0"):
        WEIGHTINGS.build("gradnorm", ["a"], params={"alpha": -1.0})


# ---------------------------------------------------------------- dwa

def end_epoch(weighting, state, losses):
    state.epoch += 1
    state.epoch_losses = {name: list(values) for name, values in losses.items()}
    weighting.on_epoch_end(state)
    return weighting.current_weights()


def dwa_by_hand(ratios, temperature):
    exps = [math.exp(r / temperature) for r in ratios]
    return [len(ratios) * e / sum(exps) for e in exps]


def test_dwa_weights_are_one_for_two_epochs_then_follow_the_loss_ratios():
    weighting = WEIGHTINGS.build("dwa", ["a", "b"], params={"temperature": 2.0})
    state = TrainState()
    assert weighting.current_weights() == {"a": 1.0, "b": 1.0}  # epoch 1
    # extra-loss names in the epoch losses are not tasks and are ignored
    assert end_epoch(weighting, state, {"a": [3.0, 1.0], "b": [1.0, 3.0], "adversarial": [9.0]}) == \
        {"a": 1.0, "b": 1.0}  # epoch 2: one epoch of losses only
    weights = end_epoch(weighting, state, {"a": [1.0], "b": [1.5]})  # epoch 3: w = (1/2, 1.5/2)
    expected = dwa_by_hand([0.5, 0.75], 2.0)
    assert [weights["a"], weights["b"]] == pytest.approx(expected)
    assert sum(weights.values()) == pytest.approx(2.0)
    assert weights["b"] > weights["a"]  # b's loss fell less: more weight
    total = weighting.combine({"a": torch.tensor(2.0), "b": torch.tensor(1.0)})
    assert total.item() == pytest.approx(2.0 * expected[0] + expected[1])
    # epoch 4 uses epochs 2 and 3 only: w = (0.5 / 1, 3 / 1.5)
    weights = end_epoch(weighting, state, {"a": [0.5], "b": [3.0]})
    assert [weights["a"], weights["b"]] == pytest.approx(dwa_by_hand([0.5, 2.0], 2.0))


def test_dwa_task_missing_from_an_epoch_gets_ratio_one():
    weighting = WEIGHTINGS.build("dwa", ["a", "b", "c"], params={"temperature": 0.5})
    state = TrainState()
    end_epoch(weighting, state, {"a": [2.0], "b": [2.0]})
    weights = end_epoch(weighting, state, {"a": [1.0], "b": [4.0], "c": [1.0]})
    assert [weights[n] for n in "abc"] == pytest.approx(dwa_by_hand([0.5, 2.0, 1.0], 0.5))
    assert sum(weights.values()) == pytest.approx(3.0)


def test_dwa_rejects_non_positive_temperature():
    with pytest.raises(ConfigError, match=r"'temperature' of DWA must be > 0, got -1.0"):
        WEIGHTINGS.build("dwa", ["a"], params={"temperature": -1.0})


# ---------------------------------------------------------------- uncertainty

def test_uncertainty_current_weights_are_inverse_variances():
    weighting = WEIGHTINGS.build("uncertainty", ["a", "b"], params={"initial_log_variance": math.log(2.0)})
    assert weighting.current_weights() == pytest.approx({"a": 0.5, "b": 0.5})
    with torch.no_grad():
        weighting.log_variances[1] = math.log(4.0)
    assert weighting.current_weights() == pytest.approx({"a": 0.5, "b": 0.25})
    # the weights in current_weights are the ones combine applies: exp(-s) L + s
    total = weighting.combine({"b": torch.tensor(2.0)})
    assert total.item() == pytest.approx(0.25 * 2.0 + math.log(4.0))


# ---------------------------------------------------------------- all new members

@pytest.mark.parametrize("name", ["jacobian", "gradnorm", "dwa", "uncertainty"])
def test_backward_fills_every_reached_parameter(name):
    if name == "jacobian":
        pytest.importorskip("torchjd")
    model = ToyModel({"a": [1.0, 0.0], "b": [-1.0, 1.0]})
    weighting = WEIGHTINGS.build(name, model.task_names)
    step(weighting, model)
    for parameter_name, grad in grads(model).items():
        assert grad is not None and torch.isfinite(grad).all(), parameter_name
    for parameter in weighting.parameters():
        assert parameter.grad is not None
