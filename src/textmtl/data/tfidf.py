"""TF-IDF features with one vocabulary across all tasks (scikit-learn), kept sparse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from ..errors import ConfigError
from .featurizer_registry import FEATURIZERS
from .inputs import InputSpec, TfidfInput


@dataclass
class SparseRowTable:
    """CSR rows of one split; ``gather`` returns them in the bag form of :class:`TfidfInput`."""

    matrix: sp.csr_matrix

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def gather(self, rows: np.ndarray) -> TfidfInput:
        batch = self.matrix[np.asarray(rows)]
        return TfidfInput(
            indices=torch.from_numpy(batch.indices.astype(np.int64)),
            offsets=torch.from_numpy(batch.indptr[:-1].astype(np.int64)),
            weights=torch.from_numpy(batch.data.astype(np.float32)),
        )


@FEATURIZERS.register("tfidf")
class TfidfFeaturizer:
    """TF-IDF over words (or n-grams), fitted on the training texts of all tasks.

    Args:
        max_features: keep the most frequent terms of the training texts (None: all).
        ngram_max: use word n-grams of 1..ngram_max.
        min_df: drop terms found in fewer training documents.
        sublinear_tf: use 1 + log(tf).
        lowercase: lower-case before tokenising.
    """

    input_kind = "tfidf"

    def __init__(self, *, max_features: int | None = 50000, ngram_max: int = 2, min_df: int = 2,
                 sublinear_tf: bool = True, lowercase: bool = True) -> None:
        if max_features is not None and max_features < 1:
            raise ValueError(f"'max_features' of TfidfFeaturizer must be >= 1, got {max_features}")
        if ngram_max < 1:
            raise ValueError(f"'ngram_max' of TfidfFeaturizer must be >= 1, got {ngram_max}")
        if min_df < 1:
            raise ValueError(f"'min_df' of TfidfFeaturizer must be >= 1, got {min_df}")
        self.settings = {"max_features": max_features, "ngram_max": ngram_max, "min_df": min_df,
                         "sublinear_tf": sublinear_tf, "lowercase": lowercase}
        self.vectorizer = TfidfVectorizer(
            max_features=max_features, ngram_range=(1, ngram_max), min_df=min_df,
            sublinear_tf=sublinear_tf, lowercase=lowercase, dtype=np.float32,
            # keep one-letter tokens and punctuation-free words as scikit-learn's default does
        )

    def fit(self, texts: list) -> "TfidfFeaturizer":
        try:
            self.vectorizer.fit([_as_text(t) for t in texts])
        except ValueError as error:  # e.g. min_df above the number of documents
            raise ConfigError(
                f"'features' leave no TF-IDF terms over {len(texts)} training texts "
                f"(min_df={self.vectorizer.min_df}, ngram_max={self.vectorizer.ngram_range[1]}): {error}"
            ) from None
        return self

    def transform(self, texts: list) -> SparseRowTable:
        return SparseRowTable(self.vectorizer.transform([_as_text(t) for t in texts]).tocsr())

    def spec(self) -> InputSpec:
        return InputSpec(kind="tfidf", size=len(self._require_fitted()))

    def _require_fitted(self) -> dict:
        vocabulary = getattr(self.vectorizer, "vocabulary_", None)
        if vocabulary is None:
            raise RuntimeError("TfidfFeaturizer is not fitted: call fit(train_texts) first")
        return vocabulary

    def state(self) -> dict:
        """Settings and the fitted vectorizer: its ``vocabulary_`` (term -> column) and ``idf_``.

        Returns:
            A JSON-serialisable dict for :meth:`from_state` (floats are written exactly: JSON
            keeps a Python float's shortest round-trip form).
        """
        vocabulary = self._require_fitted()
        idf = self.vectorizer.idf_
        return {"featurizer": "tfidf", "settings": dict(self.settings),
                "vocabulary": {term: int(column) for term, column in vocabulary.items()},
                "idf": [float(x) for x in idf], "idf_dtype": str(idf.dtype)}

    @classmethod
    def from_state(cls, state: dict) -> "TfidfFeaturizer":
        """A fitted featurizer from :meth:`state`: a ``TfidfVectorizer`` with the same settings
        whose ``vocabulary_`` and ``idf_`` are set, so ``transform`` is bit-identical.

        Args:
            state: what :meth:`state` returned (possibly through JSON).

        Returns:
            The featurizer.

        Raises:
            ValueError: the state is another featurizer's.
        """
        if state.get("featurizer") != "tfidf":
            raise ValueError("TfidfFeaturizer.from_state needs the state of featurizer 'tfidf', "
                             f"got {state.get('featurizer')!r}")
        featurizer = cls(**state["settings"])
        featurizer.vectorizer.vocabulary_ = {term: int(column)
                                            for term, column in state["vocabulary"].items()}
        # the setter builds the TfidfTransformer (norm, smoothing, sublinear tf from the settings)
        featurizer.vectorizer.idf_ = np.asarray(state["idf"], dtype=state["idf_dtype"])
        return featurizer


def _as_text(text: str | list[str]) -> str:
    # tagging tasks store token lists; TF-IDF reads them as one space-joined string
    return text if isinstance(text, str) else " ".join(text)
