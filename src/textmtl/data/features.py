"""Featurizers, one per encoder input kind, fitted on the training texts of all tasks."""

from ..registry import Registry

FEATURIZERS: Registry = Registry("featurizer")

from . import tfidf, text, wordpiece  # noqa: E402,F401  (registration side effects)
