"""Data-parallel training (training/distributed.py): two gloo processes, each on its share of
every step's rows, end with the weights one process reaches on the combined batches; what
cannot be made exact is refused before training."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

from textmtl.data.samplers import SAMPLERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training import distributed
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from conftest import synthetic_task
from .helpers import featurized
from .test_training_contract import factory, quick


def tasks(tagging=False):
    if tagging:  # sentences of 2-8 tokens: a token share differs from a row share
        from .test_training import token_task

        return [token_task("chunk", 3, 1), token_task("pos", 4, 2, sizes=(26, 10, 10))]
    return [synthetic_task("alpha", 2, 1), synthetic_task("beta", 3, 2, sizes=(40, 12, 12)),
            synthetic_task("gamma", 2, 3, sizes=(56, 16, 16))]


def trained(method="hard", weighting="fixed", sampler="every_task", data_parallel=None,
            dropout=0.0, regularizers=(), encoder="mlp", tagging=False, method_params=None):
    data = featurized(tasks(tagging), encoder)
    specs = [TaskSpec(t.name, t.num_classes, "token" if tagging else "sequence") for t in data.tasks]
    torch.manual_seed(0)
    params = dict(method_params or {})
    if regularizers:
        params["regularizers"] = list(regularizers)
    model = SHARING.build(method, specs, factory(encoder, data, dropout=dropout), params=params)
    result = train(model, WEIGHTINGS.build(weighting, data.task_names), SAMPLERS.build(sampler), data,
                   quick(max_epochs=3, lr=0.01, batch_size=5, clip_norm=1.0), seed=1,
                   data_parallel=data_parallel)
    return model, result


SETTINGS = {
    "hard-every_task": {},                                              # every task in every step
    "hard-uniform-dwa": {"sampler": "uniform", "weighting": "dwa"},    # one task a step; DWA
    "soft-l2_to_mean": {"method": "soft", "regularizers": [{"name": "l2_to_mean", "weight": 0.1}]},
    "bilstm-tagging": {"encoder": "bilstm", "tagging": True},          # means over tokens
    # a method whose hooks change the weights every step (k-means++ from the hooks' own
    # seeded generator, the same in every process) and whose clustering loss is a penalty
    "cluster_layers": {"method": "cluster_layers",
                       "method_params": {"clusters": [2, 2, 2], "freeze_after_epochs": 2}},
}


def _rank(rank, world, init, out):
    torch.set_num_threads(1)
    group = distributed.join(rank, world, init)
    try:
        saved = {}
        for name, settings in SETTINGS.items():  # one process group for all: spawning is the slow part
            model, result = trained(data_parallel=group, **settings)
            saved[name] = {"state": model.state_dict(), "curves": result.curves, "test": result.test}
        if rank == 0:
            torch.save(saved, out)
    finally:
        distributed.leave()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Every setting trained by two gloo processes on this machine (rank 0's results)."""
    folder = tmp_path_factory.mktemp("data-parallel")
    context = multiprocessing.get_context("spawn")
    init = f"file://{folder / 'rendezvous'}"
    out = folder / "rank0.pt"
    processes = [context.Process(target=_rank, args=(r, 2, init, out)) for r in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=240)
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_two_processes_reach_the_weights_of_one_on_the_combined_batches(two_processes, name):
    torch.set_num_threads(1)
    alone_model, alone = trained(**SETTINGS[name])
    shared = two_processes[name]
    for key, value in alone_model.state_dict().items():
        torch.testing.assert_close(shared["state"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    for ours, theirs in zip(shared["curves"], alone.curves):  # the combined batch's losses are logged
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
        assert ours["dev_score"] == theirs["dev_score"]
    for task, metrics in alone.test.items():
        assert shared["test"][task]["accuracy"] == metrics["accuracy"]


@pytest.mark.parametrize("method,weighting,message", [
    ("hard", "uncertainty", "weighting UncertaintyWeighting: its combination of the task losses"),
    ("hard", "gradnorm", "weighting GradNorm"),
    ("asp_mtl", "fixed", "method AdversarialSharedPrivate: its extra losses"),
])
def test_what_cannot_be_made_exact_is_refused(method, weighting, message):
    group = distributed.DataParallel(rank=0, world=2, local_rank=0)  # check() needs no processes
    data = featurized(tasks(), "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build(method, specs, factory("mlp", data))
    with pytest.raises(ConfigError, match=message):
        group.check(model, WEIGHTINGS.build(weighting, data.task_names))


def test_shards_take_every_worlds_row_and_count_the_shares():
    import numpy as np

    group = distributed.DataParallel(rank=1, world=2, local_rank=1)
    mine = group.shard([(0, np.arange(5)), (2, np.array([7])), (1, np.array([3, 4]), "unlabelled")])
    assert [(t, r.tolist(), *rest) for t, r, *rest in mine] == [(0, [1, 3]), (1, [4], "unlabelled")]


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_linear_in_losses_is_what_the_weighting_computes(name):
    """A weighting declaring ``linear_in_losses`` has the base backward and a combination that
    scales with its losses (what splitting a step's rows over processes relies on)."""
    from textmtl.weighting.base import LossWeighting

    cls = WEIGHTINGS.get(name)
    if not cls.linear_in_losses:
        return
    weighting = WEIGHTINGS.build(name, ["a", "b"])
    losses = {"a": torch.tensor(0.7), "b": torch.tensor(1.3)}
    assert cls.backward is LossWeighting.backward
    assert float(weighting.combine({k: 3 * v for k, v in losses.items()})) == pytest.approx(
        3 * float(weighting.combine(losses)))
    assert float(weighting.combine({"a": losses["a"]}) + weighting.combine({"b": losses["b"]})) == \
        pytest.approx(float(weighting.combine(losses)))
