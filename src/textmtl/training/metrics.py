"""Per-task evaluation metrics: accuracy and macro-F1."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

METRICS = ("accuracy", "macro_f1")


def classification_metrics(gold: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (over the task's labels present in gold or predictions).

    Args:
        gold, predicted: label ids (flattened tokens for tagging tasks).
        num_classes: size of the task's label space.
    Returns:
        ``{"accuracy": ..., "macro_f1": ...}`` as fractions in [0, 1].
    """
    gold = np.asarray(gold)
    predicted = np.asarray(predicted)
    if gold.size == 0:
        raise ValueError("cannot compute metrics on an empty split")
    return {
        "accuracy": float((gold == predicted).mean()),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
    }
