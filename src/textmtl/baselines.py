"""The simple baselines a user tries first: TF-IDF + logistic regression.

MTL is only worth having if it beats them. Both choose the inverse regularisation strength C
on dev (never test) from ``C_GRID``.

- ``logreg_per_task``: one logistic regression per task.
- ``logreg_pooled``: one logistic regression on the training rows of all tasks pooled, the
  task ignored (only meaningful when the tasks share a label space, e.g. FDU-MTL sentiment).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .data.batching import MultiTaskData
from .errors import ConfigError
from .training.metrics import classification_metrics

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _rows(data: MultiTaskData, split: str, k: int):
    return data.tables[split].matrix[data.rows[split][k]]


def _labels(data: MultiTaskData, split: str, k: int) -> np.ndarray:
    return np.asarray(data.tasks[k].split(split).labels)


def _fit(x, y, c: float) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, max_iter=2000, solver="liblinear" if len(set(y)) == 2 else "lbfgs").fit(x, y)


def logreg_per_task(data: MultiTaskData) -> dict[str, dict]:
    """One TF-IDF logistic regression per task, C chosen on that task's dev accuracy.

    Returns:
        task -> {"C": chosen C, "dev": metrics, "test": metrics}.
    """
    results = {}
    for k, task in enumerate(data.tasks):
        x_train, y_train = _rows(data, "train", k), _labels(data, "train", k)
        best = None
        for c in C_GRID:
            model = _fit(x_train, y_train, c)
            dev = classification_metrics(_labels(data, "dev", k), model.predict(_rows(data, "dev", k)),
                                         task.num_classes)
            if best is None or dev["accuracy"] > best[1]["accuracy"]:
                best = (c, dev, model)
        c, dev, model = best
        test = classification_metrics(_labels(data, "test", k), model.predict(_rows(data, "test", k)),
                                      task.num_classes)
        results[task.name] = {"C": c, "dev": dev, "test": test}
    return results


def logreg_pooled(data: MultiTaskData) -> dict[str, dict]:
    """One TF-IDF logistic regression on all tasks pooled; C chosen on the mean dev accuracy.

    Returns:
        task -> {"C": chosen C, "dev": metrics, "test": metrics}.
    """
    label_spaces = {task.labels for task in data.tasks}
    if len(label_spaces) != 1:
        raise ConfigError("baseline 'logreg_pooled' needs tasks that share one label space; "
                          f"found {len(label_spaces)} different label spaces")
    import scipy.sparse as sp

    x_train = sp.vstack([_rows(data, "train", k) for k in range(len(data.tasks))]).tocsr()
    y_train = np.concatenate([_labels(data, "train", k) for k in range(len(data.tasks))])
    num_classes = data.tasks[0].num_classes

    def evaluate(model, split):
        return {t.name: classification_metrics(_labels(data, split, k), model.predict(_rows(data, split, k)),
                                               num_classes) for k, t in enumerate(data.tasks)}

    best = None
    for c in C_GRID:
        model = _fit(x_train, y_train, c)
        dev = evaluate(model, "dev")
        score = np.mean([m["accuracy"] for m in dev.values()])
        if best is None or score > best[0]:
            best = (score, c, dev, model)
    _, c, dev, model = best
    test = evaluate(model, "test")
    return {name: {"C": c, "dev": dev[name], "test": test[name]} for name in dev}


BASELINES = {"logreg_per_task": logreg_per_task, "logreg_pooled": logreg_pooled}
