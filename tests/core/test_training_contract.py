"""The training contract beyond single methods: task levels, heads on any stage, mixed task
kinds in one experiment, nested components, every weighting through the trainer, hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.regularizers.l2_to_mean import L2ToMean
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.training.config import TrainingConfig
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import TINY_ENCODER_PARAMS, featurized
from .test_training import token_task as tagging_task


def factory(name, data, **params):
    return lambda: ENCODERS.build(name, data.spec, params={**TINY_ENCODER_PARAMS.get(name, {}), **params})


def quick(**changes):
    return TrainingConfig(**{"max_epochs": 2, "patience": 0, "batch_size": 8, "progress": False, **changes})


def test_token_task_on_a_pooled_encoder_is_a_one_line_error(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec("chunk", 3, "token")]
    with pytest.raises(ConfigError, match=r"task 'chunk' labels tokens \(tagging\), but encoder 'mlp' "
                                          r"has no token-level stage"):
        SHARING.build("hard", specs, factory("mlp", data))


def test_sequence_task_reads_a_token_stage_pooled(synthetic_tasks):
    """A sentence classifier on a BiLSTM without pooling reads its last layer max-pooled."""
    data = featurized(synthetic_tasks, "bilstm")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build("hard", specs, factory("bilstm", data, pooling="none")).eval()
    batch = data.batch("dev", [(0, np.arange(4))])
    hidden = model.encoder(batch.inputs)  # (B, T, 2H)
    expected = model.heads(model.encoder.pool(hidden, batch.inputs, "max"), batch.task_index)
    torch.testing.assert_close(model(batch), expected)


def test_low_supervision_heads_read_their_stages():
    tasks = [tagging_task("pos", 4, 1), tagging_task("chunk", 3, 2)]
    data = MultiTaskData.build(tasks, FEATURIZERS.build("tokens"))
    specs = [TaskSpec(t.name, t.num_classes, "token") for t in tasks]
    make = factory("bilstm", data, num_layers=3, pooling="none")
    model = SHARING.build("low_supervision", specs, make, params={"task_stages": {"pos": 1}}).eval()
    assert [s.stage for s in model.sources] == [1, 3]
    batch = data.batch("dev", [(0, np.arange(3)), (1, np.arange(3))])
    # the POS loss never reaches layers 2 and 3: they only serve the chunk head
    logits = model(batch)
    model.zero_grad()
    logits[:3].sum().backward()
    assert all(p.grad is None or not torch.any(p.grad != 0) for p in model.encoder.stage_parameters(3))
    assert any(p.grad is not None and torch.any(p.grad != 0) for p in model.encoder.stage_parameters(1))
    with pytest.raises(ConfigError, match=r"'task_stages' of LowSupervision names unknown task 'ner'"):
        SHARING.build("low_supervision", specs, make, params={"task_stages": {"ner": 1}})
    with pytest.raises(ConfigError, match="stage 9 of task 'pos' is not a stage"):
        SHARING.build("low_supervision", specs, make, params={"task_stages": {"pos": 9}})


def test_classification_and_tagging_tasks_train_together(synthetic_tasks):
    """One hard-shared BiLSTM: a sentence task (pooled) beside a tagging task (per token)."""
    tasks = [synthetic_tasks[0], tagging_task("tags", 3, 4)]
    data = MultiTaskData.build(tasks, FEATURIZERS.build("tokens"))
    specs = [TaskSpec(t.name, t.num_classes, "token" if t.kind == "tagging" else "sequence") for t in tasks]
    model = SHARING.build("hard", specs, factory("bilstm", data, pooling="none"))
    result = train(model, WEIGHTINGS.build("fixed", data.task_names),
                   SAMPLERS.build("every_task", data.task_names), data, quick(max_epochs=3), seed=1)
    assert set(result.curves[0]["train_loss"]) == {"alpha", "tags"}
    assert "accuracy" in result.test["alpha"] and "cut_tokens" in result.test["tags"]
    assert result.curves[-1]["train_loss"]["tags"] < result.curves[0]["train_loss"]["tags"]


def test_cut_tagging_tokens_count_as_wrong():
    """A featurizer that cuts sentences: the gold tokens past the cut are scored, as errors."""
    tasks = [tagging_task("tags", 3, 5)]
    data = MultiTaskData.build(tasks, FEATURIZERS.build("tokens", params={"max_length": 3}))
    specs = [TaskSpec("tags", 3, "token")]
    model = SHARING.build("hard", specs, factory("bilstm", data, pooling="none"))
    result = train(model, WEIGHTINGS.build("fixed", ["tags"]), SAMPLERS.build("every_task"), data,
                   quick(max_epochs=1), seed=1)
    gold = tasks[0].test.labels
    total = sum(len(s) for s in gold)
    cut = sum(max(len(s) - 3, 0) for s in gold)
    assert result.test["tags"]["cut_tokens"] == cut > 0
    assert result.test["tags"]["accuracy"] <= (total - cut) / total


def test_regularizers_nest_in_a_method_config(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build("soft", specs, factory("mlp", data),
                          params={"regularizers": [{"name": "l2_to_mean", "weight": 0.5}]})
    (regularizer,) = model.regularizers
    assert isinstance(regularizer, L2ToMean) and regularizer.weight == 0.5
    assert set(model.penalties()) == {"l2_to_mean"} and float(model.penalties()["l2_to_mean"]) > 0
    with pytest.raises(ConfigError, match=r"unknown key 'methods.regularizers.0.wieght' for regularizer "
                                          r"'l2_to_mean'; valid keys: parameters, weight"):
        SHARING.build("soft", specs, factory("mlp", data), where="methods",
                      params={"regularizers": [{"name": "l2_to_mean", "wieght": 0.5}]})
    with pytest.raises(ConfigError, match="unknown regularizer 'trace'"):
        SHARING.validate("soft", {"regularizers": ["trace"]}, "methods.0")


def test_soft_sharing_pulls_the_task_copies_together(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    spreads = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = SHARING.build("soft", specs, factory("mlp", data),
                              params={"regularizers": [{"name": "l2_to_mean", "weight": weight}]})
        result = train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"),
                       data, quick(max_epochs=3, lr=0.01), seed=2)
        spreads[weight] = float(L2ToMean(weight=1.0).penalty(model))
        assert (weight == 0.0) == ("extra_losses" not in result.curves[0] or
                                   result.curves[0]["extra_losses"]["l2_to_mean"] == 0.0)
    assert spreads[1.0] < 0.5 * spreads[0.0]


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_every_weighting_trains_through_the_trainer(name, synthetic_tasks):
    """The trainer calls the weighting's backward and hooks; weights are logged per epoch."""
    if name == "jacobian":
        pytest.importorskip("torchjd")
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SHARING.build("hard", specs, factory("mlp", data))
        weighting = WEIGHTINGS.build(name, data.task_names)
        result = train(model, weighting, SAMPLERS.build("every_task"), data, quick(max_epochs=3, lr=0.01), seed=1)
        runs.append([c["train_loss"] for c in result.curves])
    assert runs[0] == runs[1], "not reproducible"
    assert np.mean(list(runs[0][-1].values())) < np.mean(list(runs[0][0].values()))
    if name in ("dwa", "gradnorm", "uncertainty"):
        assert set(result.curves[-1]["task_weights"]) == set(data.task_names)


def test_hooks_see_the_training_state(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build("hard", specs, factory("mlp", data))
    seen = []
    model.on_step_end = lambda state: seen.append(("step", state.epoch, state.step, state.step_in_epoch,
                                                   state.steps_per_epoch))
    model.on_epoch_end = lambda state: seen.append(("epoch", state.epoch, sorted(state.mean_epoch_losses())))
    train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"), data,
          quick(max_epochs=2), seed=1)
    steps = [s for s in seen if s[0] == "step"]
    per_epoch = steps[0][4]
    assert steps[-1][2] == 2 * per_epoch and steps[per_epoch][1:4] == (2, per_epoch + 1, 1)
    assert [s for s in seen if s[0] == "epoch"] == [("epoch", e, sorted(data.task_names)) for e in (1, 2)]


def test_cross_stitch_alpha_learning_rate_scale(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build("cross_stitch", specs, factory("mlp", data), params={"alpha_lr_scale": 100.0})
    groups = {g["name"]: g for g in model.param_groups()}
    assert groups["cross_stitch_alpha"]["lr_scale"] == 100.0
    from textmtl.training.step import build_optimizer

    optimizer = build_optimizer(model.param_groups(), "adam", 0.001)
    assert sorted(g["lr"] for g in optimizer.param_groups) == [0.001, pytest.approx(0.1)]


def test_a_method_that_needs_unlabelled_rows_refuses_a_sampler_without_them(synthetic_tasks):
    data = featurized(synthetic_tasks, "mlp")
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    model = SHARING.build("entropy_minimization", specs, factory("mlp", data))
    with pytest.raises(ConfigError, match="reads unlabelled rows; set the sampler's 'unlabelled_per_step'"):
        train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task"), data,
              quick(), seed=1)
    sampler = SAMPLERS.build("every_task", params={"unlabelled_per_step": 4})
    with pytest.raises(ConfigError, match="no task has unlabelled texts"):
        train(model, WEIGHTINGS.build("fixed", data.task_names), sampler, data, quick(), seed=1)
