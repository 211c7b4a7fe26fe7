"""Zhang et al. (2017)'s generalized recurrent architecture: the properties that make it what the
paper says.

- with the coupling and both fusions off it is K independent peephole LSTMs (Eqs. 6-13,
  checked against a plain computation of the equations, one text at a time);
- a coupling gate forced to 0 cuts task j's influence on task k (d h_k / d x_j = 0), and so do
  ``removed_pairs``; with the gate open the influence is there;
- padding never changes an encoding (extra padding, garbage ids past a text's end, other
  collections beside it);
- the batched recurrence equals the naive per-task reference loop (outputs and gradients);
- evaluation: companions are training rows, seeded, the same for a row whatever its batch; a
  prediction does not depend on the batch it is in; probabilities are averaged over the draws;
- bad options are one-line errors; a few steps of training on collections of the
  ``task_oriented`` sampler lower the loss.
(The contract suite, ``test_contracts.py``, checks gradients, parameter groups, saving and
seeded training for it too.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.data.inputs import TokenInput
from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.sharing.heads import MASKED_LOGIT
from textmtl.training.config import TrainingConfig
from textmtl.training.evaluation import average_repeated_rows, evaluate
from textmtl.training.trainer import train
from textmtl.weighting import WEIGHTINGS

from .helpers import TINY_ENCODER_PARAMS

TINY = {"embedding_dim": 5, "hidden_dim": 4}
ALL_OFF = {"coupling": False, "local_fusion": False, "global_fusion": False}
#: option sets the fused recurrence must agree with the naive loop on
VARIANTS = [
    {},
    {"gate_width": "vector", "peephole": "full", "output_peephole": "current", "candidate_bias": True},
    {"gate_own_recurrence": False, "ended_rows": "zero", "share_embedding": False},
    {"removed_pairs": [["alpha", "gamma"]]},
    {"coupling": False},
    {"local_fusion": False, "global_fusion": False},
    ALL_OFF,
]


@pytest.fixture(scope="module")
def data(synthetic_tasks):
    return MultiTaskData.build(synthetic_tasks, FEATURIZERS.build("tokens"))


def build(data, seed=0, encoder="bilstm", **params):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build(encoder, data.spec, params=TINY_ENCODER_PARAMS[encoder])
    return SHARING.build("generalized_recurrent", specs, factory, params={**TINY, **params})


def collections(data, positions, split="train"):
    """A batch of collections: row i of every task's ``positions`` form collection i."""
    return data.batch(split, [(k, np.asarray(positions)) for k in range(len(data.tasks))],
                      collections=True)


def reference_lstm(layer, vectors, full_peephole=False, output_current=False):
    """Eqs. 6-11 for one text, step by step, from the printed equations (no batching, no masks).

    Returns h at the text's last step."""
    n = layer.weight_hidden.shape[0]
    w = lambda g: layer.weight_input[:, g * n:(g + 1) * n]
    u = lambda g: layer.weight_hidden[:, g * n:(g + 1) * n]
    b = layer.full_bias()
    v = lambda g, c: c @ layer.peephole[:, g * n:(g + 1) * n] if full_peephole \
        else c * layer.peephole[g * n:(g + 1) * n]
    h = vectors.new_zeros(n)
    c = vectors.new_zeros(n)
    for x in vectors:
        i = torch.sigmoid(x @ w(0) + h @ u(0) + v(0, c) + b[:n])           # Eq. 6
        f = torch.sigmoid(x @ w(1) + h @ u(1) + v(1, c) + b[n:2 * n])      # Eq. 7
        candidate = torch.tanh(x @ w(3) + h @ u(3) + b[3 * n:])            # Eq. 9
        new_c = f * c + i * candidate                                      # Eq. 10
        o = torch.sigmoid(x @ w(2) + h @ u(2) + v(2, new_c if output_current else c)
                          + b[2 * n:3 * n])                                # Eq. 8
        c, h = new_c, o * torch.tanh(new_c)                                # Eq. 11
    return h


# ---------------------------------------------------------------- K independent LSTMs

@pytest.mark.parametrize("options", [{}, {"peephole": "full", "output_peephole": "current",
                                          "candidate_bias": True, "head_hidden": 3}])
def test_without_interactions_it_is_independent_peephole_lstms(data, options):
    model = build(data, **ALL_OFF, **options).double().eval()
    batch = collections(data, np.arange(5), "dev")
    with torch.no_grad():
        logits = model(batch)
        for row in range(batch.size):
            k = int(batch.task_index[row])
            length = int(batch.inputs.lengths[row])
            ids = batch.inputs.token_ids[row, :length]  # the text alone, no padding
            h = reference_lstm(model.single_layers[k], model.embeddings[0](ids).double(),
                               options.get("peephole") == "full",
                               options.get("output_peephole") == "current")
            expected = model.heads.heads[k](h)  # Eq. 13 (before the softmax)
            classes = data.tasks[k].num_classes
            torch.testing.assert_close(logits[row, :classes], expected)
            assert torch.all(logits[row, classes:] == MASKED_LOGIT)


def test_without_interactions_a_task_reads_nothing_of_the_others(data):
    model = build(data, **ALL_OFF).double()
    tokens, lengths, _, _ = model.collection_inputs(collections(data, np.arange(4)))
    x = model.embed(tokens, lengths).detach().requires_grad_()
    hidden = model.encode(x, lengths)
    for k in range(len(data.tasks)):
        (grad,) = torch.autograd.grad(hidden[k].sum(), x, retain_graph=True)
        others = [j for j in range(len(data.tasks)) if j != k]
        assert torch.all(grad[others] == 0) and torch.any(grad[k] != 0)


# ---------------------------------------------------------------- gates cut influence

def input_influence(model, batch, fused=True):
    """(K, K) bool: entry [j, k] says whether task k's final states depend on task j's inputs."""
    tokens, lengths, _, _ = model.collection_inputs(batch)
    x = model.embed(tokens, lengths).detach().requires_grad_()
    hidden = model.encode(x, lengths, fused=fused)
    k_tasks = hidden.shape[0]
    influence = torch.zeros(k_tasks, k_tasks, dtype=torch.bool)
    for k in range(k_tasks):
        (grad,) = torch.autograd.grad(hidden[k].sum(), x, retain_graph=True)
        influence[:, k] = grad.flatten(1).ne(0).any(dim=1)
    return influence


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("gate_width", ["scalar", "vector"])
def test_a_closed_coupling_gate_cuts_the_influence_of_that_task(data, fused, gate_width):
    two = data.subset(["alpha", "beta"])  # two tasks: no path through a third one
    model = build(two, coupling=True, local_fusion=False, global_fusion=False,
                  gate_width=gate_width).double()
    batch = collections(two, np.arange(4))
    assert input_influence(model, batch, fused).all()  # open gates: both ways
    model.coupling_mask[0, 1] = 0.0  # g(alpha -> beta) forced to 0
    influence = input_influence(model, batch, fused)
    assert not influence[0, 1], "beta still reads alpha's inputs through a closed gate"
    assert influence[1, 0] and influence[0, 0] and influence[1, 1]


def test_removed_pairs_cut_coupling_and_local_fusion(data):
    model = build(data, global_fusion=False, removed_pairs=[["alpha", "beta"], ["beta", "gamma"]]).double()
    assert model.pairs == [(0, 2)] and model.ordered_pairs == [(0, 2), (2, 0)]
    influence = input_influence(model, collections(data, np.arange(4)))
    expected = torch.tensor([[True, False, True], [False, True, False], [True, False, True]])
    assert torch.equal(influence, expected)  # beta is alone; alpha and gamma interact
    # the global fusion layer joins every task again
    assert input_influence(build(data, removed_pairs=[["alpha", "beta"]]).double(),
                           collections(data, np.arange(4))).all()


# ---------------------------------------------------------------- padding

@pytest.mark.parametrize("options", VARIANTS[:4])
def test_padding_never_changes_an_encoding(data, options):
    model = build(data, **options).eval()
    batch = collections(data, np.arange(6), "dev")
    with torch.no_grad():
        reference = model(batch)
        inputs = batch.inputs
        # more padding on the right
        padded = TokenInput(torch.nn.functional.pad(inputs.token_ids, (0, 7)), inputs.lengths)
        torch.testing.assert_close(model(type(batch)(**{**vars(batch), "inputs": padded})), reference)
        # garbage ids past each text's end are never read
        garbage = inputs.token_ids.clone()
        beyond = torch.arange(garbage.shape[1])[None, :] >= inputs.lengths[:, None]
        garbage[beyond] = torch.randint(2, data.spec.size, (int(beyond.sum()),),
                                        generator=torch.Generator().manual_seed(0))
        noisy = TokenInput(garbage, inputs.lengths)
        torch.testing.assert_close(model(type(batch)(**{**vars(batch), "inputs": noisy})), reference)
        # rows in another order, and each collection beside other ones or alone
        order = torch.randperm(batch.size, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(model(batch.select(order)), reference[order])
        for i in (0, 3):
            alone = model(collections(data, [i], "dev"))
            torch.testing.assert_close(alone, reference[batch.collection == i], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- fused == naive

@pytest.mark.parametrize("options", VARIANTS)
def test_fused_recurrence_equals_the_naive_loop(data, options):
    model = build(data, **options).double()
    batch = collections(data, np.arange(5))
    tokens, lengths, _, _ = model.collection_inputs(batch)
    x = model.embed(tokens, lengths)
    fused = model.encode(x, lengths, fused=True)
    fused_grads = torch.autograd.grad(fused.square().sum(), list(model.parameters()),
                                      allow_unused=True, retain_graph=True)
    naive = model.encode(x, lengths, fused=False)
    naive_grads = torch.autograd.grad(naive.square().sum(), list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(fused, naive, rtol=1e-10, atol=1e-12)
    for (name, _), a, b in zip(model.named_parameters(), fused_grads, naive_grads):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)
    # the flag chooses the path of forward
    model.fused = False
    torch.testing.assert_close(model(batch), build(data, **options).double()(batch))


# ---------------------------------------------------------------- evaluation

def plan_companions(plan):
    """(task, position) -> list of (other task, training position) per draw."""
    found: dict = {}
    for chunk in plan:
        (k, scored), *others = chunk.draws
        assert chunk.collections and chunk.companion_split == "train" and chunk.task == k
        for i, position in enumerate(scored):
            found.setdefault((k, int(position)), []).append(tuple((j, int(rows[i])) for j, rows in others))
    return found


def test_evaluation_companions_are_seeded_training_rows_independent_of_the_batch(data):
    model = build(data, eval_companion_draws=3)
    sizes, train_sizes = [len(r) for r in data.rows["test"]], data.train_sizes()
    plans = {b: plan_companions(model.evaluation_plan(sizes, b, train_sizes=train_sizes))
             for b in (1, 4, 9, 1000)}
    first = plans[1]
    assert set(first) == {(k, p) for k, size in enumerate(sizes) for p in range(size)}
    for draws in first.values():
        assert len(draws) == 3
        assert all(0 <= row < train_sizes[j] for draw in draws for j, row in draw)
    assert all(plan == first for plan in plans.values())
    assert plan_companions(build(data).evaluation_plan(sizes, 4, train_sizes=train_sizes)) == first
    other_seed = build(data, eval_companion_seed=5).evaluation_plan(sizes, 4, train_sizes=train_sizes)
    assert plan_companions(other_seed) != first
    with pytest.raises(ValueError, match="needs 'train_sizes'"):
        model.evaluation_plan(sizes, 4)


def scored_probabilities(model, data, split, batch_size):
    """(task, position) -> the averaged class probabilities, as ``evaluate`` scores them."""
    sizes = [len(r) for r in data.rows[split]]
    out = {}
    with torch.no_grad():
        for chunk in model.evaluation_plan(sizes, batch_size, train_sizes=data.train_sizes()):
            splits = [split] + [chunk.companion_split] * (len(chunk.draws) - 1)
            batch = data.batch(split, chunk.draws, collections=True, splits=splits)
            scored = len(chunk.draws[0][1])
            logits, _, positions = average_repeated_rows(model(batch)[:scored], batch.labels[:scored],
                                                         chunk.draws[0][1])
            assert len(positions) == len(set(positions.tolist()))
            for row, position in enumerate(positions):
                out[(chunk.task, int(position))] = logits[row].exp()
    return out


def test_a_prediction_does_not_depend_on_its_batch(data):
    model = build(data, eval_companion_draws=2).eval()
    reference = scored_probabilities(model, data, "test", 2)
    for batch_size in (5, 64):
        other = scored_probabilities(model, data, "test", batch_size)
        assert other.keys() == reference.keys()
        for key, value in reference.items():
            torch.testing.assert_close(other[key], value, rtol=1e-5, atol=1e-6)
    metrics = [evaluate(model, data, "test", torch.device("cpu"), b) for b in (1, 7, 512)]
    for m in metrics[1:]:
        for task in data.task_names:
            assert m[task]["accuracy"] == metrics[0][task]["accuracy"]
            assert m[task]["loss"] == pytest.approx(metrics[0][task]["loss"], rel=1e-5)


def test_evaluation_averages_the_probabilities_of_the_draws(data):
    """A row's score is the mean of its copies' probabilities (each copy: one companion draw)."""
    model = build(data, eval_companion_draws=3).eval()
    sizes = [len(r) for r in data.rows["dev"]]
    chunk = model.evaluation_plan(sizes, 6, train_sizes=data.train_sizes())[0]
    batch = data.batch("dev", chunk.draws, collections=True,
                       splits=["dev"] + ["train"] * (len(chunk.draws) - 1))
    scored = len(chunk.draws[0][1])
    with torch.no_grad():
        logits = model(batch)[:scored]
    averaged, labels, positions = average_repeated_rows(logits, batch.labels[:scored], chunk.draws[0][1])
    assert positions.tolist() == [0, 1]
    copies = torch.softmax(logits, -1).view(2, 3, -1)  # row p's three copies are side by side
    assert not torch.allclose(copies[:, 0], copies[:, 1])  # the companions matter
    torch.testing.assert_close(averaged.exp()[:, :2], copies.mean(1)[:, :2])
    assert torch.equal(labels, batch.labels[:scored:3])


# ---------------------------------------------------------------- errors and training

@pytest.mark.parametrize("params,message", [
    # the registry checks types and choices against the signature first
    ({"gate_width": "matrix"}, r"'sharing.gate_width' of sharing 'generalized_recurrent' must be "
                               r"Literal\['scalar', 'vector'\], got 'matrix'"),
    ({"coupling": "yes"}, r"'sharing.coupling' of sharing 'generalized_recurrent' must be bool, got 'yes'"),
    ({"hidden_dim": 0}, r"'hidden_dim' of GeneralizedRecurrent must be an integer >= 1, got 0"),
    ({"init_std": -1.0}, r"'init_std' of GeneralizedRecurrent must be a number > 0, got -1.0"),
    ({"eval_companion_draws": 0}, r"'eval_companion_draws' of GeneralizedRecurrent must be an integer >= 1"),
    ({"removed_pairs": [["alpha", "delta"]]}, r"'removed_pairs' of GeneralizedRecurrent must list pairs"),
])
def test_bad_options_are_one_line_errors(data, params, message):
    with pytest.raises(ConfigError, match=message) as info:
        build(data, **params)
    assert "\n" not in str(info.value)


def test_the_constructor_checks_choices_itself(data):
    from textmtl.sharing.generalized_recurrent import GeneralizedRecurrent

    specs = [TaskSpec(t.name, t.num_classes) for t in data.tasks]
    factory = lambda: ENCODERS.build("bilstm", data.spec, params=TINY_ENCODER_PARAMS["bilstm"])
    with pytest.raises(ValueError, match=r"'peephole' of GeneralizedRecurrent must be one of "
                                         r"diagonal, full, got 'none'"):
        GeneralizedRecurrent(specs, factory, peephole="none")
    with pytest.raises(ValueError, match=r"'fused' of GeneralizedRecurrent must be true or false, got 1"):
        GeneralizedRecurrent(specs, factory, fused=1)


def test_it_needs_token_features_collections_and_text_level_tasks(data, synthetic_tasks):
    tfidf = MultiTaskData.build(synthetic_tasks, FEATURIZERS.build("tfidf", params={"min_df": 1}))
    with pytest.raises(ConfigError, match=r"reads 'tokens' features; the encoder reads 'tfidf'"):
        build(tfidf, encoder="mlp")
    model = build(data)
    with pytest.raises(ValueError, match="the batch has no collections"):
        model(data.batch("train", [(0, np.arange(3)), (1, np.arange(3)), (2, np.arange(3))]))
    with pytest.raises(ValueError, match="one row of each of the 3 tasks"):
        model(data.batch("train", [(0, np.arange(3)), (1, np.arange(3))], collections=True))
    specs = [TaskSpec("tags", 3, "token")]
    factory = lambda: ENCODERS.build("bilstm", data.spec, params=TINY_ENCODER_PARAMS["bilstm"])
    with pytest.raises(ConfigError, match="task 'tags' labels tokens"):
        SHARING.build("generalized_recurrent", specs, factory, params=TINY)


def test_parameter_groups_follow_the_documented_split(data):
    shared = build(data)
    ids = lambda params: {id(p) for p in params}
    assert ids(shared.shared_parameters()) == ids(shared.embeddings.parameters())
    method = ids(shared.method_parameters())
    for module in (shared.coupling, shared.local_fusion, shared.global_fusion):
        assert ids(module.parameters()) <= method
    own = build(data, share_embedding=False)
    assert own.shared_parameters() == []
    assert ids(own.embeddings[1].parameters()) <= ids(own.task_parameters("beta"))
    assert build(data, **ALL_OFF).method_parameters() == []


def test_training_on_task_oriented_collections_lowers_the_loss(data):
    model = build(data, hidden_dim=8, eval_companion_draws=1)
    sampler = SAMPLERS.build("task_oriented", data.task_names, params={"oriented_task": "beta"})
    config = TrainingConfig(max_epochs=4, patience=0, batch_size=8, lr=0.02, progress=False)
    result = train(model, WEIGHTINGS.build("fixed", data.task_names), sampler, data, config, seed=1)
    losses = [np.mean(list(c["train_loss"].values())) for c in result.curves]
    assert losses[-1] < 0.8 * losses[0], losses
    # an epoch is n0 * N_beta = 2 * 40 collections, 8 per step
    assert result.steps == 4 * 10
    assert set(result.test) == set(data.task_names)
