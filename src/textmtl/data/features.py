"""Featurizers, one per encoder input kind, fitted on the training texts of all tasks."""

from .featurizer_registry import FEATURIZERS

from . import tfidf, text, wordpiece, sentence_vectors  # noqa: E402,F401  (registration side effects)

__all__ = ["FEATURIZERS"]
