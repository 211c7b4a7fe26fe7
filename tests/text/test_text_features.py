"""Tokenizer, sentence splitter, Vocabulary, the tokens/sentences featurizers, bucketing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.data.features import FEATURIZERS
from textmtl.data.inputs import SentenceInput, TokenInput
from textmtl.data.text import (OOV_ID, PADDING_ID, SentenceFeaturizer, TokenFeaturizer,
                               Vocabulary, length_bucketed_order, split_sentences, tokenize)
from textmtl.errors import ConfigError

TEXTS = [
    "The movie was great . I loved it !",
    "it 's bad , don't buy",
    "",
    "Great great great ... really ?! yes",
]


def test_tokenize_keeps_ptb_tokens_and_lowercases():
    assert tokenize("It 's a well-made film , isn't it ?") == [
        "it", "'s", "a", "well-made", "film", ",", "isn't", "it", "?"]
    assert tokenize("It's OK...", lowercase=False) == ["It's", "OK", "..."]
    # token lists (tagging) are used as given, one id per tag
    assert tokenize(["Rockwell", "said", "U.S.", ""]) == ["rockwell", "said", "u.s.", ""]


def test_split_sentences():
    tokens = tokenize("one two . three ?! four")
    assert split_sentences(tokens) == [["one", "two", "."], ["three", "?!"], ["four"]]
    assert split_sentences([]) == []


def test_vocabulary_limits_padding_and_oov():
    documents = [["a", "b", "a", "c"], ["a", "b", "d"]]
    vocabulary = Vocabulary.build(documents)
    assert vocabulary.tokens[:2] == ["<pad>", "<unk>"]
    assert vocabulary.tokens[2:] == ["a", "b", "c", "d"]  # by count, ties alphabetical
    assert len(Vocabulary.build(documents, max_size=4)) == 4  # specials count in max_size
    assert Vocabulary.build(documents, max_size=4).tokens[2:] == ["a", "b"]
    assert Vocabulary.build(documents, min_freq=2).tokens[2:] == ["a", "b"]
    encoded = Vocabulary.build(documents, min_freq=2).encode(["a", "zzz", "c", "b"])
    assert encoded.tolist() == [2, OOV_ID, OOV_ID, 3]
    assert encoded.dtype == np.int64
    with pytest.raises(ValueError, match="'min_freq' of Vocabulary"):
        Vocabulary.build(documents, min_freq=0)


def test_vocabulary_round_trip(tmp_path):
    vocabulary = Vocabulary.build([["ünïcode", "b", "b"]])
    path = tmp_path / "vocab.json"
    vocabulary.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.tokens == vocabulary.tokens
    words = ["b", "ünïcode", "x"]
    assert loaded.encode(words).tolist() == vocabulary.encode(words).tolist()
    assert Vocabulary.from_dict(vocabulary.to_dict()).tokens == vocabulary.tokens


def test_token_featurizer_gather_pads_to_longest_and_keeps_empty_texts():
    featurizer = TokenFeaturizer(max_length=6).fit(TEXTS)
    table = featurizer.transform(TEXTS + ["unseen words only"])
    assert len(table) == 5
    assert table.lengths.tolist() == [6, 6, 1, 6, 3]  # truncated to max_length; empty -> 1
    batch = table.gather(np.array([2, 4]))
    assert isinstance(batch, TokenInput)
    assert batch.token_ids.shape == (2, 3) and batch.token_ids.dtype == torch.long
    assert batch.lengths.tolist() == [1, 3]
    assert batch.token_ids[0].tolist() == [OOV_ID, PADDING_ID, PADDING_ID]
    assert batch.token_ids[1].tolist() == [OOV_ID] * 3
    spec = featurizer.spec()
    assert spec.kind == "tokens" and spec.size == len(featurizer.vocabulary)
    assert spec.padding_id == 0 and spec.pretrained is None
    # ids equal the vocabulary's encoding of the tokenised text
    expected = featurizer.vocabulary.encode(tokenize(TEXTS[1])[:6]).tolist()
    assert table.gather(np.array([1])).token_ids[0].tolist() == expected


def test_token_featurizer_accepts_token_lists_one_id_per_token():
    sentences = [["Confidence", "in", "the", "pound"], ["is", "widely", "expected", "."], []]
    featurizer = TokenFeaturizer(lowercase=False).fit(sentences)
    batch = featurizer.transform(sentences).gather(np.arange(3))
    assert batch.lengths.tolist() == [4, 4, 1]
    assert featurizer.vocabulary.decode(batch.token_ids[0]) == sentences[0]


def test_sentence_featurizer_limits_and_shapes():
    featurizer = SentenceFeaturizer(max_sentences=2, max_sentence_length=3).fit(TEXTS)
    table = featurizer.transform(TEXTS)
    batch = table.gather(np.array([0, 2, 3]))
    assert isinstance(batch, SentenceInput)
    assert batch.token_ids.shape == (3, 2, 3)
    assert batch.num_sentences.tolist() == [2, 1, 2]
    assert batch.sentence_lengths.tolist() == [[3, 3], [1, 0], [3, 2]]  # 'really ?!'
    assert batch.token_ids[1, 0, 0].item() == OOV_ID  # empty text: one sentence, one OOV token
    assert torch.all(batch.token_ids[1, 1] == PADDING_ID)
    assert featurizer.spec().kind == "sentences"
    assert table.lengths.tolist() == [6, 3, 1, 5]


def test_featurizers_are_registered_with_validated_configs():
    assert isinstance(FEATURIZERS.build("tokens", params={"max_vocab": 100}), TokenFeaturizer)
    assert isinstance(FEATURIZERS.build("sentences", params={"max_sentences": 4}),
                      SentenceFeaturizer)
    with pytest.raises(ConfigError, match="max_length"):
        FEATURIZERS.build("tokens", params={"max_length": 0})
    with pytest.raises(ConfigError, match="unknown key"):
        FEATURIZERS.build("tokens", params={"max_len": 10})
    with pytest.raises(RuntimeError, match="not fitted"):
        TokenFeaturizer().transform(TEXTS)


def test_vocabulary_is_shared_across_tasks():
    task_a, task_b = ["alpha beta"], ["gamma beta"]
    featurizer = TokenFeaturizer().fit(task_a + task_b)
    assert {"alpha", "beta", "gamma"} <= set(featurizer.vocabulary.tokens)


def test_length_bucketed_order_is_a_permutation_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1000)
    order = length_bucketed_order(lengths, batch_size=32, rng=np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(1000))

    def padding(permutation):
        blocks = [lengths[permutation[i:i + 32]] for i in range(0, len(permutation), 32)]
        return sum(int(b.max() * len(b) - b.sum()) for b in blocks)

    assert padding(order) < 0.1 * padding(rng.permutation(1000))
    # blocks come in random order (not sorted overall), and the order changes with the rng
    other = length_bucketed_order(lengths, batch_size=32, rng=np.random.default_rng(2))
    assert not np.array_equal(order, other)
    assert not np.all(np.diff(lengths[order]) >= 0)
    assert length_bucketed_order(np.array([], dtype=int), 4, rng).tolist() == []
    with pytest.raises(ValueError, match="'batch_size'"):
        length_bucketed_order(lengths, 0, rng)
