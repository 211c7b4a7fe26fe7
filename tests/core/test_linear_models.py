"""Linear multi-task models: the ``linear`` encoder (identity over TF-IDF), ``pooled`` sharing,
split heads (B + S) and the regularisers that need them: dirty model, tensor trace norm,
cluster norm; plus the contract every registered regulariser keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.regularizers import REGULARIZERS
from textmtl.regularizers.cluster_norm import (ClusterNorm, cluster_averaging, clusters_of,
                                               relaxed_cluster_covariance)
from textmtl.regularizers.dirty_model import DirtyModel, soft_threshold
from textmtl.regularizers.l1_linf import L1Linf
from textmtl.regularizers.tensor_trace_norm import TensorTraceNorm, unfoldings
from textmtl.regularizers.trace_norm import TraceNorm
from textmtl.report.task_covariance import format_task_covariance, write_task_covariance
from textmtl.sharing import SHARING
from textmtl.sharing.base import SharingMethod, TaskSpec
from textmtl.sharing.heads import SplitLinear
from textmtl.training.config import TrainingConfig
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import TINY_ENCODER_PARAMS, featurized


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    return featurized(synthetic_tasks, "linear")  # 3 tasks (2, 3, 2 classes), 200 tf-idf features


@pytest.fixture(scope="module")
def binary_data(synthetic_tasks):
    """alpha and gamma, both binary: their heads are aligned (same shape), so penalties apply."""
    return featurized([synthetic_tasks[0], synthetic_tasks[2]], "linear")


def build(data, sharing="soft", encoder="linear", seed=0, **params):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build(encoder, data.spec, params=TINY_ENCODER_PARAMS.get(encoder, {}))
    return SHARING.build(sharing, specs, factory, params=params)


def batch_of(data, per_task=5, split="train"):
    return data.batch(split, [(k, np.arange(per_task)) for k in range(len(data.tasks))])


class TasksModel(SharingMethod):
    """K tasks, task k owning ``<name>.k`` for each given (K, ...) tensor of copies."""

    def __init__(self, **copies):
        count = len(next(iter(copies.values())))
        super().__init__([TaskSpec(f"t{k}", 2) for k in range(count)], lambda: None)
        self.owned = nn.ModuleDict({name: nn.ParameterList(
            nn.Parameter(torch.as_tensor(c, dtype=torch.float64).clone()) for c in values)
            for name, values in copies.items()})

    def task_parameters(self, task):
        return [p[self.task_id(task)] for p in self.owned.values()]


# -- the linear encoder, pooled sharing, split heads ------------------------------------------

def test_linear_encoder_is_the_identity_over_the_tfidf_rows(data):
    encoder = ENCODERS.build("linear", data.spec)
    assert list(encoder.parameters()) == [] and encoder.output_dim == data.spec.size
    table = data.tables["train"]
    rows = data.rows["train"][1][:7]
    dense = torch.from_numpy(table.matrix[rows].toarray().astype(np.float32))
    torch.testing.assert_close(encoder(table.gather(rows)), dense)


def test_soft_sharing_over_the_linear_encoder_is_one_logistic_regression_per_task(data):
    model = build(data, regularizers=[])
    batch = batch_of(data)
    logits = model(batch)
    dense = ENCODERS.build("linear", data.spec)(batch.inputs)  # (B, V)
    for row in range(batch.size):
        k = int(batch.task_index[row])
        head = model.heads.heads[k]
        expected = dense[row] @ head.weight.T + head.bias  # x a_t + b_t
        torch.testing.assert_close(logits[row, :head.out_features], expected)
        assert torch.all(logits[row, head.out_features:] < -1e8)  # other tasks' classes masked


def test_split_heads_compute_the_same_function_and_train_both_parts(data):
    plain = build(data, regularizers=[])
    split = build(data, regularizers=[], split_heads=True)
    for a, b in zip(plain.heads.heads, split.heads.heads):
        assert isinstance(b, SplitLinear) and torch.all(b.specific_part == 0)
        with torch.no_grad():
            b.shared_part.copy_(a.weight * 0.25)
            b.specific_part.copy_(a.weight * 0.75)
            b.bias.copy_(a.bias)
    batch = batch_of(data)
    torch.testing.assert_close(plain(batch), split(batch))
    names = set(split.task_named_parameters("alpha"))
    assert names == {"heads.heads.shared_part", "heads.heads.specific_part", "heads.heads.bias"}
    split(batch).logsumexp(dim=1).sum().backward()
    head = split.heads.heads[0]
    torch.testing.assert_close(head.shared_part.grad, head.specific_part.grad)  # d(B+S)/dB = d/dS
    with pytest.raises(ConfigError, match="split_heads"):
        build(data, split_heads="yes")


def test_pooled_shares_one_output_layer(data):
    model = build(data, sharing="pooled", encoder="mlp")
    assert all(model.task_parameters(t.name) == [] for t in data.tasks)
    assert len(model.heads.heads) == 1 and model.heads.heads[0].out_features == 3  # the widest
    batch = batch_of(data)
    logits = model(batch)
    # a row's logits do not depend on its task, except for the masked classes
    for row in range(batch.size):
        k = int(batch.task_index[row])
        classes = data.tasks[k].num_classes
        assert torch.all(logits[row, classes:] < -1e8)
    same_rows = data.batch("train", [(0, np.arange(3))])
    as_beta = data.batch("train", [(0, np.arange(3))])
    as_beta.task_index[:] = 1
    torch.testing.assert_close(model(same_rows)[:, :2], model(as_beta)[:, :2])


# -- dirty model ------------------------------------------------------------------------------

def dirty(b_rows, s_rows):
    return TasksModel(**{"shared_part": b_rows, "specific_part": s_rows})


def test_dirty_model_penalty_by_hand():
    # B columns: max |.| = 3, 2 -> 5; S: l1 = 1 + 2 + 0.5 = 3.5
    model = dirty([[3.0, 1.0], [1.0, -2.0]], [[1.0, 0.0], [-2.0, 0.5]])
    regularizer = DirtyModel(weight=2.0, block_weight=1.0, specific_weight=0.5)
    assert regularizer.penalty(model).item() == pytest.approx(2.0 * (5.0 + 0.5 * 3.5))


def test_dirty_model_prox_by_hand():
    # tau 1: B columns [3, 1] -> [2, 1], [1, -2] -> [1, -1]; S soft-thresholded by 0.5
    model = dirty([[3.0, 1.0], [1.0, -2.0]], [[1.0, 0.2], [-2.0, 0.5]])
    DirtyModel(weight=2.0, block_weight=1.0, specific_weight=0.5).proximal_step(model, 0.5)
    b = torch.stack([p.detach() for p in model.owned["shared_part"]])
    s = torch.stack([p.detach() for p in model.owned["specific_part"]])
    torch.testing.assert_close(b, torch.tensor([[2.0, 1.0], [1.0, -1.0]], dtype=torch.float64))
    torch.testing.assert_close(s, torch.tensor([[0.5, 0.0], [-1.5, 0.0]], dtype=torch.float64))


def test_dirty_prox_minimises_its_objective_and_splits_like_l1_linf_plus_lasso():
    generator = torch.Generator().manual_seed(3)
    b, s = (torch.randn(3, 5, generator=generator, dtype=torch.float64) for _ in range(2))
    regularizer = DirtyModel(block_weight=1.0, specific_weight=0.4)
    tau = 0.7
    best = regularizer.proximal_operator(torch.cat([b, s]), tau)
    torch.testing.assert_close(best[:3], L1Linf().proximal_operator(b, tau))
    torch.testing.assert_close(best[3:], soft_threshold(s, 0.4 * tau))

    def objective(x):
        return 0.5 * (x - torch.cat([b, s])).pow(2).sum() + tau * regularizer.penalty(
            dirty(x[:3].tolist(), x[3:].tolist()))

    for _ in range(50):
        other = best + 0.05 * torch.randn(6, 5, generator=generator, dtype=torch.float64)
        assert objective(best) <= objective(other) + 1e-12


def test_repeated_dirty_steps_give_shared_zero_features_and_sparse_exceptions():
    torch.manual_seed(0)
    b = torch.cat([0.05 * torch.randn(3, 4), 4 + torch.randn(3, 2)], dim=1).double()  # 4 weak features
    s = torch.cat([0.05 * torch.randn(3, 5), torch.tensor([[3.0], [0.0], [0.0]])], dim=1).double()
    model = dirty(b.tolist(), s.tolist())
    regularizer = DirtyModel(weight=1.0)
    for _ in range(5):
        regularizer.proximal_step(model, 0.1)
    b_after = torch.stack([p.detach() for p in model.owned["shared_part"]])
    s_after = torch.stack([p.detach() for p in model.owned["specific_part"]])
    assert torch.all(b_after[:, :4] == 0) and torch.all(b_after[:, 4:] != 0)
    assert torch.count_nonzero(s_after) == 1 and s_after[0, 5] > 0  # only the exception survives


def test_dirty_model_without_split_layers_is_a_one_line_error(data):
    model = build(data, regularizers=[{"name": "dirty_model", "weight": 0.1}])
    with pytest.raises(ValueError, match=r"^regularizer 'dirty_model' needs layers held as "
                                         r"shared_part \+ specific_part \(sharing 'soft' with split_heads"):
        model.penalties()
    with pytest.raises(ValueError, match="'specific_weight' of DirtyModel must be >= 0, got -1"):
        DirtyModel(specific_weight=-1)


def test_dirty_model_trains_on_split_linear_heads(binary_data):
    data = binary_data
    model = build(data, split_heads=True, regularizers=[{"name": "dirty_model", "weight": 0.5}])
    config = TrainingConfig(max_epochs=2, patience=0, batch_size=8, progress=False,
                            optimizer="sgd", lr=0.5)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"),
                   data, config, seed=1)
    logged = [c["extra_losses"]["dirty_model"] for c in result.curves]
    assert all(math.isfinite(v) for v in logged)
    specific = torch.cat([h.specific_part.detach().reshape(-1) for h in model.heads.heads[:1]])
    assert torch.count_nonzero(specific) < specific.numel()  # the l1 prox left exact zeros


# -- tensor trace norm ------------------------------------------------------------------------

def test_tensor_trace_norm_by_hand():
    # W1 = e00, W2 = e11 (2 x 2): every unfolding of the (2, 2, 2) tensor has singular values 1, 1
    model = TasksModel(weight=[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
    values = {v: TensorTraceNorm(variant=v).penalty(model).item() for v in ("tucker", "tt", "last_axis")}
    assert values == pytest.approx({"tucker": 6.0, "tt": 4.0, "last_axis": 2.0})


def test_tensor_unfoldings_shapes_and_last_axis_is_the_matrix_trace_norm():
    tensor = torch.randn(3, 4, 5, dtype=torch.float64)  # D1 3, D2 4, K 5
    assert [m.shape for m in unfoldings(tensor, "tucker")] == [(3, 20), (4, 15), (5, 12)]
    assert [m.shape for m in unfoldings(tensor, "tt")] == [(3, 20), (12, 5)]
    assert [m.shape for m in unfoldings(tensor, "last_axis")] == [(5, 12)]
    model = TasksModel(weight=torch.randn(5, 3, 4), bias=torch.randn(5, 3))
    assert TensorTraceNorm(variant="last_axis").penalty(model).item() == \
        pytest.approx(TraceNorm(mode="subgradient").penalty(model).item())
    # a bias stacks to a (D, K) matrix: all three variants give its nuclear norm (tucker twice)
    bias_only = TasksModel(bias=torch.randn(5, 3))
    nuclear = torch.linalg.svdvals(torch.stack(list(bias_only.owned["bias"]))).sum().item()
    assert TensorTraceNorm(variant="tucker").penalty(bias_only).item() == pytest.approx(2 * nuclear)
    assert TensorTraceNorm(variant="tt").penalty(bias_only).item() == pytest.approx(nuclear)
    with pytest.raises(ValueError, match="'variant' of TensorTraceNorm must be one of tucker, tt, last_axis"):
        TensorTraceNorm(variant="cp")


def test_tensor_trace_norm_gradient_lowers_tensor_rank():
    torch.manual_seed(0)
    model = TasksModel(weight=torch.randn(4, 3, 3))
    regularizer = TensorTraceNorm(variant="tucker")
    before = regularizer.penalty(model).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        regularizer.penalty(model).backward()
        optimizer.step()
    assert regularizer.penalty(model).item() < 0.7 * before


# -- cluster norm -----------------------------------------------------------------------------

def test_cluster_norm_given_clusters_by_hand():
    # a = [1, 0], [3, 0], [0, 4]; clusters {t0, t1}, {t2}: mean part 32/3, between 40/3, within 2
    model = TasksModel(weight=[[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    regularizer = ClusterNorm(weight=0.5, clusters=[["t0", "t1"]], mean_weight=1.0,
                              between_weight=1.0, within_weight=10.0)
    assert regularizer.penalty(model).item() == pytest.approx(0.5 * (32 / 3 + 40 / 3 + 20.0))


def test_cluster_norm_is_the_trace_form_of_jacob_et_al():
    torch.manual_seed(1)
    a = torch.randn(5, 4, dtype=torch.float64)
    model = TasksModel(weight=a)
    regularizer = ClusterNorm(clusters=[["t0", "t3"], ["t1", "t2", "t4"]], mean_weight=0.3,
                              between_weight=2.0, within_weight=7.0)
    averaging = cluster_averaging(regularizer.assignment(model.task_names))  # M
    uniform = torch.full((5, 5), 1 / 5, dtype=torch.float64)  # U
    x = 0.3 * uniform + 2.0 * (averaging - uniform) + 7.0 * (torch.eye(5, dtype=torch.float64) - averaging)
    assert regularizer.penalty(model).item() == pytest.approx(torch.trace(a.T @ x @ a).item())


def test_relaxed_covariance_is_feasible_and_optimal():
    torch.manual_seed(2)
    a = torch.randn(6, 9, dtype=torch.float64)
    centred = a - a.mean(dim=0)
    alpha, beta, gamma = ClusterNorm(num_clusters=3, between_weight=1.0, within_weight=10.0).bounds(6)
    sigma = relaxed_cluster_covariance(centred, alpha, beta, gamma)
    eigenvalues = torch.linalg.eigvalsh(sigma)
    assert torch.trace(sigma).item() == pytest.approx(gamma)
    assert eigenvalues.min() >= alpha - 1e-9 and eigenvalues.max() <= beta + 1e-9

    def cost(s):
        return torch.trace(centred.T @ torch.linalg.inv(s) @ centred).item()

    generator = torch.Generator().manual_seed(0)
    for _ in range(30):  # random feasible Sigma: random eigenvectors, eigenvalues in the box
        q, _ = torch.linalg.qr(torch.randn(6, 6, generator=generator, dtype=torch.float64))
        values = alpha + (beta - alpha) * torch.rand(6, generator=generator, dtype=torch.float64)
        values = relaxed_cluster_covariance(torch.diag(values), alpha, beta, gamma).diagonal()
        assert cost(sigma) <= cost((q * values) @ q.T) + 1e-9


def test_learned_cluster_norm_gradient_is_the_gradient_of_the_relaxation():
    """Danskin: the autograd gradient (Sigma* held fixed) equals the finite-difference
    gradient of the penalty, which re-minimises over Sigma at every evaluation."""
    torch.manual_seed(3)
    model = TasksModel(weight=torch.randn(4, 3))
    regularizer = ClusterNorm(num_clusters=2, mean_weight=0.5)
    regularizer.penalty(model).backward()
    step = 1e-6
    for k in range(4):
        parameter = model.owned["weight"][k]
        for j in range(3):
            with torch.no_grad():
                parameter[j] += step
                up = regularizer.penalty(model).item()
                parameter[j] -= 2 * step
                down = regularizer.penalty(model).item()
                parameter[j] += step
            assert parameter.grad[j].item() == pytest.approx((up - down) / (2 * step), rel=1e-4, abs=1e-6)


def test_learned_cluster_norm_finds_planted_clusters(tmp_path):
    torch.manual_seed(4)
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]], dtype=torch.float64)
    membership = [0, 1, 0, 1, 0, 1]
    model = TasksModel(weight=centres[membership] + 0.1 * torch.randn(6, 3, dtype=torch.float64))
    regularizer = ClusterNorm(num_clusters=2)
    regularizer.penalty(model)
    report = regularizer.task_covariance()
    (layer,) = report["layers"]
    assert sorted(map(sorted, layer["clusters"])) == [["t0", "t2", "t4"], ["t1", "t3", "t5"]]
    assert clusters_of(torch.tensor(layer["covariance"]), 2) in ([0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0])
    paths = write_task_covariance(tmp_path, report)
    assert [p.name for p in paths] == ["task_covariance.json", "task_covariance.png"]
    text = format_task_covariance(report)
    assert "cluster norm" in text and "clusters t0, t2, t4 | t1, t3, t5" in text


def test_cluster_norm_options_are_checked():
    with pytest.raises(ValueError, match="ClusterNorm needs 0 < between_weight < within_weight, got 5.0 and 1.0"):
        ClusterNorm(between_weight=5.0, within_weight=1.0)
    with pytest.raises(ValueError, match="'clusters' of ClusterNorm name a task twice"):
        ClusterNorm(clusters=[["a", "b"], ["b"]])
    subset = ClusterNorm(clusters=[["books", "t0", "t1"]])  # a config for more tasks than the model's
    model = TasksModel(weight=[[1.0], [2.0], [4.0]])
    assert subset.assignment(model.task_names) == [0, 0, 1]
    subset.penalty(model)
    assert subset.task_covariance()["ignored"] == ["books"]
    with pytest.raises(ConfigError, match="clusters"):
        REGULARIZERS.build("cluster_norm", params={"clusters": "books"})


# -- the contract of every registered regulariser ---------------------------------------------

#: a model each regulariser applies to: (sharing, encoder, sharing params)
MODEL_FOR = {"subspace_orthogonality": ("sluice", "mlp", {})}
DEFAULT_MODEL = ("soft", "linear", {"split_heads": True})


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_every_regularizer_keeps_the_contract(name, binary_data):
    """On a model it applies to: the penalty is a finite scalar >= 0, zero at weight 0, logged
    under its name by the sharing method, the model's gradient reaches its parameters (or its
    proximal step moves them toward a smaller penalty), and a short training run stays finite."""
    data = binary_data
    sharing, encoder, params = MODEL_FOR.get(name, DEFAULT_MODEL)
    model = build(data, sharing, encoder, regularizers=[{"name": name, "weight": 0.5}], **params)
    regularizer = model.regularizers[0]
    value = regularizer.penalty(model)
    assert value.dim() == 0 and math.isfinite(value.item()) and value.item() >= 0
    zero = REGULARIZERS.build(name, params={"weight": 0.0})
    assert zero.penalty(model).item() == 0.0
    assert set(model.penalties()) == {name}
    if regularizer.uses_proximal_step:
        before = regularizer.penalty(model).item()
        regularizer.proximal_step(model, 0.1)
        assert regularizer.penalty(model).item() <= before
    else:
        model.zero_grad(set_to_none=True)
        regularizer.penalty(model).backward()
        assert any(p.grad is not None and torch.any(p.grad != 0) for p in model.parameters())
    config = TrainingConfig(max_epochs=1, patience=0, batch_size=8, progress=False, optimizer="sgd", lr=0.1)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"),
                   data, config, seed=0)
    assert math.isfinite(result.curves[-1]["extra_losses"][name])


# -- soft sharing with shared lower stages ----------------------------------------------------

def test_shared_stages_tie_the_lower_layers_of_every_task_column(data):
    model = build(data, encoder="mlp", regularizers=[], shared_stages=1)  # mlp [8, 6]: 2 stages
    first = model.encoders[0]
    assert all(e.input_weight is first.input_weight and e.hidden_layers[0] is not first.hidden_layers[0]
               for e in model.encoders[1:])
    assert model.shared_parameters() == [first.input_weight, first.input_bias]
    assert set(model.task_named_parameters("beta")) == {
        "encoders.hidden_layers.0.weight", "encoders.hidden_layers.0.bias",
        "heads.heads.weight", "heads.heads.bias"}
    batch = batch_of(data)
    losses = torch.nn.functional.cross_entropy(model(batch), batch.labels, reduction="none")
    losses[batch.task_index == 2].sum().backward()  # gamma's rows only
    assert torch.any(first.input_weight.grad != 0)  # reach the one shared copy
    beta_layer = model.encoders[1].hidden_layers[0].weight.grad  # not beta's task layer
    assert beta_layer is None or not torch.any(beta_layer != 0)


def test_all_stages_shared_is_hard_sharing(data, tmp_path):
    soft = build(data, encoder="mlp", regularizers=[], shared_stages=2, seed=3)
    hard = build(data, sharing="hard", encoder="mlp", seed=4)
    with torch.no_grad():
        for a, b in zip(hard.encoder.parameters(), soft.encoders[0].parameters()):
            a.copy_(b)
        for a, b in zip(hard.heads.parameters(), soft.heads.parameters()):
            a.copy_(b)
    batch = batch_of(data, split="dev")
    soft.eval(), hard.eval()
    torch.testing.assert_close(soft(batch), hard(batch))
    torch.save(soft.export_state(), tmp_path / "model.pt")  # the tied copies round-trip
    other = build(data, encoder="mlp", regularizers=[], shared_stages=2, seed=5).eval()
    other.load_exported_state(torch.load(tmp_path / "model.pt"))
    assert other.encoders[2].input_weight is other.encoders[0].input_weight
    torch.testing.assert_close(other(batch), soft(batch))
    with pytest.raises(Exception, match=r"'shared_stages' of SoftSharing must be an integer in \[0, 2\]"):
        build(data, encoder="mlp", shared_stages=3)
