"""The advisor's predicted report with a model over the authors' features (synthetic user files)."""

from __future__ import annotations

import random

import numpy as np

from textmtl.meta.advisor import advise
from textmtl.meta.authors_features import FEATURE_NAMES
from textmtl.meta.metamodel import MetaModel


def user_file(path, words_a, words_b, seed):
    rng = random.Random(seed)
    rows = ["text,label"] + [f"{' '.join(rng.choices(words, k=10))},{label}"
                             for _ in range(50) for words, label in ((words_a, "a"), (words_b, "b"))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return f"file:{path}"


def model_file(path, *, low: float, high: float, diagnostics: bool = True):
    n = len(FEATURE_NAMES)
    trained_on = {"fitted_on": "20NG UNRELATED", "pairs": 516, "pairs_mtl_helps": 295}
    if diagnostics:
        trained_on.update({
            "cv": {"runs": 100, "folds": 5, "accuracy": [0.58, 0.01], "f1": [0.6, 0.02], "majority_accuracy": 0.57,
                   "always_helps_f1": 0.73},
            "feature_min": [low] * n, "feature_max": [high] * n,
            "out_of_corpus": {"pairs": 240, "model": {"spearman": 0.12, "auc": 0.55},
                              "main_task_average": {"spearman": 0.3, "auc": 0.6}, "held_out": False},
        })
    MetaModel(list(FEATURE_NAMES), np.zeros(n), np.ones(n), np.full(n, 0.01), 0.0, trained_on).to_json(path)
    return path


def test_the_report_says_how_far_to_trust_the_model_and_flags_features_out_of_range(tmp_path):
    main = user_file(tmp_path / "sport.csv", ["goal", "team"], ["oven", "flour"], 0)
    aux = user_file(tmp_path / "news.csv", ["vote", "law"], ["rain", "wind"], 1)
    report = advise(main, aux, model_path=model_file(tmp_path / "m.json", low=0.0, high=0.0), seeds=1)
    assert "P(multi-task learning helps the main task) = " in report
    assert "fitted on 516 pairs (20NG UNRELATED; 295 where MTL helped)" in report
    assert "accuracy 0.580 ± 0.010 (the majority answer: 0.570)" in report
    assert "(always answering 'helps': 0.730)" in report
    assert "on 240 FDU-MTL pairs it was not fitted on: Spearman rho with the measured gain +0.12, AUC" in report
    # every feature of these toy tasks is outside [0, 0]: all are named as extrapolated
    assert "warning: " in report and "of 30 features lie outside the range" in report
    wide = advise(main, aux, model_path=model_file(tmp_path / "w.json", low=-1e12, high=1e12), seeds=1)
    assert "warning" not in wide


def test_a_model_file_without_diagnostics_says_so(tmp_path):
    main = user_file(tmp_path / "sport.csv", ["goal", "team"], ["oven", "flour"], 0)
    aux = user_file(tmp_path / "news.csv", ["vote", "law"], ["rain", "wind"], 1)
    report = advise(main, aux, model_path=model_file(tmp_path / "m.json", low=0, high=0, diagnostics=False), seeds=1)
    assert "records no cross-validation or out-of-corpus numbers" in report
