"""Cluster layers (NCMTL): the properties that make them what the paper and our choices say.

- after each re-clustering the tasks of a cluster hold equal weights in that layer, and there
  are exactly as many distinct weight vectors as clusters; with clusters >= tasks nothing moves;
- k-means++ with one seed clusters the same way; it finds well-separated groups and leaves no
  cluster empty when enough vectors differ;
- the freeze: assignments stop changing, a layer stores only its centres, and the gradients of
  two tasks of one cluster reach the same centre (and add up there);
- the clustering loss is the distance to the centres of the previous clustering (a
  hand-computed case), 0 after the freeze;
- the optimiser state of replaced weights is averaged over the cluster (SGD momentum, Adam
  moments), at every step and at the freeze;
- the export holds only centres and assignments for the cluster layers and predicts the same;
- a run with clustering and a freeze is reproducible (the contract suite sees only 3 tasks,
  where every task is its own cluster).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_task
from textmtl.data.samplers import SAMPLERS
from textmtl.data.tasks import Task
from textmtl.encoders import ENCODERS
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.sharing.cluster_layers import ClusterLayer, kmeans, kmeans_plusplus
from textmtl.training.config import TrainingConfig
from textmtl.training.state import TrainState
from textmtl.training.step import build_optimizer, task_losses, train_step
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import featurized
from .test_training import token_task

PARAMS = {"widths": [5, 4, 3], "clusters": [2, 3, 4]}


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    """Six tasks (the three synthetic ones twice): enough for clusters of several tasks."""
    tasks = [Task(f"{t.name}{copy}", t.labels, t.train, t.dev, t.test)
             for copy in (1, 2) for t in synthetic_tasks]
    return featurized(tasks, "mlp")


def build(data, seed=0, **params):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params={"hidden_dims": [8, 6]})
    return SHARING.build("cluster_layers", specs, factory, params={**PARAMS, **params})


def batch_of(data, split="train", rows=6):
    return data.batch(split, [(k, np.arange(rows)) for k in range(len(data.tasks))])


def step(model, data, optimizer, state):
    """One training step of every task, then the method's step hook (as the trainer does)."""
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    train_step(model, weighting, [batch_of(data)], optimizer, list(model.parameters()), None)
    state.step += 1
    model.on_step_end(state)


def distinct_rows(vectors):
    return torch.unique(vectors, dim=0).shape[0]


def test_equal_init_starts_every_task_with_the_same_layer_and_the_default_draws_apart(data):
    equal, apart = build(data, equal_init=True), build(data)
    for layer in equal.cluster_layers:
        assert distinct_rows(layer.task_vectors().detach()) == 1
    for layer in apart.cluster_layers:
        assert distinct_rows(layer.task_vectors().detach()) == len(data.tasks)
    # one step apart: the tasks differ only by their own updates (no longer all equal)
    optimizer = build_optimizer(equal.param_groups(), "adam", 0.05)
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    train_step(equal, weighting, [batch_of(data)], optimizer, list(equal.parameters()), None)
    assert distinct_rows(equal.cluster_layers[0].task_vectors().detach()) > 1


@pytest.mark.parametrize("equal_init", [False, True])
def test_tasks_of_a_cluster_share_their_weights_after_each_step(data, equal_init):
    model = build(data, equal_init=equal_init)
    optimizer = build_optimizer(model.param_groups(), "adam", 0.05)
    state = TrainState(generator=torch.Generator().manual_seed(0), optimizer=optimizer)
    for _ in range(3):
        step(model, data, optimizer, state)
        for layer, clusters in zip(model.cluster_layers, PARAMS["clusters"]):
            vectors = layer.task_vectors().detach()  # (K, P)
            assignment = layer.assignment
            assert sorted(set(assignment.tolist())) == list(range(clusters))
            for cluster in range(clusters):
                members = vectors[assignment == cluster]
                assert all(torch.equal(members[0], row) for row in members), "a cluster's tasks differ"
            assert distinct_rows(vectors) == clusters


def test_clusters_at_least_tasks_leave_every_task_its_own_layer(data):
    model = build(data, clusters=[6, 9, 6])
    before = [layer.task_vectors().detach().clone() for layer in model.cluster_layers]
    model.on_step_end(TrainState())
    for layer, vectors in zip(model.cluster_layers, before):
        assert torch.equal(layer.task_vectors(), vectors)
        assert layer.assignment.tolist() == list(range(6))


def test_kmeans_with_one_seed_is_reproducible():
    points = torch.randn(14, 300, generator=torch.Generator().manual_seed(1))
    distances = torch.cdist(points.double(), points.double()).pow(2).numpy()
    seeds = [kmeans_plusplus(distances, 5, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert seeds[0] == seeds[1] and len(set(seeds[0])) == 5
    runs = [kmeans(points, 5, torch.Generator().manual_seed(7)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    # the draws come from the generator: other seeds choose other seeds
    others = {tuple(kmeans_plusplus(distances, 5, torch.Generator().manual_seed(s))) for s in range(8)}
    assert len(others) > 1


def test_two_models_with_one_generator_seed_cluster_alike(data):
    models = [build(data, seed=4) for _ in range(2)]
    for model in models:
        model.on_step_end(TrainState(generator=torch.Generator().manual_seed(3)))
    for a, b in zip(*(m.cluster_layers for m in models)):
        assert torch.equal(a.assignment, b.assignment)
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_kmeans_finds_separated_groups_and_leaves_no_cluster_empty():
    generator = torch.Generator().manual_seed(2)
    centres = torch.randn(3, 50, generator=generator) * 10
    truth = torch.tensor([0, 1, 2] * 4 + [0, 1])  # 14 points in 3 groups
    points = centres[truth] + 0.01 * torch.randn(14, 50, generator=generator)
    found = kmeans(points, 3, torch.Generator().manual_seed(0))
    # the same partition, whatever the ids
    assert all((found[i] == found[j]) == bool(truth[i] == truth[j])
               for i in range(14) for j in range(14))
    # 10 distinct vectors among 14 (a replacement, then one task moved): 10 non-empty clusters
    copies = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3])
    duplicated = torch.randn(10, 20, generator=generator)[copies]
    assignment = kmeans(duplicated, 10, torch.Generator().manual_seed(0))
    assert sorted(set(assignment.tolist())) == list(range(10))


def run_epochs(model, data, optimizer, state, epochs, steps=2):
    for _ in range(epochs):
        state.epoch += 1
        for _ in range(steps):
            step(model, data, optimizer, state)
        model.on_epoch_end(state)


def test_freeze_keeps_assignments_and_only_the_centres(data):
    model = build(data, freeze_after_epochs=2)
    optimizer = build_optimizer(model.param_groups(), "adam", 0.05)
    state = TrainState(generator=torch.Generator().manual_seed(0), optimizer=optimizer)
    run_epochs(model, data, optimizer, state, 2)
    assert model.frozen and model.frozen_after_epoch == 2
    frozen = [layer.assignment.clone() for layer in model.cluster_layers]
    run_epochs(model, data, optimizer, state, 2)  # trains on: the optimiser takes the new shapes
    report = model.cluster_report()
    assert [e["clusterings"] for e in report["epochs"]] == [2, 2, 0, 0]
    assert all(moves == 0 for e in report["epochs"][2:] for moves in e["moves"])
    for layer, assignment, clusters in zip(model.cluster_layers, frozen, PARAMS["clusters"]):
        assert torch.equal(layer.assignment, assignment)
        assert layer.weight.shape == (clusters, layer.output_dim, layer.input_dim)
        assert layer.bias.shape == (clusters, layer.output_dim)
    counts = model.parameter_counts()
    stored = sum(p.numel() for p in model.method_parameters())
    assert stored == sum(c["stored"] for c in counts) == sum(c["centres"] for c in counts)
    assert all(c["centres"] < c["task_layers"] for c in counts)
    assert report["layers"][0]["assignments"] == dict(zip(data.task_names, frozen[0].tolist()))


def test_after_the_freeze_two_tasks_of_a_cluster_train_one_centre(data):
    model = build(data, freeze_after_epochs=1)
    optimizer = build_optimizer(model.param_groups(), "adam", 0.05)
    run_epochs(model, data, optimizer, TrainState(optimizer=optimizer), 1)
    layer = model.cluster_layers[0]  # 2 clusters of 6 tasks: one holds two tasks at least
    assignment = layer.assignment.tolist()
    cluster = max(set(assignment), key=assignment.count)
    first, second = [k for k, c in enumerate(assignment) if c == cluster][:2]
    batch = batch_of(data)
    losses = task_losses(model(batch), batch.labels, batch.task_index, data.task_names)
    gradients = []
    for task in (first, second):
        model.zero_grad(set_to_none=True)
        losses[data.task_names[task]].backward(retain_graph=True)
        grad = layer.weight.grad.clone()  # (C, out, in)
        assert torch.any(grad[cluster] != 0), "a task of the cluster does not train its centre"
        assert not torch.any(torch.cat([grad[:cluster], grad[cluster + 1:]]) != 0)
        gradients.append(grad)
    model.zero_grad(set_to_none=True)
    (losses[data.task_names[first]] + losses[data.task_names[second]]).backward()
    torch.testing.assert_close(layer.weight.grad, gradients[0] + gradients[1])


def set_first_inputs(layer, values):
    """Task k's layer reads only its first input with weight values[k]; bias 0."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[:, 0, 0] = torch.tensor(values, dtype=layer.weight.dtype)


def test_clustering_loss_is_the_distance_to_the_previous_clustering(data):
    alpha = 0.5
    tasks = data.subset(data.task_names[:4])
    model = build(tasks, widths=[1], clusters=[2], cluster_loss_weight=alpha)
    layer = model.cluster_layers[0]
    state = TrainState(generator=torch.Generator().manual_seed(0))
    set_first_inputs(layer, [1.0, 3.0, 10.0, 12.0])
    model.on_step_end(state)  # clusters {0, 1} (centre 2) and {2, 3} (centre 11)
    assert layer.weight[:, 0, 0].tolist() == [2.0, 2.0, 11.0, 11.0]
    # one clustering so far: no previous one to be pulled to
    assert model.penalties()["clustering"].item() == 0.0
    set_first_inputs(layer, [2.0, 4.0, 5.0, 11.0])  # as if a step moved them; task 2 moves
    model.on_step_end(state)  # clusters {0, 1, 2} (centre 11/3) and {3} (centre 11)
    torch.testing.assert_close(layer.weight[:, 0, 0], torch.tensor([11 / 3, 11 / 3, 11 / 3, 11.0]))
    assert layer.assignment.tolist() == [0, 0, 0, 1]  # ids follow the previous clustering
    # previous centres 2, 2, 11, 11: alpha * ((11/3 - 2)^2 * 2 + (11/3 - 11)^2 + 0)
    penalty = model.penalties()["clustering"]
    torch.testing.assert_close(penalty, torch.tensor(alpha * 534 / 9))
    penalty.backward()
    torch.testing.assert_close(layer.weight.grad[:, 0, 0],
                               torch.tensor([2 * alpha * 5 / 3] * 2 + [2 * alpha * -22 / 3, 0.0]))
    model.on_epoch_end(TrainState(epoch=1))
    assert model.cluster_report()["epochs"][0]["moves"] == [1]
    model.on_epoch_end(TrainState(epoch=4))  # freeze_after_epochs: 4
    assert model.frozen and float(model.penalties()["clustering"]) == 0.0
    assert "clustering" not in build(tasks, cluster_loss_weight=0.0).penalties()


def pre_replacement_means(values, assignment):
    """Each task's row replaced by the mean of its cluster's rows."""
    means = {c: values[assignment == c].mean(0) for c in assignment.unique().tolist()}
    return torch.stack([means[c] for c in assignment.tolist()])


@pytest.mark.parametrize("optimizer_name,keys", [("sgd", ["momentum_buffer"]),
                                                 ("adam", ["exp_avg", "exp_avg_sq"])])
def test_optimiser_state_is_averaged_over_each_cluster(data, optimizer_name, keys):
    model = build(data)
    optimizer = build_optimizer(model.param_groups(), optimizer_name, 0.05, momentum=0.9)
    state = TrainState(generator=torch.Generator().manual_seed(0), optimizer=optimizer)
    step(model, data, optimizer, state)  # a first step: state exists and differs per task
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    train_step(model, weighting, [batch_of(data)], optimizer, list(model.parameters()), None)
    layers = list(enumerate(model.cluster_layers))
    before = {(i, name, key): optimizer.state[getattr(layer, name)][key].clone()
              for i, layer in layers for name in ("weight", "bias") for key in keys}
    steps = {i: optimizer.state[layer.weight].get("step") for i, layer in layers}
    steps = {i: None if s is None else s.clone() for i, s in steps.items()}
    model.on_step_end(state)
    for (i, name, key), values in before.items():
        layer = model.cluster_layers[i]
        after = optimizer.state[getattr(layer, name)][key]
        torch.testing.assert_close(after, pre_replacement_means(values, layer.assignment))
        if steps[i] is not None:  # Adam's step count is no per-element state: unchanged
            assert torch.equal(optimizer.state[layer.weight]["step"], steps[i])
    # at the freeze the merged centre's state is its cluster's mean too
    before = {(i, key): optimizer.state[layer.weight][key].clone()
              for i, layer in enumerate(model.cluster_layers) for key in keys}
    model.on_epoch_end(TrainState(epoch=4, optimizer=optimizer))
    for (i, key), values in before.items():
        layer = model.cluster_layers[i]
        merged = optimizer.state[layer.weight][key]
        assert merged.shape == layer.weight.shape  # (C, out, in)
        for cluster in range(layer.num_clusters):
            torch.testing.assert_close(merged[cluster], values[layer.assignment == cluster].mean(0))
    centres = model.cluster_layers[0].weight.detach().clone()
    train_step(model, weighting, [batch_of(data)], optimizer, list(model.parameters()), None)
    assert not torch.equal(model.cluster_layers[0].weight, centres), "the centres do not train"


def test_own_optimizer_state_is_left_to_each_task(data):
    model = build(data, optimizer_state="own")
    optimizer = build_optimizer(model.param_groups(), "adam", 0.05)
    state = TrainState(generator=torch.Generator().manual_seed(0), optimizer=optimizer)
    step(model, data, optimizer, state)
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    train_step(model, weighting, [batch_of(data)], optimizer, list(model.parameters()), None)
    layer = model.cluster_layers[0]
    before = {key: optimizer.state[layer.weight][key].clone() for key in ("exp_avg", "exp_avg_sq")}
    model.on_step_end(state)
    for key, values in before.items():
        assert torch.equal(optimizer.state[layer.weight][key], values)
    assert distinct_rows(layer.task_vectors().detach()) == PARAMS["clusters"][0]  # weights replaced


def test_tasks_change_cluster_only_from_equal_starts_with_their_own_optimizer_state(synthetic_tasks):
    """docs/ncmtl.md: from a draw per task, or with the cluster's mean Adam state, the first
    clustering is final; from equal starts with each task's own state tasks move (10 tasks,
    200 Adam steps at 1e-3, the paper's layers; the first layer's 3 clusters)."""
    tasks = [synthetic_task(f"t{i}", 2, i, sizes=(64, 16, 16)) for i in range(10)]
    data = featurized(tasks, "mlp")
    moves = {}
    for settings in [("mean", False), ("mean", True), ("own", False), ("own", True)]:
        model = build(data, widths=[32, 32, 16], clusters=[3, 5, 10], optimizer_state=settings[0],
                      equal_init=settings[1], freeze_after_epochs=0)
        optimizer = build_optimizer(model.param_groups(), "adam", 1e-3)
        state = TrainState(generator=torch.Generator().manual_seed(0), optimizer=optimizer)
        weighting = WEIGHTINGS.build("fixed", data.task_names)
        rng = np.random.default_rng(0)
        for _ in range(200):
            batch = data.batch("train", [(k, rng.choice(64, 8, replace=False)) for k in range(10)])
            train_step(model, weighting, [batch], optimizer, list(model.parameters()), None)
            model.on_step_end(state)
        moves[settings] = model._moves[0]
    assert moves[("mean", False)] == moves[("mean", True)] == moves[("own", False)] == 0
    assert moves[("own", True)] > 0


@pytest.mark.parametrize("freeze", [False, True])
def test_export_keeps_centres_and_assignments_and_predicts_the_same(data, freeze, tmp_path):
    model = build(data, seed=1)
    optimizer = build_optimizer(model.param_groups(), "adam", 0.05)
    state = TrainState(generator=torch.Generator().manual_seed(0), optimizer=optimizer)
    run_epochs(model, data, optimizer, state, 4 if freeze else 1)
    assert model.frozen == freeze
    exported = model.export_state()
    for i, (layer, clusters) in enumerate(zip(model.cluster_layers, PARAMS["clusters"])):
        prefix = f"cluster_layers.{i}."
        entries = {k[len(prefix):]: v for k, v in exported.items() if k.startswith(prefix)}
        assert set(entries) == {"centre_weight", "centre_bias", "assignment", "frozen"}
        assert entries["centre_weight"].shape == (clusters, layer.output_dim, layer.input_dim)
        assert entries["centre_bias"].shape == (clusters, layer.output_dim)
        assert entries["assignment"].tolist() == layer.assignment.tolist()
    other_keys = [k for k in exported if not k.startswith("cluster_layers.")]
    assert all(k.startswith(("encoder.", "heads.")) for k in other_keys)
    torch.save(exported, tmp_path / "model.pt")
    other = build(data, seed=2).eval()
    model.eval()
    batch = batch_of(data, "test", 5)
    with torch.no_grad():
        other.load_exported_state(torch.load(tmp_path / "model.pt"))
        assert torch.equal(model(batch), other(batch))
    assert other.frozen == freeze
    assert other.parameter_counts() == model.parameter_counts()
    if freeze:  # the trainer loads the best epoch's state, perhaps from before the freeze
        early = build(data, seed=3)
        early.on_step_end(TrainState())
        model.load_exported_state(early.export_state())
        assert not model.frozen and model.cluster_layers[0].weight.shape[0] == len(data.tasks)
        with torch.no_grad():
            assert torch.equal(model.eval()(batch), early.eval()(batch))


def test_weights_changed_after_the_last_clustering_are_exported_whole(data):
    """A step without the hook leaves a cluster's tasks unequal: each task is then exported as
    its own centre (identity assignment), so the export still predicts the same."""
    model = build(data, seed=1)
    optimizer = build_optimizer(model.param_groups(), "adam", 0.05)
    step(model, data, optimizer, TrainState(optimizer=optimizer))
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    train_step(model, weighting, [batch_of(data)], optimizer, list(model.parameters()), None)
    exported = model.export_state()
    assert exported["cluster_layers.0.centre_weight"].shape[0] == len(data.tasks)
    assert exported["cluster_layers.0.assignment"].tolist() == list(range(len(data.tasks)))
    other = build(data, seed=2).eval()
    other.load_exported_state(exported)
    batch = batch_of(data, "test", 5)
    with torch.no_grad():
        assert torch.equal(model.eval()(batch), other(batch))


def test_a_run_with_clustering_and_a_freeze_is_reproducible(data):
    config = TrainingConfig(max_epochs=3, patience=0, batch_size=4, progress=False)
    runs = []
    for _ in range(2):
        model = build(data, seed=3, freeze_after_epochs=2)
        sampler = SAMPLERS.build("every_task", data.task_names)
        result = train(model, WEIGHTINGS.build("fixed", data.task_names), sampler, data, config, seed=3)
        runs.append(([(c["train_loss"], c.get("extra_losses")) for c in result.curves],
                     model.cluster_report()["epochs"]))
    assert runs[0] == runs[1]
    assert all(np.isfinite(v) for c in runs[0][0] for v in c[0].values())
    assert "clustering" in runs[0][0][0][1]


def test_token_rows_go_through_their_own_tasks_layer():
    layer = ClusterLayer(3, 4, 5, 2)
    hidden = torch.randn(6, 7, 4)  # (B, T, in)
    task_index = torch.tensor([0, 1, 2, 2, 1, 0])
    tokens = layer(hidden, task_index)  # (B, T, out)
    for t in range(7):
        torch.testing.assert_close(tokens[:, t], layer(hidden[:, t], task_index))


def test_tagging_tasks_run_their_tokens_through_the_cluster_layers():
    from textmtl.data.batching import MultiTaskData
    from textmtl.data.features import FEATURIZERS

    data = MultiTaskData.build([token_task(f"tag{k}", 3, k) for k in range(3)],
                               FEATURIZERS.build("tokens", params={}))
    torch.manual_seed(0)
    specs = [TaskSpec(t.name, t.num_classes, "token") for t in data.tasks]
    encoder = {"embedding_dim": 6, "hidden_dim": 4, "pooling": "none"}
    factory = lambda: ENCODERS.build("bilstm", data.spec, params=encoder)
    params = {"widths": [5, 4], "clusters": [2, 2]}
    model = SHARING.build("cluster_layers", specs, factory, params=params)
    batch = batch_of(data, rows=4)
    logits = model(batch)
    assert logits.shape[:2] == batch.labels.shape  # (B, T, C)
    losses = task_losses(logits, batch.labels, batch.task_index, data.task_names)
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in model.method_parameters())
    model.on_step_end(TrainState())
    with torch.no_grad():  # a row alone predicts as in the batch
        alone = model(data.batch("train", [(1, np.array([2]))]))
        together = model(batch)[batch.task_index == 1][2:3, : alone.shape[1]]
        torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("params,message", [
    ({"widths": []}, "'widths' of ClusterLayers must be a non-empty list of positive integers, got"),
    ({"clusters": [3, 5]},
     r"'clusters' of ClusterLayers must be one cluster count >= 1 per cluster layer \(3 for"),
    ({"clusters": [3, 0, 2]}, "'clusters' of ClusterLayers must be one cluster count >= 1"),
    ({"activation": "gelu"}, "'activation' of ClusterLayers must be one of relu, tanh, got 'gelu'"),
    ({"cluster_loss_weight": -1.0}, "'cluster_loss_weight' of ClusterLayers must be >= 0, got -1.0"),
    ({"freeze_after_epochs": -2},
     r"'freeze_after_epochs' of ClusterLayers must be an integer >= 0 \(0: never"),
    ({"equal_init": 1}, "'equal_init' of ClusterLayers must be true or false, got 1"),
    ({"optimizer_state": "reset"}, "'optimizer_state' of ClusterLayers must be 'mean' or 'own', got 'reset'"),
])
def test_bad_settings_name_the_parameter(data, params, message):
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params={"hidden_dims": [8, 6]})
    with pytest.raises(ValueError, match=message):  # the constructor itself, not the registry
        SHARING.get("cluster_layers")(specs, factory, **params)


def test_never_frozen_with_freeze_after_zero_and_tanh_is_used(data):
    model = build(data, freeze_after_epochs=0, activation="tanh")
    model.on_epoch_end(TrainState(epoch=10))
    assert not model.frozen
    model.eval()
    batch = batch_of(data, "dev", 2)
    relu = build(data, freeze_after_epochs=0).eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch), relu(batch))
