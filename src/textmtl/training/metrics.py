"""Per-task evaluation metrics: accuracy, macro-F1 and, for chunking / NER, span F1.

Which metrics a task gets follows from its kind and its label names: every task has accuracy
and macro-F1; a tagging task whose labels are BIO / BIOES tags (``B-NP``, ``I-NP``, ``O``) also
gets chunk-level ``span_f1`` (with ``span_precision`` and ``span_recall``), computed as the
CoNLL ``conlleval`` script does (via seqeval's default mode).

Predicted ids may be ``-1`` (:data:`NO_PREDICTION`): a token the model never saw, e.g. one an
encoder's maximum input length cut off. Such a token is always wrong:

- accuracy: it never equals the gold id;
- macro-F1: it is a false negative of its gold class, and no class of its own (macro-F1 is
  averaged over the task's labels present in gold or in the real predictions, as
  ``sklearn.metrics.f1_score(average="macro")`` does when every prediction is a label);
- span F1: it becomes ``"O"``, the one tag that is outside every chunk by definition, so it can
  neither complete a gold chunk nor start a predicted one: a gold chunk that reaches into the
  cut-off tokens is a miss. (Any other placeholder string would be read by conlleval as a
  chunk tag of some type and create spurious predicted chunks.)
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from seqeval.metrics import f1_score as span_f1_score
from seqeval.metrics import precision_score as span_precision_score
from seqeval.metrics import recall_score as span_recall_score
from sklearn.metrics import f1_score

#: every metric name a task can be evaluated (and a model selected) on
METRIC_NAMES = ("accuracy", "macro_f1", "span_f1")
#: kept for existing callers that check ``name in METRICS``
METRICS = METRIC_NAMES

#: a predicted id meaning "no prediction for this token"; always counted as wrong
NO_PREDICTION = -1

TaskKind = Literal["classification", "tagging"]
_KINDS = ("classification", "tagging")
_CHUNK_PREFIXES = ("B-", "I-", "E-", "S-")
_OUTSIDE = "O"


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"'kind' must be one of {_KINDS}, got {kind!r}")


def is_span_labelling(label_names: Sequence[str]) -> bool:
    """True when the labels are BIO / BIOES chunk tags (chunking, NER), not e.g. POS tags.

    Args:
        label_names: the task's label names, in id order.
    Returns:
        True when every label is ``"O"`` or starts with ``B-``, ``I-``, ``E-`` or ``S-``, and at
        least one label is not ``"O"``.
    References:
        Tjong Kim Sang & Buchholz (2000), Introduction to the CoNLL-2000 shared task: chunking.
    """
    labels = list(label_names)
    return (any(label != _OUTSIDE for label in labels)
            and all(label == _OUTSIDE or label.startswith(_CHUNK_PREFIXES) for label in labels))


def metrics_for(kind: str, label_names: Sequence[str]) -> tuple[str, ...]:
    """The metrics that apply to a task (a subset of :data:`METRIC_NAMES`).

    Args:
        kind: ``"classification"`` or ``"tagging"``.
        label_names: the task's label names, in id order.
    Returns:
        ``("accuracy", "macro_f1")``, plus ``"span_f1"`` for span-labelling tagging tasks.
    """
    _check_kind(kind)
    if kind == "tagging" and is_span_labelling(label_names):
        return ("accuracy", "macro_f1", "span_f1")
    return ("accuracy", "macro_f1")


def default_metric(kind: str, label_names: Sequence[str]) -> str:
    """The metric a task is reported and selected on by default.

    Args:
        kind: ``"classification"`` or ``"tagging"``.
        label_names: the task's label names, in id order.
    Returns:
        ``"span_f1"`` for span-labelling tagging tasks (chunking, NER), else ``"accuracy"``.
    """
    return "span_f1" if "span_f1" in metrics_for(kind, label_names) else "accuracy"


def _token_metrics(gold: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of flat label ids; ``-1`` predictions are wrong, not a class."""
    if gold.size == 0:
        raise ValueError("cannot compute metrics on an empty split")
    if gold.shape != predicted.shape:
        raise ValueError(f"gold and predicted must have the same shape, got {gold.shape} "
                         f"and {predicted.shape}")
    # the labels present in gold or in real predictions: exactly sklearn's default label set
    # when there is no -1, and -1 stays out of the average (it only costs its gold class recall)
    labels = np.union1d(gold, predicted[predicted != NO_PREDICTION])
    return {
        "accuracy": float((gold == predicted).mean()),
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro",
                                   zero_division=0)),
    }


def classification_metrics(gold: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (over the task's labels present in gold or predictions).

    Args:
        gold, predicted: label ids (flattened tokens for tagging tasks); a predicted ``-1``
            counts as wrong (see the module docstring).
        num_classes: size of the task's label space.
    Returns:
        ``{"accuracy": ..., "macro_f1": ...}`` as fractions in [0, 1].
    """
    return _token_metrics(np.asarray(gold), np.asarray(predicted))


def _label_sequences(sentences: Sequence[Sequence[int]], label_names: Sequence[str],
                     which: str) -> list[list[str]]:
    names = list(label_names)
    out = []
    for i, sentence in enumerate(sentences):
        row = []
        for token_id in sentence:
            token_id = int(token_id)
            if token_id == NO_PREDICTION and which == "predicted":
                row.append(_OUTSIDE)  # outside every chunk: a cut-off token finds no chunk
            elif 0 <= token_id < len(names):
                row.append(names[token_id])
            else:
                raise ValueError(f"{which} label id {token_id} in sentence {i} is outside the "
                                 f"task's {len(names)} labels")
        out.append(row)
    return out


def task_metrics(kind: str, label_names: Sequence[str], gold: Sequence, predicted: Sequence,
                 ) -> dict[str, float]:
    """Every metric of :func:`metrics_for` for one task, as fractions in [0, 1].

    Args:
        kind: ``"classification"`` or ``"tagging"``.
        label_names: the task's label names, in id order.
        gold: classification: 1-D label ids; tagging: one sequence of label ids per sentence.
        predicted: same layout and lengths as ``gold``; ``-1`` means "no prediction" (a token
            an input cut off) and counts as wrong (see the module docstring).
    Returns:
        ``accuracy`` and ``macro_f1`` (over tokens for tagging); for span-labelling tasks also
        ``span_f1``, ``span_precision`` and ``span_recall`` over chunks (conlleval-compatible).
    References:
        Tjong Kim Sang & Buchholz (2000), CoNLL-2000 shared task (the conlleval chunk F1);
        Nakayama (2018), seqeval.
    """
    _check_kind(kind)
    if kind == "classification":
        return _token_metrics(np.asarray(gold).reshape(-1), np.asarray(predicted).reshape(-1))
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} sentences but predicted has {len(predicted)}")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i} has {len(g)} gold labels but {len(p)} predicted")
    flat_gold = np.fromiter((int(t) for s in gold for t in s), dtype=np.int64)
    flat_predicted = np.fromiter((int(t) for s in predicted for t in s), dtype=np.int64)
    results = _token_metrics(flat_gold, flat_predicted)
    if "span_f1" in metrics_for(kind, label_names):
        gold_tags = _label_sequences(gold, label_names, "gold")
        predicted_tags = _label_sequences(predicted, label_names, "predicted")
        # seqeval's default mode (mode=None) is conlleval's: an I- after O starts a chunk;
        # sentences are separate (a chunk never spans two sentences)
        results["span_f1"] = float(span_f1_score(gold_tags, predicted_tags, zero_division=0))
        results["span_precision"] = float(span_precision_score(gold_tags, predicted_tags,
                                                               zero_division=0))
        results["span_recall"] = float(span_recall_score(gold_tags, predicted_tags,
                                                         zero_division=0))
    return results
