"""Matrix regularisers over the aligned (K, P) task parameter matrices and their proximal steps.

Rows of our matrices are tasks, so a "feature across tasks" (a row of the literature's d x T
matrix) is a COLUMN here: group lasso and l1/l_inf act on columns.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError, TrainingError
from textmtl.regularizers import REGULARIZERS
from textmtl.regularizers.group_lasso import GroupLasso
from textmtl.regularizers.l1_linf import L1Linf, project_l1_ball
from textmtl.regularizers.l2_to_mean import L2ToMean
from textmtl.regularizers.mean_regularized import MeanRegularized
from textmtl.regularizers.trace_norm import TraceNorm
from textmtl.sharing import SHARING
from textmtl.sharing.base import SharingMethod, TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.step import build_optimizer, train_step
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import TINY_ENCODER_PARAMS, featurized

NON_SMOOTH = {"group_lasso": GroupLasso, "l1_linf": L1Linf, "trace_norm": TraceNorm}


class RowsModel(SharingMethod):
    """K tasks, task k owning ``weights.k`` shaped ``shape``: its flattened copy is row k."""

    def __init__(self, rows, shape=None):
        rows = torch.tensor(rows, dtype=torch.float64)
        super().__init__([TaskSpec(f"t{k}", 2) for k in range(len(rows))], lambda: None)
        shape = shape or rows.shape[1:]
        self.weights = nn.ParameterList([nn.Parameter(row.reshape(shape).clone()) for row in rows])

    def task_parameters(self, task):
        return [self.weights[self.task_id(task)]]

    def rows(self):
        return torch.stack([w.detach().reshape(-1) for w in self.weights])


# -- penalties by hand ------------------------------------------------------------------------

def test_mean_regularized_by_hand():
    # rows a_1 = [1, 2], a_2 = [3, 6]; mean [2, 4], ||mean||^2 = 20; spread sum 1+4+1+4 = 10
    # spread=2, K=2: 20 + 2/2 * 10 = 30; weight 0.1 -> 3.0
    model = RowsModel([[1.0, 2.0], [3.0, 6.0]])
    assert MeanRegularized(weight=0.1, spread=2.0).penalty(model).item() == pytest.approx(3.0)
    assert MeanRegularized(weight=1.0, spread=0.0).penalty(model).item() == pytest.approx(20.0)


def test_mean_regularized_is_mean_norm_plus_l2_to_mean():
    torch.manual_seed(0)
    model = RowsModel(torch.randn(3, 5).tolist())
    weight, spread = 0.7, 1.5
    mean_norm = model.rows().mean(dim=0).pow(2).sum().item()
    l2 = L2ToMean(weight=weight * spread / 3).penalty(model).item()
    assert MeanRegularized(weight=weight, spread=spread).penalty(model).item() == \
        pytest.approx(weight * mean_norm + l2)


def test_group_lasso_penalty_by_hand():
    # columns [3, 4], [0, 0], [1, 0]: norms 5, 0, 1 -> 6; weight 0.5 -> 3
    model = RowsModel([[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]])
    assert GroupLasso(weight=0.5).penalty(model).item() == pytest.approx(3.0)


def test_l1_linf_penalty_by_hand():
    # column maxima of |A|: 3, 2, 0.5 -> 5.5
    model = RowsModel([[3.0, 2.0, 0.5], [1.0, -2.0, 0.25]])
    assert L1Linf(weight=2.0).penalty(model).item() == pytest.approx(11.0)


def test_trace_norm_penalty_by_hand():
    # orthogonal rows [2, 2, 0], [1, -1, 0]: singular values sqrt(8), sqrt(2) -> 3 sqrt(2)
    model = RowsModel([[2.0, 2.0, 0.0], [1.0, -1.0, 0.0]])
    assert TraceNorm(weight=1.0).penalty(model).item() == pytest.approx(3 * math.sqrt(2))


def test_the_matrix_is_tasks_by_features_whatever_the_parameter_shape():
    # task k owns a (2, 2) weight: flattened, its 4 entries are the 4 columns (features)
    model = RowsModel([[3.0, 0.0, 0.0, 1.0], [4.0, 0.0, 0.0, 0.0]], shape=(2, 2))
    assert GroupLasso().penalty(model).item() == pytest.approx(6.0)


# -- proximal operators by hand ---------------------------------------------------------------

def test_group_lasso_prox_by_hand():
    # tau 2: column [3, 4] (norm 5) scaled by 1 - 2/5 = 0.6; [0, 0] stays; [1, 0] (norm 1 < 2) -> 0
    matrix = torch.tensor([[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]])
    expected = torch.tensor([[1.8, 0.0, 0.0], [2.4, 0.0, 0.0]])
    torch.testing.assert_close(GroupLasso().proximal_operator(matrix, 2.0), expected)


def test_l1_linf_prox_by_hand():
    # tau 1, per column: [3, 1] -> the max drops by 1: [2, 1]; [2, -2] -> both drop by 1/2;
    # [0.5, 0.25] has l1 norm 0.75 <= tau -> 0
    matrix = torch.tensor([[3.0, 2.0, 0.5], [1.0, -2.0, 0.25]])
    expected = torch.tensor([[2.0, 1.5, 0.0], [1.0, -1.5, 0.0]])
    torch.testing.assert_close(L1Linf().proximal_operator(matrix, 1.0), expected)


def test_trace_norm_prox_by_hand():
    # singular values 2 sqrt(2), sqrt(2); tau sqrt(2): the second vanishes, the first halves,
    # leaving half of the first row's direction: [[1, 1, 0], [0, 0, 0]]
    matrix = torch.tensor([[2.0, 2.0, 0.0], [1.0, -1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(TraceNorm().proximal_operator(matrix, math.sqrt(2)), expected)


@pytest.mark.parametrize("name", sorted(NON_SMOOTH))
def test_prox_minimises_its_objective(name):
    """prox(v) beats random perturbations on 1/2 ||x - v||^2 + tau * Omega(x)."""
    regularizer = NON_SMOOTH[name]()
    generator = torch.Generator().manual_seed(1)
    matrix = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    tau = 0.6

    def objective(x):
        return 0.5 * (x - matrix).pow(2).sum() + tau * regularizer.penalty(RowsModel(x.tolist()))

    best = regularizer.proximal_operator(matrix, tau)
    for _ in range(50):
        other = best + 0.05 * torch.randn(3, 4, generator=generator, dtype=torch.float64)
        assert objective(best) <= objective(other) + 1e-12


def test_prox_with_threshold_zero_is_the_identity():
    matrix = torch.randn(3, 4, dtype=torch.float64)
    for cls in NON_SMOOTH.values():
        torch.testing.assert_close(cls().proximal_operator(matrix, 0.0), matrix)


# -- the l1-ball projection -------------------------------------------------------------------

def brute_force_l1_projection(v, radius):
    """The nearest point of the l1 ball: the best projection onto the affine hull of a face
    (a support S and signs s: s . w = radius, w = 0 off S) that lands in the ball."""
    if np.abs(v).sum() <= radius:
        return v
    best, best_distance = None, np.inf
    n = len(v)
    for size in range(1, n + 1):
        for support in itertools.combinations(range(n), size):
            for signs in itertools.product((-1.0, 1.0), repeat=size):
                s = np.array(signs)
                w = np.zeros(n)
                w[list(support)] = v[list(support)] - (s @ v[list(support)] - radius) / size * s
                if np.abs(w).sum() <= radius + 1e-9 and np.linalg.norm(w - v) < best_distance:
                    best, best_distance = w, np.linalg.norm(w - v)
    return best


def test_l1_ball_projection_matches_brute_force_and_lands_on_the_ball():
    rng = np.random.default_rng(0)
    columns = rng.normal(size=(4, 12)) * 2  # 12 vectors of length 4
    radius = 1.3
    projected = project_l1_ball(torch.tensor(columns), radius).numpy()
    for f in range(columns.shape[1]):
        v = columns[:, f]
        np.testing.assert_allclose(projected[:, f], brute_force_l1_projection(v, radius), atol=1e-9)
        if np.abs(v).sum() > radius:  # outside: onto the sphere
            assert np.abs(projected[:, f]).sum() == pytest.approx(radius)
        else:
            np.testing.assert_array_equal(projected[:, f], v)


def test_l1_ball_projection_by_hand_and_radius_zero():
    # [3, 1] onto radius 1: theta 2 -> [1, 0]; [0.5, 0.25] is inside -> unchanged
    matrix = torch.tensor([[3.0, 0.5], [1.0, 0.25]])
    torch.testing.assert_close(project_l1_ball(matrix, 1.0), torch.tensor([[1.0, 0.5], [0.0, 0.25]]))
    torch.testing.assert_close(project_l1_ball(matrix, 0.0), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="'radius' of project_l1_ball must be >= 0, got -1"):
        project_l1_ball(matrix, -1)


# -- proximal steps on a model ----------------------------------------------------------------

def test_proximal_step_writes_rows_back_to_each_task_parameter():
    model = RowsModel([[3.0, 0.0, 1.0, 0.0], [4.0, 0.0, 0.0, 0.0]], shape=(2, 2))
    GroupLasso(weight=4.0).proximal_step(model, 0.5)  # tau = 0.5 * 4 = 2: as by hand above
    torch.testing.assert_close(model.weights[0].detach(), torch.tensor([[1.8, 0.0], [0.0, 0.0]],
                                                                       dtype=torch.float64))
    torch.testing.assert_close(model.weights[1].detach(), torch.tensor([[2.4, 0.0], [0.0, 0.0]],
                                                                       dtype=torch.float64))
    assert model.weights[0].shape == (2, 2) and model.weights[0].requires_grad


def test_repeated_group_lasso_steps_zero_whole_columns_and_keep_others():
    torch.manual_seed(0)
    small = 0.1 * torch.randn(3, 6, dtype=torch.float64)  # column norms ~0.17
    large = 5.0 + torch.randn(3, 4, dtype=torch.float64)  # column norms ~7-8
    model = RowsModel(torch.cat([small, large], dim=1).tolist())
    regularizer = GroupLasso(weight=1.0)
    for _ in range(5):
        regularizer.proximal_step(model, 0.1)  # tau 0.1 per step, 0.5 in all
    rows = model.rows()
    assert torch.all(rows[:, :6] == 0), "small feature columns are not exactly zero"
    # a surviving column keeps its direction and loses exactly tau of norm per step
    norms = torch.linalg.vector_norm(large, dim=0)
    torch.testing.assert_close(torch.linalg.vector_norm(rows[:, 6:], dim=0), norms - 0.5)
    torch.testing.assert_close(rows[:, 6:] / (norms - 0.5), large / norms)
    assert regularizer.penalty(model).item() < torch.linalg.vector_norm(large, dim=0).sum().item()


def test_trace_norm_prox_lowers_the_rank_of_a_random_matrix():
    torch.manual_seed(0)
    matrix = torch.randn(4, 10, dtype=torch.float64)
    sigma = torch.linalg.svdvals(matrix)
    assert torch.linalg.matrix_rank(matrix).item() == 4
    tau = float(sigma[1] + sigma[2]) / 2  # between the second and third singular values
    shrunk = TraceNorm().proximal_operator(matrix, tau)
    assert torch.linalg.matrix_rank(shrunk).item() == 2
    torch.testing.assert_close(torch.linalg.svdvals(shrunk)[:2], sigma[:2] - tau)


def tiny_data_and_model(synthetic_tasks, regularizers, seed=0):
    data = featurized(synthetic_tasks, "mlp")  # 3 tasks, tf-idf features of width 200
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params=TINY_ENCODER_PARAMS["mlp"])
    torch.manual_seed(seed)
    return data, SHARING.build("soft", specs, factory, params={"regularizers": regularizers})


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    return featurized(synthetic_tasks, "mlp")


def one_step(data, model, lr):
    batch = data.batch("train", [(t, np.arange(4)) for t in range(len(data.tasks))])
    optimizer = build_optimizer(model.param_groups(), "sgd", lr)
    return train_step(model, WEIGHTINGS.build("fixed", data.task_names), [batch], optimizer,
                      list(model.parameters()), None)


def test_train_step_is_a_gradient_step_then_the_prox_with_the_groups_lr(synthetic_tasks):
    """In proximal mode the penalty is not in the loss (the gradient step is the plain one),
    the prox uses tau = lr * weight with lr read from the optimiser, and the logged value is
    the penalty before the step."""
    weight, lr = 2.0, 0.05
    penalised = [{"name": "group_lasso", "weight": weight, "parameters": ["encoders"]}]
    data, plain = tiny_data_and_model(synthetic_tasks, [])
    _, proximal = tiny_data_and_model(synthetic_tasks, penalised)
    before = GroupLasso(weight=weight, parameters=["encoders"]).penalty(proximal).item()
    one_step(data, plain, lr)
    losses = one_step(data, proximal, lr)
    assert losses.extras["group_lasso"] == pytest.approx(before)
    GroupLasso(weight=weight, parameters=["encoders"]).proximal_step(plain, lr)
    for a, b in zip(plain.parameters(), proximal.parameters()):
        torch.testing.assert_close(a, b)


def test_subgradient_mode_adds_the_penalty_to_the_loss(synthetic_tasks):
    penalised = [{"name": "group_lasso", "weight": 2.0, "mode": "subgradient"}]
    data, plain = tiny_data_and_model(synthetic_tasks, [])
    _, subgradient = tiny_data_and_model(synthetic_tasks, penalised)
    assert not subgradient.regularizers[0].uses_proximal_step
    assert subgradient.penalties()["group_lasso"].requires_grad
    one_step(data, plain, 0.05)
    one_step(data, subgradient, 0.05)
    # the encoders moved differently (the penalty's gradient), the heads (not penalised) alike
    assert not torch.allclose(plain.encoders[0].input_weight, subgradient.encoders[0].input_weight)
    torch.testing.assert_close(plain.heads.heads[0].weight, subgradient.heads.heads[0].weight)


def test_proximal_step_needs_one_learning_rate_for_its_parameters(synthetic_tasks):
    data, model = tiny_data_and_model(synthetic_tasks, [{"name": "trace_norm", "weight": 1.0}])
    groups = [{"name": "first", "params": list(model.encoders[0].parameters())},
              {"name": "rest", "params": [p for k in (1, 2) for p in model.encoders[k].parameters()]
               + list(model.heads.parameters()), "lr_scale": 2.0}]
    optimizer = build_optimizer(groups, "sgd", 0.01)
    batch = data.batch("train", [(t, np.arange(4)) for t in range(len(data.tasks))])
    with pytest.raises(TrainingError, match=r"regularizer 'trace_norm' takes a proximal step over "
                                            r"parameters in optimiser groups with different"):
        train_step(model, WEIGHTINGS.build("fixed", data.task_names), [batch], optimizer,
                   list(model.parameters()), None)


@pytest.mark.parametrize("name", sorted(NON_SMOOTH))
def test_tiny_training_with_a_proximal_regularizer(name, synthetic_tasks):
    """Training runs (the task loss still falls), the logged penalty is reported and goes
    down, and the penalty ends below that of the same run without it. SGD: the proximal
    gradient method, tau = 0.1 * 0.05 per step."""
    config = TrainingConfig(max_epochs=3, patience=0, batch_size=8, progress=False,
                            optimizer="sgd", lr=0.1)
    penalty_after = {}
    for weight in (0.0, 0.05):
        data, model = tiny_data_and_model(synthetic_tasks, [{"name": name, "weight": weight,
                                                             "parameters": ["encoders"]}])
        result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"),
                       data, config, seed=2)
        assert len(result.curves) == 3 and result.steps > 0
        penalty_after[weight] = NON_SMOOTH[name](parameters=["encoders"]).penalty(model).item()
        if weight:
            logged = [c["extra_losses"][name] for c in result.curves]
            assert all(math.isfinite(v) and v > 0 for v in logged)
            assert logged[-1] < logged[0]
            task_loss = [sum(c["train_loss"].values()) for c in result.curves]
            assert all(math.isfinite(v) for v in task_loss) and task_loss[-1] < task_loss[0]
    assert penalty_after[0.05] < 0.95 * penalty_after[0.0]


# -- options and the registry -----------------------------------------------------------------

def test_registry_entries_and_schemas():
    for name in ("mean_regularized", "group_lasso", "l1_linf", "trace_norm"):
        assert name in REGULARIZERS.names()
    schema = {p.name: (p.type_name(), p.default) for p in REGULARIZERS.parameters("mean_regularized")}
    assert schema == {"weight": ("float", 1.0), "parameters": ("list[str]", []), "spread": ("float", 1.0)}
    assert not MeanRegularized.proximal and not MeanRegularized().uses_proximal_step
    for name, cls in NON_SMOOTH.items():
        defaults = {p.name: p.default for p in REGULARIZERS.parameters(name)}
        assert defaults == {"weight": 1.0, "parameters": [], "mode": "proximal"}
        regularizer = REGULARIZERS.build(name, params={"weight": 0.5, "mode": "subgradient"})
        assert isinstance(regularizer, cls) and regularizer.name == name
        assert cls.proximal and not regularizer.uses_proximal_step
        assert cls().uses_proximal_step


@pytest.mark.parametrize("name", sorted(NON_SMOOTH))
def test_bad_mode_is_a_one_line_error(name):
    cls = NON_SMOOTH[name]
    with pytest.raises(ValueError, match=rf"^'mode' of {cls.__name__} must be 'proximal' or "
                                         rf"'subgradient', got 'prox'$"):
        cls(mode="prox")
    with pytest.raises(ConfigError, match="mode") as error:
        REGULARIZERS.build(name, params={"mode": "prox"})
    assert "\n" not in str(error.value)


def test_bad_weight_spread_and_step_size_are_one_line_errors():
    with pytest.raises(ValueError, match=r"^'spread' of MeanRegularized must be >= 0, got -1$"):
        MeanRegularized(spread=-1)
    with pytest.raises(ValueError, match=r"^'weight' of TraceNorm must be >= 0, got -2$"):
        TraceNorm(weight=-2)
    with pytest.raises(ValueError, match=r"^'step_size' of GroupLasso.proximal_step must be >= 0"):
        GroupLasso().proximal_step(RowsModel([[1.0], [2.0]]), -0.1)
    with pytest.raises(NotImplementedError, match="L2ToMean has no proximal operator"):
        L2ToMean().proximal_operator(torch.zeros(2, 2), 1.0)


def test_soft_sharing_equal_init_starts_the_tying_penalty_at_zero(synthetic_tasks):
    """equal_init copies task 0's encoder into every task and its head into every head of the
    same shape (alpha and gamma have 2 classes, beta 3), so l2_to_mean is 0 before training;
    without it the copies start apart. Training then moves the copies apart again."""
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params=TINY_ENCODER_PARAMS["mlp"])
    tie = [{"name": "l2_to_mean", "weight": 1.0, "parameters": ["encoders"]}]
    torch.manual_seed(0)
    apart = SHARING.build("soft", specs, factory, params={"regularizers": tie})
    torch.manual_seed(0)
    equal = SHARING.build("soft", specs, factory, params={"regularizers": tie, "equal_init": True})
    assert apart.penalties()["l2_to_mean"].item() > 0
    assert equal.penalties()["l2_to_mean"].item() == pytest.approx(0, abs=1e-10)  # the mean rounds
    for a, b in zip(equal.encoders[0].parameters(), equal.encoders[1].parameters()):
        torch.testing.assert_close(a, b)
    alpha, beta, gamma = equal.heads.heads
    torch.testing.assert_close(alpha.weight, gamma.weight)
    assert beta.weight.shape != alpha.weight.shape  # left as it was: a different label space
    one_step(data, equal, 0.5)
    assert equal.penalties()["l2_to_mean"].item() > 0


def test_soft_sharing_refuses_a_non_boolean_equal_init(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params=TINY_ENCODER_PARAMS["mlp"])
    with pytest.raises((ValueError, ConfigError), match="equal_init"):
        SHARING.build("soft", specs, factory, params={"equal_init": "yes"})
