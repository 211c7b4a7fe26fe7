"""Sluice networks (and cross-stitch as the sluice paper uses it): the properties that make them
what the paper says.

- constant, equal α with β on the last layer is hard sharing (same outputs from the same weights);
- with all α equal (the paper's 0.25) every task network reads the same input, whatever its
  weights: the tasks read one shared representation;
- cross-stitch with identity α is K single-task networks (also with a shared embedding);
- the subspace split of a BiLSTM layer is each direction's halves, and the orthogonality
  penalty is zero for orthogonal subspace weights and matches a hand-computed case;
- ``learn_alpha: false`` is one network; the layer mixes read what they say; α and β are their
  own optimiser group and are saved.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.regularizers import REGULARIZERS
from textmtl.report.mixing import format_mixing, write_mixing
from textmtl.sharing import SHARING
from textmtl.sharing.base import TaskSpec
from textmtl.sharing.columns import mix_columns, subspace_layout

from .test_training import token_task

ENCODER = {"embedding_dim": 6, "hidden_dim": 4, "pooling": "none", "num_layers": 3}


@pytest.fixture(scope="module")
def data():
    # two tagging tasks with the same number of tags (so two heads can be made equal)
    tasks = [token_task("tag_a", 3, 1), token_task("tag_b", 3, 2)]
    return MultiTaskData.build(tasks, FEATURIZERS.build("tokens", params={"characters": True}))


def build(name, data, seed=0, params=None, encoder=None):
    torch.manual_seed(seed)
    specs = [TaskSpec(t.name, t.num_classes, "token") for t in data.tasks]
    encoder = {**ENCODER, "char_dim": 3, "char_hidden_dim": 2} if encoder is None else encoder
    factory = lambda: ENCODERS.build("bilstm", data.spec, params=encoder)
    return SHARING.build(name, specs, factory, params=params or {})


def mixed_batch(data, rows=5):
    batch = data.batch("dev", [(0, np.arange(rows)), (1, np.arange(rows))])
    order = torch.randperm(batch.size, generator=torch.Generator().manual_seed(0))
    return batch.select(order)  # rows of both tasks interleaved


def copy_hard_into_sluice(hard, sluice):
    for network in sluice.encoders:
        network.load_state_dict(hard.encoder.state_dict())
    sluice.heads.load_state_dict(hard.heads.state_dict())


# ------------------------------------------------------------------ sluice = hard sharing

@pytest.mark.parametrize("head_hidden", [0, 5])
@pytest.mark.parametrize("subspaces,layer_mix", [(1, "mixture"), (1, "last"), (2, "mixture")])
def test_constant_equal_alpha_with_beta_on_the_last_layer_is_hard_sharing(data, subspaces, layer_mix,
                                                                          head_hidden):
    """Every task network holds the hard-sharing encoder's weights, α gives every network the
    same mixture of all of them, β reads only the last layer: then sluice computes exactly what
    hard sharing computes. With subspaces α must keep a subspace a subspace: α = (1/K) J ⊗ I_S
    (constant over tasks); with one subspace that is the paper's all-equal α."""
    hard = build("hard", data, seed=1, params={"head_hidden": head_hidden}).eval()
    sluice = build("sluice", data, seed=2, params={"subspaces": subspaces, "layer_mix": layer_mix,
                                                   "head_hidden": head_hidden}).eval()
    copy_hard_into_sluice(hard, sluice)
    k = len(data.tasks)
    with torch.no_grad():
        constant = torch.kron(torch.full((k, k), 1.0 / k), torch.eye(subspaces))  # (KS, KS)
        sluice.alphas.copy_(constant.expand_as(sluice.alphas))
        for beta in sluice.betas or []:
            beta.copy_(torch.tensor([0.0, 0.0, 1.0]))
        batch = mixed_batch(data)
        expected, got = hard(batch), sluice(batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_all_equal_alpha_feeds_every_task_network_the_same_input(data):
    """The paper: "if all α-values are set to 0.25 (or any other constant), we obtain hard
    parameter sharing". The networks keep their own (different) weights, yet every one reads the
    same input at every layer and both heads read the same vector: a sentence gets identical
    logits as a row of either task once the two heads are equal."""
    sluice = build("sluice", data, seed=3, params={"subspaces": 2, "layer_mix": "last"}).eval()
    assert not torch.equal(sluice.encoders[0].layers[0].forward_rnn.weight_ih_l0,
                           sluice.encoders[1].layers[0].forward_rnn.weight_ih_l0)
    with torch.no_grad():
        sluice.alphas.fill_(0.25)
        sluice.heads.heads[1].load_state_dict(sluice.heads.heads[0].state_dict())
        batch = data.batch("dev", [(0, np.arange(4)), (0, np.arange(4))])
        batch.task_index[4:] = 1  # the same four sentences, as rows of task 0 and of task 1
        logits = sluice(batch)
    torch.testing.assert_close(logits[:4], logits[4:], rtol=0, atol=0)
    # and the mixing itself: all-equal α maps any K column outputs to K equal ones
    outputs = torch.randn(2, 3, 5, 8)  # (K, B, T, D)
    features = sluice.encoders[0].subspace_features(1, 2)
    mixed = mix_columns(torch.full((4, 4), 0.25), outputs, 2, *subspace_layout(features))
    torch.testing.assert_close(mixed[0], mixed[1])


def test_constant_alpha_is_one_network_and_equals_hard_sharing(data):
    """learn_alpha: false builds one shared network (hard sharing's cost) and, reading the last
    layer, is hard sharing."""
    hard = build("hard", data, seed=1).eval()
    sluice = build("sluice", data, seed=2, params={"learn_alpha": False, "subspaces": 1,
                                                   "layer_mix": "last"}).eval()
    assert len(sluice.encoders) == 1 and sluice.alphas is None and not sluice.method_parameters()
    assert sum(p.numel() for p in sluice.parameters()) == sum(p.numel() for p in hard.parameters())
    assert {id(p) for p in sluice.shared_parameters()} == {id(p) for p in sluice.encoders[0].parameters()}
    copy_hard_into_sluice(hard, sluice)
    batch = mixed_batch(data)
    with torch.no_grad():
        torch.testing.assert_close(sluice(batch), hard(batch), rtol=0, atol=0)
    with pytest.raises(ConfigError, match=r"'subspaces' of SluiceNetwork must be 1 with learn_alpha: false"):
        build("sluice", data, params={"learn_alpha": False, "subspaces": 2})


# ------------------------------------------------------------------ cross-stitch

def test_cross_stitch_with_a_shared_embedding_and_identity_alpha_is_single_task(data):
    """The paper's cross-stitch baseline (shared embedding, α after every BiLSTM layer, the
    outer layer predicts) with α = I equals single-task networks that share an embedding."""
    single = build("single_task", data, seed=1).eval()
    with torch.no_grad():  # single-task networks with equal embedding stages
        for a, b in zip(single.encoders[0].stage_parameters(0), single.encoders[1].stage_parameters(0)):
            b.copy_(a)
    stitch = build("cross_stitch", data, seed=2, params={"self_weight": 1.0, "shared_embedding": True}).eval()
    stitch.load_state_dict(single.state_dict(), strict=False)
    assert stitch.alphas.shape[0] == 3  # after the three BiLSTM layers, not after the embedding
    assert stitch.encoders[0].embedding.weight is stitch.encoders[1].embedding.weight
    assert [stitch.learned_mixing()["alpha"][i]["after"] for i in range(3)] == ["bilstm_1", "bilstm_2", "bilstm_3"]
    batch = mixed_batch(data)
    with torch.no_grad():
        torch.testing.assert_close(stitch(batch), single(batch), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ subspaces

def test_bilstm_subspaces_are_each_directions_halves(data):
    """H = 4 units per direction, 2 subspaces: subspace 1 = forward units 0-1 and backward units
    0-1 (features 0, 1, 4, 5), subspace 2 = features 2, 3, 6, 7 (docs/sluice.md)."""
    encoder = build("sluice", data).encoders[0]
    assert encoder.subspace_features(1, 2).tolist() == [[0, 1, 4, 5], [2, 3, 6, 7]]
    assert encoder.subspace_features(3, 1).tolist() == [list(range(8))]
    assert encoder.subspace_features(2, 4).tolist() == [[0, 4], [1, 5], [2, 6], [3, 7]]
    with pytest.raises(ValueError, match="3 subspaces do not split the 4 units of each direction"):
        encoder.subspace_features(1, 3)
    # the weight rows of a subspace are its units' rows in all four gates (i, f, g, o)
    (forward_input, *_rest) = encoder.subspace_weights(1, 2)
    weight = encoder.layers[0].forward_rnn.weight_ih_l0  # (4H, E)
    assert forward_input.kind == "input" and forward_input.stage == "bilstm_1"
    assert torch.equal(forward_input.blocks[0], weight[[0, 1, 4, 5, 8, 9, 12, 13]])
    assert torch.equal(forward_input.blocks[1], weight[[2, 3, 6, 7, 10, 11, 14, 15]])
    kinds = [w.kind for w in encoder.subspace_weights(1, 2)]
    assert kinds == ["input", "recurrent", "input_gate"] * 2  # forward, then backward LSTM
    assert encoder.subspace_weights(0, 2) == []  # the embedding is not split


def test_alpha_mixes_the_documented_subspaces(data):
    """α that swaps a task's two subspaces moves features (0, 1, 4, 5) <-> (2, 3, 6, 7)."""
    features = build("sluice", data).encoders[0].subspace_features(1, 2)
    layout = subspace_layout(features)
    assert layout == (2, None, None)  # per-direction halves: a view, no gather
    outputs = torch.arange(2 * 8, dtype=torch.float).reshape(2, 1, 8)  # (K, B, D)
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    alpha = torch.block_diag(swap, torch.eye(2))  # task 0 swaps its subspaces, task 1 keeps them
    mixed = mix_columns(alpha, outputs, 2, *layout)
    assert mixed[0, 0].tolist() == [2.0, 3.0, 0.0, 1.0, 6.0, 7.0, 4.0, 5.0]
    assert torch.equal(mixed[1], outputs[1])
    # row (k, s) = k * S + s: task 1's subspace 1 reading task 0's subspace 2
    cross = torch.zeros(4, 4)
    cross[2, 1] = 1.0
    assert mix_columns(cross, outputs, 2, *layout)[1, 0].tolist() == [2.0, 3.0, 0, 0, 6.0, 7.0, 0, 0]


@pytest.mark.parametrize("features", [[[0, 1, 4, 5], [2, 3, 6, 7]], [[0, 1, 2, 3], [4, 5, 6, 7]],
                                      [[0, 1, 2, 3, 4, 5, 6, 7]], [[5, 0, 7, 2], [1, 6, 3, 4]]])
def test_mixing_matches_the_formula_for_any_layout(features):
    """h~[k][f_s] = sum_(j,t) α[kS+s, jS+t] h[j][f_t], whatever positions f_s a subspace has
    (strided layouts are reshaped, others gathered)."""
    features = torch.tensor(features)
    subspaces = features.shape[0]
    outputs = torch.randn(3, 2, 5, 8)  # (K, B, T, D)
    alpha = torch.randn(3 * subspaces, 3 * subspaces)
    expected = torch.zeros_like(outputs)
    for k in range(3):
        for s in range(subspaces):
            for j in range(3):
                for t in range(subspaces):
                    expected[k][..., features[s]] += alpha[k * subspaces + s, j * subspaces + t] * outputs[j][..., features[t]]
    got = mix_columns(alpha, outputs, subspaces, *subspace_layout(features))
    torch.testing.assert_close(got, expected)


def zero_lstm_weights(model):
    with torch.no_grad():
        for network in model.encoders:
            for layer in network.layers:
                for rnn in (layer.forward_rnn, layer.backward_rnn):
                    rnn.weight_ih_l0.zero_()
                    rnn.weight_hh_l0.zero_()


def test_orthogonality_penalty_is_zero_for_orthogonal_subspaces(data):
    model = build("sluice", data, seed=4)
    penalty = REGULARIZERS.build("subspace_orthogonality", params={"weight": 1.0, "weights": ["input", "recurrent"]})
    assert penalty.penalty(model).item() > 0  # random weights are not orthogonal
    zero_lstm_weights(model)
    with torch.no_grad():  # subspace 1 reads input coordinate 0, subspace 2 coordinate 1 only
        for network in model.encoders:
            for layer in network.layers:
                for rnn in (layer.forward_rnn, layer.backward_rnn):
                    for rows, column in (([0, 1, 4, 5, 8, 9, 12, 13], 0), ([2, 3, 6, 7, 10, 11, 14, 15], 1)):
                        rnn.weight_ih_l0[rows, column] = torch.randn(len(rows))
                        rnn.weight_hh_l0[rows, column] = torch.randn(len(rows))
    assert penalty.penalty(model).item() == 0.0


def test_orthogonality_penalty_matches_a_hand_computed_case(data):
    """One nonzero row per subspace in one LSTM: unit 0's input-gate row (1, 2, 0, ...) in
    subspace 1 and unit 2's input-gate row (3, 1, 0, ...) in subspace 2; G_1^T G_2 then has one
    nonzero entry, 1*3 + 2*1 = 5: the penalty is weight * 25."""
    model = build("sluice", data, seed=5, params={"regularizers": [{"name": "subspace_orthogonality",
                                                                    "weight": 2.0}]})
    zero_lstm_weights(model)
    with torch.no_grad():
        weight = model.encoders[1].layers[2].backward_rnn.weight_ih_l0  # task 2, layer 3, backward
        weight[0, :2] = torch.tensor([1.0, 2.0])
        weight[2, :2] = torch.tensor([3.0, 1.0])
    penalties = model.penalties()
    assert list(penalties) == ["subspace_orthogonality"] and penalties["subspace_orthogonality"].item() == 50.0
    only_recurrent = REGULARIZERS.build("subspace_orthogonality", params={"weights": ["recurrent"]})
    assert only_recurrent.penalty(model).item() == 0.0  # the input weights are not its matrices
    # the gradient reaches exactly the two rows that are not orthogonal
    model.zero_grad()
    model.penalties()["subspace_orthogonality"].backward()
    grad = model.encoders[1].layers[2].backward_rnn.weight_ih_l0.grad
    assert grad[0, :2].tolist() == [2 * 2 * 5 * 3.0, 2 * 2 * 5 * 1.0]  # d(w (a.b)^2)/da = 2 w (a.b) b
    assert set(grad.nonzero()[:, 0].tolist()) == {0, 2}


def test_orthogonality_needs_subspaces(data):
    with pytest.raises(ConfigError, match="regularizer 'subspace_orthogonality' needs subspace weights"):
        build("sluice", data, params={"subspaces": 1, "regularizers": ["subspace_orthogonality"]})
    assert build("sluice", data, params={"subspaces": 1}).regularizers == []
    assert [r.name for r in build("sluice", data).regularizers] == ["subspace_orthogonality"]
    with pytest.raises(ValueError, match="needs a sharing method with subspaces"):
        REGULARIZERS.build("subspace_orthogonality").penalty(build("hard", data))
    with pytest.raises(ConfigError, match=r"'methods.regularizers.0.weights' of regularizer"):
        SHARING.validate("sluice", {"regularizers": [{"name": "subspace_orthogonality",
                                                      "weights": ["outputs"]}]}, "methods")


# ------------------------------------------------------------------ layer mixing, groups, saving

def test_layer_mixes_read_what_they_say(data):
    concat = build("sluice", data, params={"layer_mix": "concat", "subspaces": 1})
    assert [h.in_features for h in concat.heads.heads] == [3 * 8, 3 * 8]  # three layers of 2H
    skip = build("sluice", data, seed=6, params={"layer_mix": "skip"}).eval()
    mixture = build("sluice", data, seed=7, params={"layer_mix": "mixture"}).eval()
    mixture.load_state_dict(skip.state_dict(), strict=False)
    with torch.no_grad():
        for beta in mixture.betas:
            beta.fill_(1.0)  # skip connections are the mixture with β = 1
        batch = mixed_batch(data)
        torch.testing.assert_close(mixture(batch), skip(batch), rtol=1e-5, atol=1e-6)
    assert [b.tolist() for b in build("sluice", data).betas] == [pytest.approx([0.05, 0.05, 0.9])] * 2
    with pytest.raises(ConfigError, match=r"'sharing.layer_mix' of sharing 'sluice' must be Literal\['mixture'"):
        build("sluice", data, params={"layer_mix": "sum"})


def test_alpha_init_and_mixing_group(data):
    model = build("sluice", data, params={"mixing_lr_scale": 5.0})
    alpha = model.alphas[0]
    assert alpha.shape == (4, 4) and torch.allclose(alpha.sum(1), torch.ones(4))
    assert torch.allclose(alpha.diagonal(), torch.full((4,), 0.95))
    one = build("sluice", data, params={"subspaces": 1}).alphas[0]
    assert torch.allclose(one, torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    balanced = build("sluice", data, params={"alpha_init": "balanced"}).alphas
    assert torch.allclose(balanced, torch.full_like(balanced, 0.25))
    groups = {g["name"]: g for g in model.param_groups()}
    assert groups["sluice_mixing"]["lr_scale"] == 5.0
    assert [id(p) for p in groups["sluice_mixing"]["params"]] == [id(p) for p in model.method_parameters()]
    state = model.export_state()
    assert {"alphas", "betas.0", "betas.1"} <= set(state)
    # the networks share the embedding: one parameter object, trained by both tasks
    assert model.encoders[0].embedding.weight is model.encoders[1].embedding.weight
    assert model.encoders[0].char_layer.forward_rnn.weight_ih_l0 is model.encoders[1].char_layer.forward_rnn.weight_ih_l0


def test_learned_mixing_is_written_and_printed(data, tmp_path):
    mixing = build("sluice", data).learned_mixing()
    assert [a["after"] for a in mixing["alpha"]] == ["bilstm_1", "bilstm_2", "bilstm_3"]
    assert mixing["alpha"][0]["labels"] == ["tag_a:1", "tag_a:2", "tag_b:1", "tag_b:2"]
    assert mixing["beta"]["tag_b"]["layers"] == ["bilstm_1", "bilstm_2", "bilstm_3"]
    paths = write_mixing(tmp_path, mixing)
    assert json.loads(paths[0].read_text()) == mixing
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = format_mixing(mixing)
    assert "alpha after bilstm_2" in text and "tag_a: bilstm_1 0.050  bilstm_2 0.050  bilstm_3 0.900" in text
