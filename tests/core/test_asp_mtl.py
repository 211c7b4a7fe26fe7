"""ASP-MTL (adversarial shared-private): the properties that make it what the paper says.

- the gradient-reversal layer is the identity forward and multiplies gradients by -lambda;
- through it the discriminator gets the gradient that lowers the adversarial loss and the
  shared encoder exactly the reversed one (so a step raises the loss for the encoder);
- the difference loss matches hand-computed cases (raw and normalised) and is 0 for
  orthogonal features; the method's ``difference`` is its sum over the batch's tasks;
- unlabelled rows enter the adversarial loss, never a task loss (nor the difference loss);
- the trainer weighs the extra losses 0.05 / 0.01 by default and logs them per epoch;
- tagging tasks read concatenated token features; bad options are one-line errors.
(The contract suite, ``test_contracts.py``, checks the rest: gradients, groups, saving.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from textmtl.data.batching import MultiTaskData, UNLABELLED
from textmtl.data.features import FEATURIZERS
from textmtl.data.samplers import SAMPLERS
from textmtl.data.tasks import Task
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.sharing.asp_mtl import AdversarialSharedPrivate, difference_loss, ganin_strength, reverse_gradient
from textmtl.sharing.base import TaskSpec
from textmtl.sharing.heads import MASKED_LOGIT
from textmtl.training.config import TrainingConfig
from textmtl.training.state import TrainState
from textmtl.training.step import build_optimizer, task_losses, train_step
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import TINY_ENCODER_PARAMS, TINY_FEATURE_PARAMS, with_unlabelled
from .test_training import token_task


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    tasks = [with_unlabelled(t, i, count=10) for i, t in enumerate(synthetic_tasks)]
    featurizer = FEATURIZERS.build("tfidf", params=TINY_FEATURE_PARAMS["tfidf"])
    return MultiTaskData.build(tasks, featurizer, unlabelled=True)


def build(data, seed=0, encoder="mlp", encoder_params=None, **params):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes, "token" if t.kind == "tagging" else "sequence")
             for t in data.tasks]
    encoder_params = {**TINY_ENCODER_PARAMS[encoder], **(encoder_params or {})}
    factory = lambda: ENCODERS.build(encoder, data.spec, params=encoder_params)
    return SHARING.build("asp_mtl", specs, factory, params=params)


def mixed_batch(data, labelled=4, unlabelled=3):
    """Labelled rows of every task, then unlabelled rows of every task."""
    k = len(data.tasks)
    parts = [(t, np.arange(labelled)) for t in range(k)]
    parts += [(t, np.arange(unlabelled), UNLABELLED) for t in range(k)]
    return data.batch("train", parts)


def adversarial(model, batch):
    model(batch)
    return model.extra_losses()["adversarial"]


# ---------------------------------------------------------------- gradient reversal

@pytest.mark.parametrize("strength", [1.0, 0.3, 0.0])
def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward(strength):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = reverse_gradient(x, strength)
    assert torch.equal(y, x)
    incoming = torch.randn(3, 4, dtype=torch.float64)
    (grad,) = torch.autograd.grad(y, x, incoming)
    assert torch.equal(grad, -strength * incoming)


@pytest.mark.parametrize("strength", [1.0, 0.25])
def test_discriminator_descends_and_shared_encoder_ascends_the_adversarial_loss(data, strength):
    model = build(data, seed=1)
    model.grl_strength = strength
    batch = mixed_batch(data)
    shared, discriminator = model.shared_parameters(), model.method_parameters()
    loss = adversarial(model, batch)
    with_grl = torch.autograd.grad(loss, shared + discriminator)
    # the same loss without the reversal layer
    plain_loss = F.cross_entropy(model.discriminator(model.shared_encoder(batch.inputs)), batch.task_index)
    torch.testing.assert_close(loss, plain_loss)
    plain = torch.autograd.grad(plain_loss, shared + discriminator)
    for reversed_grad, grad in zip(with_grl[:len(shared)], plain[:len(shared)]):
        assert torch.any(grad != 0)
        torch.testing.assert_close(reversed_grad, -strength * grad)  # opposite sign, scaled
    for own, grad in zip(with_grl[len(shared):], plain[len(shared):]):
        assert torch.any(grad != 0)
        torch.testing.assert_close(own, grad)  # the discriminator's own gradient is untouched

    def loss_after_step(parameters, grads, lr=1e-2):
        moved = build(data)
        moved.load_state_dict(model.state_dict())
        named = {id(p): n for n, p in model.named_parameters()}
        params = dict(moved.named_parameters())
        with torch.no_grad():
            for p, g in zip(parameters, grads):
                params[named[id(p)]] -= lr * g
        return adversarial(moved, batch).item()

    before = loss.item()
    assert loss_after_step(discriminator, with_grl[len(shared):]) < before
    if strength > 0:  # a descent step of the encoder on the reversed gradient fools the discriminator more
        assert loss_after_step(shared, with_grl[:len(shared)]) > before


def test_ganin_schedule_rises_from_zero_with_training_progress(data):
    model = build(data, grl_schedule="ganin", grl_ramp_epochs=2)
    assert model.grl_strength == 0.0
    model.on_step_end(TrainState(epoch=1, step=5, steps_per_epoch=10, step_in_epoch=5))
    assert model.grl_strength == pytest.approx(2 / (1 + math.exp(-10 * 0.25)) - 1)
    model.on_step_end(TrainState(epoch=4, step=40, steps_per_epoch=10, step_in_epoch=10))
    assert model.grl_strength == pytest.approx(ganin_strength(1.0)) and ganin_strength(1.0) > 0.9999
    constant = build(data)
    constant.on_step_end(TrainState(epoch=1, step=1, steps_per_epoch=10, step_in_epoch=1))
    assert constant.grl_strength == 1.0


# ---------------------------------------------------------------- difference loss

def test_difference_loss_hand_computed_and_zero_when_orthogonal():
    shared = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    private = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    # S^T H = [[3, 3], [8, 4]]: 9 + 9 + 64 + 16
    assert float(difference_loss(shared, private, "raw")) == pytest.approx(98.0)
    # unit rows: S = [[.6, .8], [0, 1]], H = [[1, 1] / sqrt 2, [1, 0]];
    # S^T H = [[.6 / sqrt 2, .6 / sqrt 2], [.8 / sqrt 2 + 1, .8 / sqrt 2]]: .18 + .18 + (1.32 + .8 sqrt 2) + .32
    assert float(difference_loss(shared, private, "normalized")) == pytest.approx(2.0 + 0.8 * math.sqrt(2))
    # the normalised form ignores the feature scale; the raw one grows with its square per factor
    assert float(difference_loss(10 * shared, private, "normalized")) == pytest.approx(2.0 + 0.8 * math.sqrt(2))
    assert float(difference_loss(10 * shared, private, "raw")) == pytest.approx(9800.0)
    # every column of S orthogonal to every column of H (over the rows): S^T H = 0
    orthogonal_shared = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    orthogonal_private = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])
    for form in ("raw", "normalized"):
        assert float(difference_loss(orthogonal_shared, orthogonal_private, form)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="'form' of difference_loss must be one of raw, normalized, got 'l1'"):
        difference_loss(shared, private, "l1")


@pytest.mark.parametrize("form", ["raw", "normalized"])
def test_method_difference_is_the_sum_over_tasks_of_labelled_rows(data, form):
    model = build(data, seed=2, difference_form=form)
    batch = mixed_batch(data)
    model(batch)
    shared = model.shared_encoder(batch.inputs)  # (B, H)
    expected = 0.0
    for k, encoder in enumerate(model.private_encoders):
        rows = ((batch.task_index == k) & batch.labelled).nonzero(as_tuple=True)[0]
        expected = expected + difference_loss(shared[rows], encoder(batch.inputs.select(rows)), form)
    torch.testing.assert_close(model.extra_losses()["difference"], expected)


# ---------------------------------------------------------------- unlabelled rows

def test_unlabelled_rows_enter_the_adversarial_loss_not_the_task_losses(data):
    model = build(data, seed=3)
    batch = mixed_batch(data)
    labelled_only = batch.select(batch.labelled.nonzero(as_tuple=True)[0])
    logits = model(batch)
    full = model.extra_losses()
    assert not batch.labelled.all() and batch.labels[~batch.labelled].eq(-100).all()
    # no prediction is made for unlabelled rows: their logits are masked, their labels ignored
    assert torch.all(logits[~batch.labelled] == MASKED_LOGIT)
    losses = task_losses(logits, batch.labels, batch.task_index, data.task_names)
    alone_logits = model(labelled_only)
    alone = model.extra_losses()
    expected = task_losses(alone_logits, labelled_only.labels, labelled_only.task_index, data.task_names)
    assert losses.keys() == expected.keys()
    for name in losses:
        torch.testing.assert_close(losses[name], expected[name])
    torch.testing.assert_close(logits[batch.labelled], alone_logits)
    torch.testing.assert_close(full["difference"], alone["difference"])  # labelled rows only
    # the discriminator reads every row of the batch
    vectors = model.shared_encoder(batch.inputs)
    torch.testing.assert_close(full["adversarial"],
                               F.cross_entropy(model.discriminator(vectors), batch.task_index))
    assert not torch.allclose(full["adversarial"], alone["adversarial"])


def test_use_unlabelled_false_ignores_unlabelled_rows_and_needs_none(data):
    model = build(data, seed=3, use_unlabelled=False)
    assert not model.needs_unlabelled_rows and AdversarialSharedPrivate.needs_unlabelled_rows
    batch = mixed_batch(data)
    labelled_only = batch.select(batch.labelled.nonzero(as_tuple=True)[0])
    torch.testing.assert_close(adversarial(model, batch), adversarial(model, labelled_only))
    quick = TrainingConfig(max_epochs=1, patience=0, batch_size=8, progress=False)
    train(model, WEIGHTINGS.build("fixed", data.task_names), SAMPLERS.build("every_task", data.task_names),
          data, quick, seed=1)
    with pytest.raises(ConfigError, match="reads unlabelled rows; set the sampler's 'unlabelled_per_step'"):
        train(build(data), WEIGHTINGS.build("fixed", data.task_names),
              SAMPLERS.build("every_task", data.task_names), data, quick, seed=1)


# ---------------------------------------------------------------- training: weights and curves

def test_train_step_weighs_the_extra_losses_by_the_paper_defaults(data):
    model = build(data, seed=4)
    assert model.default_loss_weights == {"adversarial": 0.05, "difference": 0.01}
    weighting = WEIGHTINGS.build("fixed", data.task_names)
    seen = []
    backward = weighting.backward

    def recording(losses, extra, method):
        seen.append(extra.detach().clone())
        backward(losses, extra, method)

    weighting.backward = recording
    optimizer = build_optimizer(model.param_groups(), "adam", 1e-3)
    batch = mixed_batch(data)
    parameters = list(model.parameters())
    for overrides, adversarial_weight in ((None, 0.05), ({"adversarial": 1.0}, 1.0)):
        step = train_step(model, weighting, [batch], optimizer, parameters, None, overrides)
        extras = model.extra_losses()  # of the step's forward, before the update
        torch.testing.assert_close(seen[-1], adversarial_weight * extras["adversarial"].detach()
                                   + 0.01 * extras["difference"].detach())
        assert step.extras["adversarial"] == pytest.approx(extras["adversarial"].item())  # logged unweighted


def test_curves_log_both_extra_losses_every_epoch(data):
    model = build(data, seed=5, grl_schedule="ganin", grl_ramp_epochs=3)
    sampler = SAMPLERS.build("every_task", data.task_names, params={"unlabelled_per_step": 4})
    config = TrainingConfig(max_epochs=3, patience=0, batch_size=8, progress=False)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names), sampler, data, config, seed=5)
    assert len(result.curves) == 3
    for entry in result.curves:
        extras = entry["extra_losses"]
        assert set(extras) == {"adversarial", "difference"}
        assert all(math.isfinite(v) and v >= 0 for v in extras.values())
    # the hooks ran: with p = 1 after the last epoch, lambda is Ganin's end value
    assert model.grl_strength == pytest.approx(ganin_strength(1.0))
    assert "discriminator.weight" in result.state_dict  # the saved model keeps the discriminator


# ---------------------------------------------------------------- tagging and options

def test_tagging_tasks_read_concatenated_token_features():
    tasks = [token_task("tag_a", 3, 1), token_task("tag_b", 4, 2)]
    tagging = MultiTaskData.build(tasks, FEATURIZERS.build("tokens"))
    model = build(tagging, seed=6, encoder="bilstm", encoder_params={"pooling": "none"})
    width = 2 * TINY_ENCODER_PARAMS["bilstm"]["hidden_dim"]  # one bi-LSTM: 2H
    assert model.heads.heads[0].in_features == 2 * width  # [shared; private] per token
    batch = tagging.batch("train", [(0, np.arange(4)), (1, np.arange(4))])
    logits = model(batch)
    assert logits.shape == (*batch.labels.shape, 4)
    assert set(model.extra_losses()) == {"adversarial", "difference"}
    losses = task_losses(logits, batch.labels, batch.task_index, tagging.task_names)
    (sum(losses.values()) + sum(model.extra_losses().values())).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient for {missing}"
    model.eval()
    with torch.no_grad():
        together = model(batch)
        for row in range(batch.size):
            alone = model(batch.select(torch.tensor([row])))
            steps = alone.shape[1]
            torch.testing.assert_close(together[row: row + 1, :steps], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("params,message", [
    ({"grl_schedule": "linear"}, "'grl_schedule' of AdversarialSharedPrivate must be one of constant, ganin, got 'linear'"),
    ({"grl_ramp_epochs": 0}, "'grl_ramp_epochs' of AdversarialSharedPrivate must be a number > 0, got 0"),
    ({"difference_form": "cosine"}, "'difference_form' of AdversarialSharedPrivate must be one of raw, normalized, got 'cosine'"),
    ({"discriminator_hidden": -2}, "'discriminator_hidden' of AdversarialSharedPrivate must be an integer >= 0"),
])
def test_bad_options_are_one_line_errors(data, params, message):
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("mlp", data.spec, params=TINY_ENCODER_PARAMS["mlp"])
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AdversarialSharedPrivate(specs, factory, **params)


def test_mlp_discriminator_is_a_method_parameter(data):
    model = build(data, discriminator_hidden=5)
    assert [tuple(p.shape) for p in model.method_parameters()] == [(5, 6), (5,), (3, 5), (3,)]
    assert np.isfinite(adversarial(model, mixed_batch(data)).item())


def test_only_featurized_copies_that_a_method_reads_unlabelled_from_hold_unlabelled_texts(synthetic_tasks):
    """Unlabelled texts are featurized for the methods that read them (ASP-MTL), not for a
    method with its own features that never reads them (a costly pre-trained encoding)."""
    from textmtl.config import parse_config
    from textmtl.experiment import featurize

    config = parse_config({
        "name": "unlabelled", "data": {"user_files": [{"path": "a.csv"}]},
        "features": {"min_df": 1, "max_features": 50}, "encoder": {"name": "mlp", "hidden_dims": [4]},
        "methods": ["asp_mtl", "hard",
                    {"name": "hard", "label": "hard_lstm", "encoder": {"name": "bilstm", "embedding_dim": 4}}]})
    tasks = [with_unlabelled(t, i) for i, t in enumerate(synthetic_tasks)]
    asp, hard, lstm = (featurize(config, tasks, m) for m in config.methods)
    assert asp.tables["unlabelled"] is not None and "unlabelled" in hard.tables  # one copy
    assert "unlabelled" not in lstm.tables
