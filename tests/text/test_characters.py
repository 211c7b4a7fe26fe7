"""Character features: the tokens featurizer's character ids and the BiLSTM's character bi-LSTM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.features import FEATURIZERS  # noqa: F401  (first: text <-> features cycle)
from textmtl.data.batching import concatenate_inputs
from textmtl.data.inputs import InputSpec, TokenInput
from textmtl.data.text import OOV_ID, PADDING_ID, TokenFeaturizer, tokenize
from textmtl.encoders import ENCODERS
from textmtl.encoders.bilstm import BiLSTM
from textmtl.errors import ConfigError

TRAIN = ["The cat sat .", "a dog , extraordinarily big !", "cats and dogs"]
BILSTM = {"embedding_dim": 6, "hidden_dim": 5, "char_dim": 4, "char_hidden_dim": 3}


def _fitted(**params) -> TokenFeaturizer:
    return TokenFeaturizer(characters=True, **params).fit(TRAIN)


def _words(featurizer: TokenFeaturizer, char_ids: torch.Tensor) -> list[str]:
    """Decode (T, W) character ids back to words (padding dropped, OOV as '?')."""
    tokens = featurizer.char_vocabulary.tokens
    return ["".join("?" if c == OOV_ID else tokens[c] for c in row if c != PADDING_ID)
            for row in char_ids.tolist()]


def test_character_ids_round_trip():
    featurizer = _fitted(max_word_length=6)
    vocabulary = featurizer.char_vocabulary.tokens
    assert vocabulary[:2] == ["<pad>", "<unk>"]
    # every character of the training tokens as cut to 6 ("extraordinarily" -> "extrao")
    expected = {c for text in TRAIN for token in tokenize(text) for c in token[:6]}
    assert set(vocabulary[2:]) == expected and len(vocabulary) == len(expected) + 2
    assert "y" not in vocabulary
    assert featurizer.spec().char_vocab_size == len(vocabulary)
    table = featurizer.transform(["the dogs sat", "extraordinarily", "", "zebra !"])
    batch = table.gather(np.arange(4))
    assert batch.char_ids.dtype == torch.int64
    assert batch.char_ids.shape == (4, 3, 6)  # longest word after truncation to 6
    assert _words(featurizer, batch.char_ids[0]) == ["the", "dogs", "sat"]
    assert _words(featurizer, batch.char_ids[1])[0] == "extrao"  # cut to max_word_length
    assert _words(featurizer, batch.char_ids[2])[0] == "?"  # empty text: one OOV char
    assert _words(featurizer, batch.char_ids[3]) == ["?ebra", "!", ""]  # unseen "z": OOV
    # zero on padded token positions, and within words past their end
    assert torch.all(batch.char_ids[0, :, 4:] == 0)
    assert torch.all(batch.char_ids[1, 1:] == 0)
    # a row gathers the same alone or with others (up to padding)
    alone = table.gather(np.array([0])).char_ids[0]
    assert torch.equal(batch.char_ids[0, :, : alone.shape[1]], alone)


def test_characters_off_keeps_the_table_and_inputs():
    plain = TokenFeaturizer().fit(TRAIN)
    table = plain.transform(TRAIN)
    assert table.char_ids is None and table.char_offsets is None
    assert table.gather(np.arange(3)).char_ids is None
    assert plain.spec().char_vocab_size == 0
    with_chars = _fitted().transform(TRAIN)
    np.testing.assert_array_equal(with_chars.ids, table.ids)  # word ids do not change


def test_select_concatenate_and_to_keep_character_ids():
    featurizer = _fitted()
    batch = featurizer.transform(TRAIN).gather(np.arange(3))
    sub = batch.select(torch.tensor([2, 0]))
    assert sub.char_ids.shape[:2] == sub.token_ids.shape
    assert _words(featurizer, sub.char_ids[0]) == ["cats", "and", "dogs", ""]  # padded to 4
    assert sub.char_ids.shape[2] == 4  # trimmed to the longest selected word
    joined = concatenate_inputs([sub, batch.select(torch.tensor([1]))])
    assert torch.equal(joined.char_ids[2], batch.char_ids[1])  # the longest row: same shape
    assert batch.to("cpu").char_ids is not None
    assert TokenInput(batch.token_ids, batch.lengths).to("cpu").char_ids is None


def _build(spec: InputSpec, **params) -> torch.nn.Module:
    torch.manual_seed(0)
    return ENCODERS.build("bilstm", spec, params={**BILSTM, **params}).eval()


@pytest.mark.parametrize("pooling", ["max", "none"])
def test_bilstm_with_characters_is_padding_invariant(pooling):
    featurizer = _fitted()
    encoder = _build(featurizer.spec(), pooling=pooling)
    info = encoder.stage_info()[0]
    assert info.width == BILSTM["embedding_dim"] + 2 * BILSTM["char_hidden_dim"]
    # row 0 has short words and 4 tokens; row 1 has more tokens and a much longer word
    table = featurizer.transform(["the cat sat .", "a dog , extraordinarily big ! cats and dogs"])
    with torch.no_grad():
        together = encoder(table.gather(np.array([0, 1])))
        alone = encoder(table.gather(np.array([0])))
        stage0 = encoder.run_stage(0, None, table.gather(np.array([0, 1])))  # (B, T, E + 2C)
    assert stage0.shape[2] == info.width
    assert torch.all(stage0[0, 4:] == 0)  # padded positions stay zero
    if pooling == "none":
        torch.testing.assert_close(together[0, :4], alone[0], atol=1e-6, rtol=1e-5)
    else:
        torch.testing.assert_close(together[0], alone[0], atol=1e-6, rtol=1e-5)


def test_gradient_reaches_the_character_features():
    featurizer = _fitted()
    encoder = _build(featurizer.spec()).train()
    encoder(featurizer.transform(TRAIN).gather(np.arange(3))).pow(2).sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert encoder.char_embedding.weight.grad[PADDING_ID].abs().sum() == 0  # padding row fixed
    # the character parameters belong to stage 0
    stage0 = {id(p) for p in encoder.stage_parameters(0)}
    assert {id(p) for p in encoder.char_embedding.parameters()} <= stage0
    assert {id(p) for p in encoder.char_layer.parameters()} <= stage0


def test_char_dim_needs_character_ids():
    spec = TokenFeaturizer().fit(TRAIN).spec()
    with pytest.raises(ValueError, match="'char_dim' of BiLSTM needs character ids: "
                                         "set features.characters: true"):
        BiLSTM(spec, **BILSTM)
    with pytest.raises(ValueError, match="'char_dim' of BiLSTM must be >= 0"):
        BiLSTM(spec, char_dim=-1)
    with pytest.raises(ConfigError, match="features.characters: true"):  # through the config
        ENCODERS.build("bilstm", spec, params=BILSTM)
    # a batch without character ids is refused by an encoder that reads them
    encoder = _build(_fitted().spec())
    with pytest.raises(ValueError, match="features.characters"):
        encoder(TokenFeaturizer().fit(TRAIN).transform(TRAIN).gather(np.arange(3)))


def test_characters_off_builds_the_same_bilstm():
    """char_dim 0 (the default) creates exactly the modules (and draws exactly the random
    numbers) of a BiLSTM without character features."""
    featurizer = _fitted()
    torch.manual_seed(0)
    plain = ENCODERS.build("bilstm", TokenFeaturizer().fit(TRAIN).spec(),
                           params={"embedding_dim": 6, "hidden_dim": 5})
    torch.manual_seed(0)
    ignoring = ENCODERS.build("bilstm", featurizer.spec(),
                              params={"embedding_dim": 6, "hidden_dim": 5})
    assert ignoring.char_embedding is None
    assert list(plain.state_dict()) == list(ignoring.state_dict())
    for a, b in zip(plain.state_dict().values(), ignoring.state_dict().values()):
        assert torch.equal(a, b)

def test_repeated_words_are_encoded_once_with_the_same_features_and_gradients():
    """Each distinct word of a batch goes through the character bi-LSTM once: its features
    equal those of the word encoded on its own, and the character parameters' gradient equals
    the sum over all occurrences (what encoding every occurrence separately gives)."""
    featurizer = _fitted()
    encoder = _build(featurizer.spec()).train()
    texts = ["the cat sat .", "the dog sat . the cat", "cat"]
    inputs = featurizer.transform(texts).gather(np.arange(3))
    mask = inputs.mask()
    calls = []
    hook = encoder.char_layer.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    features = encoder._character_features(inputs, mask)  # (B, T, 2C)
    hook.remove()
    assert calls == [len({w for t in texts for w in t.split()})]  # 5 distinct words, not 11 tokens
    weights = torch.randn(features.shape)
    (features * weights).sum().backward()
    deduped = {n: p.grad.clone() for n, p in encoder.char_layer.named_parameters()}
    encoder.zero_grad()
    # reference: every occurrence encoded as a batch of its own word alone
    total = 0.0
    for b, text in enumerate(texts):
        for t, word in enumerate(text.split()):
            single = featurizer.transform([word]).gather(np.array([0]))
            alone = encoder._character_features(single, single.mask())[0, 0]  # (2C,)
            torch.testing.assert_close(features[b, t], alone, atol=1e-6, rtol=1e-5)
            total = total + (alone * weights[b, t]).sum()
    total.backward()
    for name, parameter in encoder.char_layer.named_parameters():
        torch.testing.assert_close(deduped[name], parameter.grad, atol=1e-5, rtol=1e-4)
    assert torch.all(features[2, 1:] == 0)  # padding stays zero
