"""The meta-model: logistic regression predicting whether MTL helps a main/auxiliary pair.

Paper §3.5 and §4.1: every pair is one instance, its meta-features (:mod:`.features`) are
min-max normalised to [0, 1], and a logistic regression predicts the sign of the MTL gain. It is
evaluated with 100 runs of randomised, stratified 5-fold cross-validation (Table 2: mean F1 of
the class "MTL helps") and its features are ranked by the mean "inverse rank" of their
coefficients over the fitted models (Table 3a) and by their mean coefficients (Table 3b).

:class:`MetaModel` is the final model fitted on all pairs, with its normalisation bounds, saved
as plain JSON so a user can score a new pair without retraining.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold, StratifiedKFold

from ..errors import ConfigError, DataError

#: Written into every saved model, and checked (when present) on loading.
JSON_FORMAT = "textmtl.metamodel/1"

SCALINGS = ("minmax", "standard")
SPLITS = ("stratified", "kfold")
SCORES = ("f1", "accuracy")
SOLVERS = ("lbfgs", "liblinear")
COEFFICIENTS = ("cv_mean", "full_fit")
GROUPINGS = ("named", "authors_code")


@dataclass(frozen=True)
class MetaSettings:
    """How the meta-model is evaluated (defaults: the cleaned protocol's; docs/meta-study.md).

    Args:
        scaling: "minmax": [0, 1] bounds of each training fold (the paper's text says [0, 1]);
            "standard": scikit-learn's ``StandardScaler`` fitted once on all pairs before the
            cross-validation (the authors' ``efficiency_prediction.py``).
        splits: "stratified" (``StratifiedKFold``) or "kfold" (``KFold``, the authors').
        score: "f1" of the class "MTL helps", or "accuracy" (what the authors' released
            outputs, and so the paper's Table 2, report).
        solver: of the logistic regression: "lbfgs" (scikit-learn's default now) or
            "liblinear" (its default before 0.22, which the authors' ``LogisticRegression()`` got).
        coefficients: Table 3b's coefficients: "cv_mean" (mean over every cross-validation
            model) or "full_fit" (one model fitted on all pairs, as the authors print them).
        groups: Table 2's feature groups: "named" (as the rows read) or "authors_code" (the
            columns the authors' code selects under each row's name; authors' features only).
    """

    scaling: str = "minmax"
    splits: str = "stratified"
    score: str = "f1"
    solver: str = "lbfgs"
    coefficients: str = "cv_mean"
    groups: str = "named"

    def __post_init__(self) -> None:
        for name, allowed in (("scaling", SCALINGS), ("splits", SPLITS), ("score", SCORES), ("solver", SOLVERS),
                              ("coefficients", COEFFICIENTS), ("groups", GROUPINGS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"'meta.{name}' must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")


def gain_labels(gains: Sequence[float] | np.ndarray) -> np.ndarray:
    """The meta-model's targets: 1 where the MTL gain is positive ("MTL helps"), else 0.

    A gain of exactly 0 counts as "does not help": MTL costs more to train, so a tie is no win.
    """
    return (np.asarray(gains, dtype=float) > 0).astype(int)


def _as_matrix(X: Any, what: str = "X") -> np.ndarray:
    matrix = np.asarray(X, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array (pairs x features); "
                         f"got shape {matrix.shape}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{what} holds a non-finite value (row {row}, column {column}); "
                         "meta-features must be finite")
    return matrix


def min_max_bounds(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise minimum and maximum of a feature matrix (pairs x features)."""
    matrix = _as_matrix(X)
    return matrix.min(axis=0), matrix.max(axis=0)


def min_max_normalise(X: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Scale each column to [0, 1] using bounds ``lo``/``hi`` (from :func:`min_max_bounds`).

    ``X`` may be one row (1-D) or a matrix. A column whose bounds are equal (constant on the data
    the bounds came from) maps to 0 whatever its value, since those data say nothing about its
    scale (and it avoids a division by zero). Values of new data outside ``[lo, hi]`` are NOT
    clipped: they land outside [0, 1], which keeps "more extreme than anything seen" visible to
    the model.
    """
    values = np.asarray(X, dtype=float)
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if values.shape[-1] != lo.shape[0] or lo.shape != hi.shape:
        raise ValueError(f"bounds of {lo.shape[0]} features do not fit data with "
                         f"{values.shape[-1]} features")
    span = hi - lo
    constant = span == 0
    # Divide by 1 where the span is 0, then zero those columns: no division-by-zero warning.
    scaled = (values - lo) / np.where(constant, 1.0, span)
    return np.where(constant, 0.0, scaled)


def inverse_ranks(coef: Sequence[float] | np.ndarray) -> np.ndarray:
    """Importance ranks of a fitted model's features, largest first (paper Table 3a).

    Features are ranked by ``|coef|`` descending (rank 1 = largest); the inverse rank is
    ``n_features - rank + 1``, so the most important feature scores ``n_features`` and the least
    scores 1. Ties keep feature order (the earlier feature gets the better rank).
    """
    magnitudes = np.abs(np.asarray(coef, dtype=float).ravel())
    n = magnitudes.size
    order = np.argsort(-magnitudes, kind="stable")
    ranks = np.empty(n, dtype=int)
    ranks[order] = np.arange(1, n + 1)
    return n - ranks + 1


def _logistic_regression(C: float, solver: str = "lbfgs") -> LogisticRegression:
    # L2-regularised (sklearn's default); max_iter well above what scaled features need, so
    # convergence warnings mean something. liblinear (the authors' default) regularises the
    # intercept too, as it did for them.
    return LogisticRegression(C=C, solver=solver, max_iter=1000)


def standard_bounds(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """``StandardScaler`` as min-max bounds: ``lo = mean``, ``hi = mean + std`` (ddof 0), so
    :func:`min_max_normalise` computes ``(x - mean) / std``; a constant column (std 0) maps to
    0, as ``StandardScaler`` maps it."""
    matrix = _as_matrix(X)
    mean = matrix.mean(axis=0)
    return mean, mean + matrix.std(axis=0)


def scaling_bounds(X: Any, scaling: str = "minmax") -> tuple[np.ndarray, np.ndarray]:
    """Normalisation bounds of ``scaling`` (:data:`SCALINGS`) for :func:`min_max_normalise`."""
    return standard_bounds(X) if scaling == "standard" else min_max_bounds(X)


def _labels(y: Any, n_rows: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(f"y must hold one label per pair ({n_rows}); got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("y must hold 0/1 labels (1 = MTL helps); use gain_labels(gains)")
    return labels.astype(int)


def _class_counts_message(labels: np.ndarray) -> str:
    return (f"found {int((labels == 1).sum())} where it helps and "
            f"{int((labels == 0).sum())} where it does not")


@dataclass
class CrossValidation:
    """Results of repeated stratified k-fold cross-validation of the meta-model.

    Attributes:
        mean_f1: mean over runs of each run's mean held-out score (F1 of class 1, "MTL helps",
            or accuracy: :attr:`MetaSettings.score`).
        std_f1: standard deviation over runs of those per-run means (ddof=1; 0 for one run).
        coefficients: one row per fitted model (run-major, then fold), one column per feature.
        inverse_ranks: same shape; see :func:`inverse_ranks`.
        folds: the number of folds actually used (fewer than asked if a class is too small).
    """

    mean_f1: float
    std_f1: float
    coefficients: np.ndarray
    inverse_ranks: np.ndarray
    folds: int


def cross_validate(X: Any, y: Any, *, runs: int = 100, folds: int = 5, seed: int = 0,
                   C: float = 1.0, settings: MetaSettings = MetaSettings()) -> CrossValidation:
    """Repeated, randomised k-fold cross-validation (paper §4.1, Table 2).

    Run ``r`` shuffles with ``StratifiedKFold`` (or ``KFold``, ``settings.splits``)
    ``(folds, shuffle=True, random_state=seed + r)``. With min-max scaling the bounds come from
    each fold's training part only (no leak of the held-out pairs into the scaling); with
    "standard" scaling all pairs are standardised once before the folds, as the authors do. A
    logistic regression is fitted and scored (``settings.score``: F1 of class 1, "MTL helps",
    ``zero_division=0``, or accuracy) on the held-out part.

    Args:
        X: meta-features, pairs x features.
        y: 0/1 labels (:func:`gain_labels`).
        runs: number of reshuffled repetitions (the paper: 100).
        folds: folds per run (the paper: 5). Stratification needs every class in every fold, so
            when the smaller class has fewer pairs than ``folds``, ``max(2, its size)`` folds are
            used instead and reported in :attr:`CrossValidation.folds`.
        seed: base seed of the shuffles.
        C: inverse L2 regularisation strength.
        settings: scaling, splits, score and solver.

    Raises:
        ValueError: if either class has fewer than 2 pairs, or inputs are malformed.
    """
    matrix = _as_matrix(X)
    labels = _labels(y, matrix.shape[0])
    if runs < 1 or folds < 2:
        raise ValueError(f"need runs >= 1 and folds >= 2; got runs={runs}, folds={folds}")
    minority = int(min((labels == 0).sum(), (labels == 1).sum()))
    if minority < 2:
        raise ValueError("meta-model needs at least 2 pairs where MTL helps and 2 where it does "
                         f"not; {_class_counts_message(labels)}")
    stratified = settings.splits == "stratified"
    used_folds = folds if (minority >= folds or not stratified) else max(2, minority)
    used_folds = min(used_folds, matrix.shape[0])
    if settings.scaling == "standard":
        matrix = min_max_normalise(matrix, *standard_bounds(matrix))

    run_scores = np.empty(runs)
    coefficients, ranks = [], []
    for run in range(runs):
        splitter = (StratifiedKFold if stratified else KFold)(n_splits=used_folds, shuffle=True,
                                                              random_state=seed + run)
        fold_scores = []
        for train, test in splitter.split(matrix, labels):
            if len(np.unique(labels[train])) < 2:  # an unstratified fold can hold one class only
                continue
            if settings.scaling == "minmax":
                lo, hi = min_max_bounds(matrix[train])
                fit_x, test_x = min_max_normalise(matrix[train], lo, hi), min_max_normalise(matrix[test], lo, hi)
            else:
                fit_x, test_x = matrix[train], matrix[test]
            model = _logistic_regression(C, settings.solver).fit(fit_x, labels[train])
            predicted = model.predict(test_x)
            fold_scores.append(accuracy_score(labels[test], predicted) if settings.score == "accuracy" else
                               f1_score(labels[test], predicted, pos_label=1, zero_division=0))
            coefficients.append(model.coef_[0].copy())
            ranks.append(inverse_ranks(model.coef_[0]))
        run_scores[run] = float(np.mean(fold_scores))
    return CrossValidation(
        mean_f1=float(run_scores.mean()),
        std_f1=float(run_scores.std(ddof=1)) if runs > 1 else 0.0,
        coefficients=np.vstack(coefficients),
        inverse_ranks=np.vstack(ranks),
        folds=used_folds,
    )


@dataclass
class MetaModel:
    """A fitted meta-model with the normalisation it was trained with.

    Attributes:
        feature_names: the model's inputs, in column order.
        lo, hi: min-max bounds of each feature on the training pairs.
        coef: one logistic-regression coefficient per feature (on normalised values).
        intercept: the logistic-regression intercept.
        trained_on: free JSON-serialisable metadata (e.g. problem, n_pairs, command).
    """

    feature_names: list[str]
    lo: np.ndarray
    hi: np.ndarray
    coef: np.ndarray
    intercept: float
    trained_on: dict = field(default_factory=dict)

    def _normalised(self, features: Mapping[str, float]) -> np.ndarray:
        missing = [name for name in self.feature_names if name not in features]
        if missing:
            raise KeyError(f"feature {missing[0]!r} is missing (the meta-model needs "
                           f"{len(self.feature_names)} features; {len(missing)} missing)")
        row = np.array([float(features[name]) for name in self.feature_names])
        return min_max_normalise(row, self.lo, self.hi)

    def predict_proba(self, features: Mapping[str, float]) -> float:
        """Probability that MTL helps the pair described by ``features``.

        Args:
            features: feature name -> raw (unnormalised) value, e.g. from ``pair_features``;
                names the model does not use are ignored.

        Raises:
            KeyError: naming the first feature of the model that ``features`` lacks.
        """
        return float(expit(float(self.coef @ self._normalised(features)) + self.intercept))

    def contributions(self, features: Mapping[str, float]) -> list[tuple[str, float]]:
        """Each feature's share of the decision: ``coef * normalised value``, largest first.

        Positive contributions push towards "MTL helps". Sorted by absolute value, descending
        (ties keep feature order); the intercept is not included.
        """
        values = self.coef * self._normalised(features)
        order = np.argsort(-np.abs(values), kind="stable")
        return [(self.feature_names[i], float(values[i])) for i in order]

    def to_json(self, path: str | os.PathLike) -> None:
        """Save as plain JSON, atomically (write ``path + ".tmp"``, then rename over ``path``).

        The rename means a reader never sees a half-written model, even if saving is killed.
        """
        target = Path(path)
        payload = {
            "format": JSON_FORMAT,
            "feature_names": list(self.feature_names),
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "trained_on": self.trained_on,
        }
        temporary = Path(str(target) + ".tmp")
        try:
            temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)  # only left behind if writing failed

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> MetaModel:
        """Load a model saved by :meth:`to_json`.

        Raises:
            DataError: one line naming the file and what is wrong (missing file, invalid JSON,
                a missing or invalid key).
        """
        source = Path(path)
        try:
            payload = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{source}: meta-model file not found") from None
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(f"{source}: cannot read meta-model file ({error})") from None
        except json.JSONDecodeError as error:
            raise DataError(f"{source}: not valid JSON (line {error.lineno}: {error.msg})") \
                from None
        if not isinstance(payload, dict):
            raise DataError(f"{source}: expected a JSON object with the meta-model's keys; "
                            f"got {type(payload).__name__}")
        if "format" in payload and payload["format"] != JSON_FORMAT:
            raise DataError(f"{source}: key 'format' is {payload['format']!r}; expected "
                            f"{JSON_FORMAT!r}")

        def require(key: str) -> Any:
            if key not in payload:
                raise DataError(f"{source}: meta-model key {key!r} is missing")
            return payload[key]

        names = require("feature_names")
        if (not isinstance(names, list) or not names
                or not all(isinstance(name, str) for name in names)):
            raise DataError(f"{source}: meta-model key 'feature_names' must be a non-empty list "
                            "of strings")
        if len(set(names)) != len(names):
            raise DataError(f"{source}: meta-model key 'feature_names' has duplicate names")

        def numbers(key: str) -> np.ndarray:
            values = require(key)
            if (not isinstance(values, list) or len(values) != len(names)
                    or not all(_is_finite_number(v) for v in values)):
                raise DataError(f"{source}: meta-model key {key!r} must be a list of "
                                f"{len(names)} finite numbers (one per feature)")
            return np.asarray(values, dtype=float)

        lo, hi, coef = numbers("lo"), numbers("hi"), numbers("coef")
        if (lo > hi).any():
            raise DataError(f"{source}: meta-model keys 'lo'/'hi' are invalid: lo > hi for "
                            f"feature {names[int(np.argmax(lo > hi))]!r}")
        intercept = require("intercept")
        if not _is_finite_number(intercept):
            raise DataError(f"{source}: meta-model key 'intercept' must be a finite number")
        trained_on = payload.get("trained_on", {})
        if not isinstance(trained_on, dict):
            raise DataError(f"{source}: meta-model key 'trained_on' must be a JSON object")
        return cls(list(names), lo, hi, coef, float(intercept), trained_on)


def _is_finite_number(value: Any) -> bool:
    # bool is an int subclass, but true/false in a coefficient list is a corrupt file.
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def fit_meta_model(X: Any, y: Any, feature_names: Sequence[str], *, C: float = 1.0,
                   trained_on: dict | None = None, scaling: str = "minmax", solver: str = "lbfgs") -> MetaModel:
    """Fit the final meta-model on all pairs (bounds from all of ``X``, then one fit).

    Args:
        X: meta-features, pairs x features, columns in ``feature_names`` order.
        y: 0/1 labels (:func:`gain_labels`).
        feature_names: one name per column.
        C: inverse L2 regularisation strength.
        trained_on: free metadata stored with the model (must be JSON-serialisable to save).
        scaling: "minmax" or "standard" (:data:`SCALINGS`).
        solver: of the logistic regression (:data:`SOLVERS`).

    Raises:
        ValueError: if a class is missing, or shapes disagree.
    """
    matrix = _as_matrix(X)
    labels = _labels(y, matrix.shape[0])
    names = list(feature_names)
    if len(names) != matrix.shape[1]:
        raise ValueError(f"{len(names)} feature names for {matrix.shape[1]} feature columns")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    if labels.min() == labels.max():
        raise ValueError("meta-model needs pairs where MTL helps and pairs where it does not; "
                         f"{_class_counts_message(labels)}")
    # "standard" is stored as bounds too (mean, mean + std), so a saved model needs no new field
    lo, hi = scaling_bounds(matrix, scaling)
    model = _logistic_regression(C, solver).fit(min_max_normalise(matrix, lo, hi), labels)
    return MetaModel(names, lo, hi, model.coef_[0].copy(), float(model.intercept_[0]),
                     dict(trained_on or {}))


def fit_with_diagnostics(X: Any, y: Any, feature_names: Sequence[str], *, meta: MetaSettings = MetaSettings(),
                         runs: int = 100, trained_on: dict | None = None) -> MetaModel:
    """:func:`fit_meta_model`, with what a user needs to judge the model stored in ``trained_on``:

    * ``cv``: its repeated 5-fold cross-validated accuracy and F1 ("MTL helps") on its own
      training pairs, beside the two answers that need no features: the majority class's
      accuracy and the F1 of always answering "helps";
    * ``feature_min`` / ``feature_max``: the range of each feature over the training pairs, so
      a pair outside it can be flagged (the advisor's warning).

    Raises:
        ValueError: a class is missing or has fewer than 2 pairs.
    """
    from dataclasses import replace

    matrix = _as_matrix(X)
    labels = _labels(y, matrix.shape[0])
    model = fit_meta_model(matrix, labels, feature_names, trained_on=trained_on, scaling=meta.scaling,
                           solver=meta.solver)
    accuracy = cross_validate(matrix, labels, runs=runs, settings=replace(meta, score="accuracy"))
    f1 = cross_validate(matrix, labels, runs=runs, settings=replace(meta, score="f1"))
    helps = float(labels.mean())
    model.trained_on.update({
        "cv": {"runs": runs, "folds": accuracy.folds, "splits": meta.splits,
               "accuracy": [accuracy.mean_f1, accuracy.std_f1], "f1": [f1.mean_f1, f1.std_f1],
               "majority_accuracy": max(helps, 1 - helps), "always_helps_f1": 2 * helps / (1 + helps)},
        "feature_min": [float(v) for v in matrix.min(axis=0)],
        "feature_max": [float(v) for v in matrix.max(axis=0)],
    })
    return model
