"""Properties of the sequence encoders (BiLSTM, TextCNN, HAN) and their shared layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textmtl.data.inputs import InputSpec, SentenceInput, TokenInput
from textmtl.encoders import ENCODERS
from textmtl.encoders.layers import BiRNNLayer, reverse_padded
from textmtl.errors import ConfigError

VOCAB = 30
TOKEN_SPEC = InputSpec(kind="tokens", size=VOCAB)
SENTENCE_SPEC = InputSpec(kind="sentences", size=VOCAB)

# small but covering every option: poolings, stacked layers, short sequences vs wide filters
TOKEN_CONFIGS = [
    ("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "pooling": "max"}),
    ("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "pooling": "mean", "num_layers": 2}),
    ("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "pooling": "last"}),
    ("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "pooling": "attention"}),
    ("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "pooling": "none", "num_layers": 2}),
    ("textcnn", {"embedding_dim": 8, "filter_widths": [2, 5], "num_filters": 4}),
    ("textcnn", {"embedding_dim": 8, "filter_widths": [1, 3, 7], "num_filters": 3}),
]
SENTENCE_CONFIGS = [
    ("han", {"embedding_dim": 8, "word_hidden_dim": 5, "sentence_hidden_dim": 4,
             "word_attention_dim": 6, "sentence_attention_dim": 6}),
    ("han", {"embedding_dim": 8, "word_hidden_dim": 5, "sentence_hidden_dim": 4,
             "word_attention_dim": 6, "sentence_attention_dim": 6, "cell": "lstm",
             "num_word_layers": 2, "num_sentence_layers": 2}),
]
ALL_CONFIGS = TOKEN_CONFIGS + SENTENCE_CONFIGS
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(ALL_CONFIGS)]


def _build(name: str, params: dict) -> nn.Module:
    torch.manual_seed(0)
    spec = SENTENCE_SPEC if name == "han" else TOKEN_SPEC
    return ENCODERS.build(name, spec, params=dict(params)).eval()


def _token_documents(seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = [1, 4, 9, 2, 6]  # includes sequences shorter than the widest filter (7)
    return [torch.randint(2, VOCAB, (n,), generator=generator) for n in lengths]


def _sentence_documents(seed: int = 1) -> list[list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [[3], [2, 5, 1], [6, 2], [1, 1, 4, 2]]
    return [[torch.randint(2, VOCAB, (n,), generator=generator) for n in doc] for doc in shapes]


def token_batch(documents: list[torch.Tensor], extra: int = 0) -> TokenInput:
    """Right-padded batch, padded ``extra`` positions beyond the longest document."""
    width = max(len(d) for d in documents) + extra
    ids = torch.zeros(len(documents), width, dtype=torch.long)
    for b, doc in enumerate(documents):
        ids[b, : len(doc)] = doc
    return TokenInput(ids, torch.tensor([len(d) for d in documents]))


def sentence_batch(documents: list[list[torch.Tensor]], extra_sentences: int = 0,
                   extra_tokens: int = 0) -> SentenceInput:
    sentences = max(len(d) for d in documents) + extra_sentences
    width = max(len(s) for d in documents for s in d) + extra_tokens
    ids = torch.zeros(len(documents), sentences, width, dtype=torch.long)
    lengths = torch.zeros(len(documents), sentences, dtype=torch.long)
    for b, doc in enumerate(documents):
        for s, sentence in enumerate(doc):
            ids[b, s, : len(sentence)] = sentence
            lengths[b, s] = len(sentence)
    return SentenceInput(ids, lengths, torch.tensor([len(d) for d in documents]))


def _batches(name: str):
    """(documents, batch builder with padding options) for the encoder's input kind."""
    if name == "han":
        return _sentence_documents(), lambda docs, extra=0: sentence_batch(docs, extra, extra)
    return _token_documents(), lambda docs, extra=0: token_batch(docs, extra)


def _trim(output: torch.Tensor, length: int, token_level: bool) -> torch.Tensor:
    return output[:length] if token_level else output


@pytest.mark.parametrize("name,params", ALL_CONFIGS, ids=IDS)
def test_padding_and_batching_do_not_change_outputs(name, params):
    encoder = _build(name, params)
    documents, batch = _batches(name)
    with torch.no_grad():
        together = encoder(batch(documents))
        padded = encoder(batch(documents, extra=3))
        for b, doc in enumerate(documents):
            alone = encoder(batch([doc]))[0]
            length = len(doc)
            torch.testing.assert_close(_trim(together[b], length, encoder.token_level), alone,
                                       atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(_trim(padded[b], length, encoder.token_level), alone,
                                       atol=1e-5, rtol=1e-5)
    if encoder.token_level:  # padded positions of token vectors are zero
        assert torch.all(padded[0, len(documents[0]):] == 0)
    assert together.shape[-1] == encoder.output_dim


@pytest.mark.parametrize("name,params", ALL_CONFIGS, ids=IDS)
def test_running_stages_by_hand_equals_forward(name, params):
    encoder = _build(name, params)
    documents, batch = _batches(name)
    inputs = batch(documents)
    hidden = None
    with torch.no_grad():
        for index in range(encoder.num_stages):
            hidden = encoder.run_stage(index, hidden, inputs)
            assert hidden.shape[0] == len(documents)  # batch first: mixable between columns
        torch.testing.assert_close(hidden, encoder(inputs))
    with pytest.raises(IndexError):
        encoder.run_stage(encoder.num_stages, hidden, inputs)


@pytest.mark.parametrize("name,params", ALL_CONFIGS, ids=IDS)
def test_gradients_reach_every_parameter(name, params):
    encoder = _build(name, params).train()
    documents, batch = _batches(name)
    encoder(batch(documents)).pow(2).sum().backward()
    for parameter_name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


def test_stage_shapes():
    bilstm = _build("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "num_layers": 2})
    inputs = token_batch(_token_documents())
    shapes, hidden = [], None
    for index in range(bilstm.num_stages):
        hidden = bilstm.run_stage(index, hidden, inputs)
        shapes.append(tuple(hidden.shape))
    assert shapes == [(5, 9, 8), (5, 9, 12), (5, 9, 12), (5, 12)]

    han = _build("han", SENTENCE_CONFIGS[0][1])
    inputs = sentence_batch(_sentence_documents())
    shapes, hidden = [], None
    for index in range(han.num_stages):
        hidden = han.run_stage(index, hidden, inputs)
        shapes.append(tuple(hidden.shape))
    assert shapes == [(4, 4, 6, 8), (4, 4, 6, 10), (4, 4, 10), (4, 4, 8), (4, 8)]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_layers_match_packed_reference(cell):
    """Two stacked BiRNNLayers equal a 2-layer bidirectional cuDNN-style RNN run on packed
    sequences, with copied weights: the backward direction really reads each sequence reversed
    from its own last token."""
    torch.manual_seed(0)
    input_dim, hidden_dim = 5, 4
    reference = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](
        input_dim, hidden_dim, num_layers=2, bidirectional=True, batch_first=True)
    layers = [BiRNNLayer(input_dim, hidden_dim, cell), BiRNNLayer(2 * hidden_dim, hidden_dim, cell)]
    with torch.no_grad():
        for index, layer in enumerate(layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer.forward_rnn, f"{kind}_l0").copy_(
                    getattr(reference, f"{kind}_l{index}"))
                getattr(layer.backward_rnn, f"{kind}_l0").copy_(
                    getattr(reference, f"{kind}_l{index}_reverse"))
    lengths = torch.tensor([3, 7, 1, 5])
    x = torch.randn(4, 7, input_dim)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True)  # (B, T, 2H)
    with torch.no_grad():
        ours = layers[1](layers[0](x, lengths), lengths)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_last_pooling_is_final_states_of_packed_reference():
    encoder = _build("bilstm", {"embedding_dim": 8, "hidden_dim": 6, "pooling": "last"})
    reference = nn.LSTM(8, 6, bidirectional=True, batch_first=True)
    layer = encoder.layers[0]
    with torch.no_grad():
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(reference, f"{kind}_l0").copy_(getattr(layer.forward_rnn, f"{kind}_l0"))
            getattr(reference, f"{kind}_l0_reverse").copy_(
                getattr(layer.backward_rnn, f"{kind}_l0"))
        inputs = token_batch(_token_documents())
        embedded = encoder.embedding(inputs.token_ids)
        packed = pack_padded_sequence(embedded, inputs.lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (final, _) = reference(packed)  # (2, B, H)
        expected = torch.cat([final[0], final[1]], dim=1)
        torch.testing.assert_close(encoder(inputs), expected, atol=1e-5, rtol=1e-5)


def test_reverse_padded_reverses_only_real_positions():
    x = torch.arange(10.0).reshape(2, 5, 1)
    out = reverse_padded(x, torch.tensor([3, 5]))
    assert out[:, :, 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    torch.testing.assert_close(reverse_padded(out, torch.tensor([3, 5])), x)


def test_textcnn_equals_unpadded_reference():
    """Each document alone, embedded without padding (zero-extended only when shorter than a
    filter), convolved and max-pooled over all its windows: the batched encoder must agree."""
    encoder = _build("textcnn", {"embedding_dim": 8, "filter_widths": [2, 5], "num_filters": 4})
    inputs = token_batch(_token_documents(), extra=2)
    with torch.no_grad():
        batched = encoder(inputs)
        for b, doc in enumerate(_token_documents()):
            x = encoder.embedding(doc).T[None]  # (1, E, n)
            pooled = []
            for width, convolution in zip(encoder.filter_widths, encoder.convolutions):
                padded = nn.functional.pad(x, (0, max(0, width - x.shape[2])))
                pooled.append(torch.relu(convolution(padded)).max(dim=2).values[0])
            torch.testing.assert_close(batched[b], torch.cat(pooled), atol=1e-5, rtol=1e-5)


def test_han_ignores_padded_sentence_contents():
    """Garbage ids in padded sentence slots (length 0) must not matter."""
    encoder = _build("han", SENTENCE_CONFIGS[0][1])
    inputs = sentence_batch(_sentence_documents(), extra_sentences=2, extra_tokens=1)
    noisy = SentenceInput(inputs.token_ids.clone(), inputs.sentence_lengths, inputs.num_sentences)
    noisy.token_ids[inputs.sentence_lengths == 0] = 7
    with torch.no_grad():
        torch.testing.assert_close(encoder(noisy), encoder(inputs))


def test_pretrained_embeddings_are_used_and_can_be_frozen():
    pretrained = torch.randn(VOCAB, 7)
    spec = InputSpec(kind="tokens", size=VOCAB, pretrained=pretrained)
    for name in ("bilstm", "textcnn"):
        encoder = ENCODERS.build(name, spec, params={"freeze_embeddings": True})
        assert encoder.embedding.embedding_dim == 7  # the vectors' width wins over embedding_dim
        torch.testing.assert_close(encoder.embedding.weight[1:], pretrained[1:])
        assert torch.all(encoder.embedding.weight[0] == 0)  # padding row
        assert not encoder.embedding.weight.requires_grad
    han = ENCODERS.build("han", InputSpec(kind="sentences", size=VOCAB, pretrained=pretrained),
                         params={})
    assert han.embedding.weight.requires_grad
    with pytest.raises(ConfigError, match="rows"):
        ENCODERS.build("bilstm", InputSpec(kind="tokens", size=VOCAB + 1, pretrained=pretrained))


@pytest.mark.parametrize("name,params,message", [
    ("bilstm", {"hidden_dim": -1}, "'hidden_dim' of BiLSTM must be > 0, got -1"),
    ("bilstm", {"num_layers": 0}, "'num_layers' of BiLSTM must be > 0, got 0"),
    ("bilstm", {"dropout": 1.0}, "'dropout' of BiLSTM must be in"),
    ("textcnn", {"filter_widths": []}, "'filter_widths' of TextCNN"),
    ("textcnn", {"num_filters": 0}, "'num_filters' of TextCNN must be > 0"),
    ("han", {"word_hidden_dim": 0}, "'word_hidden_dim' of HAN must be > 0, got 0"),
])
def test_invalid_config_names_the_parameter(name, params, message):
    spec = SENTENCE_SPEC if name == "han" else TOKEN_SPEC
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        ENCODERS.build(name, spec, params=params)


def test_wrong_input_kind_and_unknown_pooling_fail():
    with pytest.raises(ConfigError):
        ENCODERS.build("bilstm", TOKEN_SPEC, params={"pooling": "sum"})
    with pytest.raises(ValueError, match="reads 'sentences'"):
        ENCODERS.get("han")(TOKEN_SPEC)


def test_token_level_flag():
    assert _build("bilstm", {"pooling": "none"}).token_level
    assert not _build("bilstm", {"pooling": "max"}).token_level
    assert not _build("textcnn", {}).token_level
