"""The simple baselines a user tries first: TF-IDF + logistic regression.

MTL is only worth having if it beats them, so they run at their best: each builds its own
TF-IDF over every word 1-2-gram of its training texts (``OWN_VOCABULARY``: no frequency cut, no
vocabulary limit), not the experiment's features (an MLP's 10,000 terms cost the pooled FDU-MTL
regression about a point: docs/ncmtl.md), and both choose the inverse
regularisation strength C on dev (never test) from ``C_GRID``.

- ``logreg_per_task``: one logistic regression per task, over a vocabulary of that task's
  training texts.
- ``logreg_pooled``: one logistic regression on the training rows of all tasks pooled, the
  task ignored, over a vocabulary of all tasks' training texts (only meaningful when the tasks
  share a label space, e.g. FDU-MTL sentiment).

:func:`run_baseline` builds the features and fits; ``logreg_per_task`` / ``logreg_pooled`` fit
on features already built.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .data.batching import MultiTaskData
from .data.features import FEATURIZERS
from .errors import ConfigError
from .training.metrics import classification_metrics

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: the baselines' own TF-IDF settings: every word 1-2-gram of the training texts, 1 + log(tf)
OWN_VOCABULARY = {"max_features": None, "min_df": 1, "ngram_max": 2, "sublinear_tf": True}


def _rows(data: MultiTaskData, split: str, k: int):
    return data.tables[split].matrix[data.rows[split][k]]


def _labels(data: MultiTaskData, split: str, k: int) -> np.ndarray:
    return np.asarray(data.tasks[k].split(split).labels)


def _fit(x, y, c: float) -> LogisticRegression:
    binary = len(set(y)) == 2
    # the dual liblinear problem has one variable per training row: with more TF-IDF terms
    # than rows (FDU-MTL: 283,317 terms, 4,200 rows for 3 domains) it is 5-6 x faster than the
    # primal and reaches the same solution (same dev accuracy, measured for C 0.1-100)
    dual = binary and x.shape[1] > x.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, max_iter=2000, solver="liblinear" if binary else "lbfgs",
                                  dual=dual).fit(x, y)


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
#: which texts a baseline's vocabulary is fitted on: each task's own, or all tasks'
_VOCABULARY_OF = {"logreg_per_task": "task", "logreg_pooled": "all"}


def own_features(tasks) -> MultiTaskData:
    """The tasks' splits as TF-IDF rows over a vocabulary of their training texts
    (``OWN_VOCABULARY``)."""
    return MultiTaskData.build(list(tasks), FEATURIZERS.build("tfidf", params=OWN_VOCABULARY))


def run_baseline(name: str, tasks) -> dict[str, dict]:
    """Run baseline ``name`` on classification tasks, with its own vocabulary.

    Args:
        name: a key of ``BASELINES``.
        tasks: the experiment's classification :class:`~textmtl.data.tasks.Task` objects.
    Returns:
        task -> {"C", "dev", "test", "features": the number of TF-IDF terms it used}.
    """
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; expected one of {', '.join(sorted(BASELINES))}")
    groups = [[task] for task in tasks] if _VOCABULARY_OF[name] == "task" else [list(tasks)]
    results = {}
    for group in groups:
        data = own_features(group)
        for task, result in BASELINES[name](data).items():
            results[task] = {**result, "features": data.spec.size}
    return results
