"""Per-task metrics: conlleval chunk F1 by hand, -1 (cut-off) predictions, metric choice."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from textmtl.training.metrics import (METRIC_NAMES, METRICS, classification_metrics,
                                      default_metric, is_span_labelling, metrics_for,
                                      task_metrics)

# CoNLL-2000 chunk tags (a subset) and Penn Treebank POS tags
CHUNK_LABELS = ("O", "B-NP", "I-NP", "B-VP", "I-VP", "B-PP", "I-PP")
POS_LABELS = ("NN", "NNS", "VB", "VBD", "DT", "IN", "JJ", ".", ",")
ID = {name: i for i, name in enumerate(CHUNK_LABELS)}


def ids(*tags: str) -> list[int]:
    return [ID[t] for t in tags]


def chunk_metrics(gold: list[list[str]], predicted: list[list[int]]) -> dict[str, float]:
    return task_metrics("tagging", CHUNK_LABELS, [ids(*s) for s in gold], predicted)


def test_metric_names_keep_old_callers_working():
    assert METRICS == METRIC_NAMES == ("accuracy", "macro_f1", "span_f1")
    assert "accuracy" in METRICS and "macro_f1" in METRICS


def test_is_span_labelling_on_chunk_and_pos_tags():
    assert is_span_labelling(CHUNK_LABELS)
    assert is_span_labelling(("B-PER", "I-PER", "B-LOC", "I-LOC"))  # no "O" is fine
    assert is_span_labelling(("O", "S-LOC", "B-LOC", "I-LOC", "E-LOC"))  # BIOES
    assert not is_span_labelling(POS_LABELS)
    assert not is_span_labelling(("O",))  # only "O": no chunk can exist
    assert not is_span_labelling(())
    assert not is_span_labelling(("O", "B-NP", "NN"))  # one non-chunk tag: not BIO


def test_metrics_for_and_default_metric():
    assert metrics_for("classification", ("neg", "pos")) == ("accuracy", "macro_f1")
    assert metrics_for("classification", CHUNK_LABELS) == ("accuracy", "macro_f1")
    assert metrics_for("tagging", POS_LABELS) == ("accuracy", "macro_f1")
    assert metrics_for("tagging", CHUNK_LABELS) == ("accuracy", "macro_f1", "span_f1")
    assert default_metric("tagging", CHUNK_LABELS) == "span_f1"
    assert default_metric("tagging", POS_LABELS) == "accuracy"
    assert default_metric("classification", ("neg", "pos")) == "accuracy"
    with pytest.raises(ValueError, match="'kind' must be one of"):
        metrics_for("regression", ("a",))


def test_i_after_o_starts_a_chunk_as_in_conlleval():
    # gold chunks: NP(0-1), VP(3).  predicted I-VP after O: conlleval opens a VP chunk at 3,
    # so predicted chunks are NP(0-1), VP(3) too: P = R = F1 = 1.  Tokens: 3 of 4 right.
    m = chunk_metrics([["B-NP", "I-NP", "O", "B-VP"]], [ids("B-NP", "I-NP", "O", "I-VP")])
    assert m["span_f1"] == m["span_precision"] == m["span_recall"] == 1.0
    assert m["accuracy"] == pytest.approx(3 / 4)


def test_chunk_boundary_error():
    # gold:      NP(0-1) VP(2) NP(3-4)              -> 3 chunks
    # predicted: NP(0) NP(1) VP(2) NP(3-4)          -> 4 chunks, 2 correct (VP(2), NP(3-4))
    # P = 2/4, R = 2/3, F1 = 2*2 / (3+4) = 4/7
    m = chunk_metrics([["B-NP", "I-NP", "B-VP", "B-NP", "I-NP", "O"]],
                      [ids("B-NP", "B-NP", "B-VP", "B-NP", "I-NP", "O")])
    assert m["span_precision"] == pytest.approx(1 / 2)
    assert m["span_recall"] == pytest.approx(2 / 3)
    assert m["span_f1"] == pytest.approx(4 / 7)
    assert m["accuracy"] == pytest.approx(5 / 6)


def test_chunk_type_error():
    # gold NP(0-1) PP(3); predicted VP(0-1) PP(3): right span, wrong type is a miss.
    # 1 of 2 predicted correct, 1 of 2 gold found: P = R = F1 = 1/2
    m = chunk_metrics([["B-NP", "I-NP", "O", "B-PP"]], [ids("B-VP", "I-VP", "O", "B-PP")])
    assert m["span_precision"] == m["span_recall"] == m["span_f1"] == pytest.approx(1 / 2)
    # a type change inside a chunk splits it: B-NP I-VP is NP(0) VP(1), neither is gold NP(0-1)
    m = chunk_metrics([["B-NP", "I-NP"]], [ids("B-NP", "I-VP")])
    assert m["span_f1"] == 0.0


def test_chunks_do_not_span_sentences():
    # gold sentence 2 opens with I-NP: a new chunk, so gold is NP(s1:0-1) NP(s2:0). The
    # prediction B-NP I-NP / B-NP has the same two chunks: F1 = 1. (Were the sentences run
    # together, gold would be one NP(0-2) and the prediction NP(0-1) NP(2): F1 = 0.)
    m = chunk_metrics([["B-NP", "I-NP"], ["I-NP"]], [ids("B-NP", "I-NP"), ids("B-NP")])
    assert m["span_f1"] == 1.0
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_cut_off_predictions_are_wrong_everywhere():
    # the last token of sentence 1 was cut off (-1). Gold chunks: NP(0-1) VP(3) NP(4) = 3.
    # -1 reads as "O": predicted chunks NP(0-1) VP(3) = 2, both correct.
    # P = 2/2, R = 2/3, F1 = 2*2/(3+2) = 4/5.  Tokens: 4 of 5 right.
    gold = [["B-NP", "I-NP", "O", "B-VP", "B-NP"]]
    m = chunk_metrics(gold, [ids("B-NP", "I-NP", "O", "B-VP") + [-1]])
    assert m["span_precision"] == 1.0
    assert m["span_recall"] == pytest.approx(2 / 3)
    assert m["span_f1"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(4 / 5)
    # a cut inside a chunk: predicted NP(0-1) is not gold NP(0-2), and the gold "O" at the cut
    # does not make the -1 right for accuracy either
    m = chunk_metrics([["B-NP", "I-NP", "I-NP", "O"]], [ids("B-NP", "I-NP") + [-1, -1]])
    assert m["span_f1"] == 0.0
    assert m["accuracy"] == pytest.approx(2 / 4)


def test_cut_off_predictions_in_macro_f1_are_misses_not_a_class():
    # class 0: TP 1, FN 1 (the -1), FP 0 -> P 1, R 1/2, F1 2/3;  class 1: F1 1.
    # macro over the real labels {0, 1}: (2/3 + 1) / 2 = 5/6 (a "-1 class" would give 5/9)
    gold, predicted = [0, 0, 1, 1], [0, -1, 1, 1]
    for m in (task_metrics("classification", ("a", "b"), gold, predicted),
              classification_metrics(np.array(gold), np.array(predicted), 2),
              task_metrics("tagging", ("NN", "VB"), [gold[:3], gold[3:]],
                           [predicted[:3], predicted[3:]])):
        assert m["accuracy"] == pytest.approx(3 / 4)
        assert m["macro_f1"] == pytest.approx(5 / 6)
        assert "span_f1" not in m


def test_classification_metrics_unchanged():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, size=200)
    predicted = np.where(rng.random(200) < 0.6, gold, rng.integers(0, 4, size=200))
    predicted[predicted == 3] = 2  # class 3 only in gold: still in the macro average
    m = classification_metrics(gold, predicted, 4)
    assert m == {"accuracy": pytest.approx(float((gold == predicted).mean())),
                 "macro_f1": pytest.approx(float(f1_score(gold, predicted, average="macro",
                                                          zero_division=0)))}
    assert set(m) == {"accuracy", "macro_f1"}
    with pytest.raises(ValueError, match="empty split"):
        classification_metrics(np.array([], dtype=int), np.array([], dtype=int), 2)


def test_task_metrics_returns_every_applicable_metric_in_range():
    gold = [ids("B-NP", "I-NP", "O"), ids("B-VP", "B-PP", "B-NP", "I-NP")]
    predicted = [ids("B-NP", "O", "O"), ids("B-VP", "B-NP", "B-NP", "I-NP")]
    m = task_metrics("tagging", CHUNK_LABELS, gold, predicted)
    assert set(m) == set(metrics_for("tagging", CHUNK_LABELS)) | {"span_precision", "span_recall"}
    assert all(0.0 <= v <= 1.0 for v in m.values())
    # POS tagging gets token metrics only, over the same ids
    m = task_metrics("tagging", POS_LABELS, gold, predicted)
    assert set(m) == {"accuracy", "macro_f1"}


def test_task_metrics_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="sentence 0 has 2 gold labels but 1 predicted"):
        task_metrics("tagging", CHUNK_LABELS, [[1, 2]], [[1]])
    with pytest.raises(ValueError, match="1 sentences but predicted has 2"):
        task_metrics("tagging", CHUNK_LABELS, [[1]], [[1], [1]])
    with pytest.raises(ValueError, match="outside the task's 7 labels"):
        task_metrics("tagging", CHUNK_LABELS, [[1, 9]], [[1, 1]])
