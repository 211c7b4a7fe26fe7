"""Meta-features of a main/auxiliary task pair (paper §3.5, Tables 2-3).

The "when does MTL work" study predicts, for a pair of binary topic tasks, whether training the
main task together with the auxiliary task beats training it alone. The predictors are cheap
characteristics of the two data sets (unigram Jensen-Shannon divergences, sizes, type-token
ratios, out-of-vocabulary rates) and of the single-task loss curves (gradients at fixed points of
training, parameters of a fitted log curve), following Bingel and Søgaard (2017).

Everything here is a pure function of its arguments: a feature is computed from token lists and
a loss curve only, never from a model or a global, so the same pair always gets the same vector.

Layout of the vector (:data:`FEATURE_NAMES`, always in this order): the 13 per-task features of
the main task (``<feature>.main``), the same 13 of the auxiliary task (``.aux``), their 13
main/aux ratios (``.ratio``), then 7 pair-level features (``.all``, ``words.train``,
``words.test``) — 46 in all. The paper reports 30 after its own selection; we compute every
feature it names in §3.5 and Table 3 and leave the choice of subsets to the meta-model
(:func:`feature_groups`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

Documents = Sequence[Sequence[str]]

#: The value of ``f.main / f.aux`` when ``f.aux == 0`` and ``f.main != 0`` (with f.main's sign):
#: large enough to sit at the end of the [0, 1] range after min-max normalisation, finite so
#: that normalisation and logistic regression never see ``inf``.
RATIO_CAP = 1e6

#: Upper bound of the fitted log-curve parameter ``c`` (:func:`fit_log_curve`). A curve that
#: falls fastest at its first epoch (e.g. an exponential decay) pushes ``c`` towards infinity,
#: where ``a·ln(c·i + 1) + b`` tends to ``a·ln i + const`` and the objective is flat, so ``c``
#: would be optimiser noise in the millions. At ``c = 1000`` the curve is already within
#: ``|a|·0.001`` of that limit at every epoch, so the bound loses nothing and keeps ``c`` stable.
CURVE_C_MAX = 1e3


@dataclass(frozen=True, eq=False)
class TaskSample:
    """One binary task as the meta-features see it.

    ``eq=False``: instances compare (and hash) by identity, because ``==`` on the ``loss_curve``
    array is element-wise and would make a field-by-field comparison raise.

    Attributes:
        name: the task's name, used in error messages.
        train: token lists of the class-0 ("positive" topic) and class-1 ("negative" topic)
            training documents.
        test: the same for the test documents.
        loss_curve: per-epoch mean training loss of the single-task model; required by the
            curve features, so :func:`pair_features` rejects a task without one.
    """

    name: str
    train: tuple[list[list[str]], list[list[str]]]
    test: tuple[list[list[str]], list[list[str]]]
    loss_curve: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# Primitives
# --------------------------------------------------------------------------------------------


def unigram_counts(documents: Iterable[Sequence[str]]) -> Counter:
    """Count the tokens of some documents.

    Args:
        documents: token lists.

    Returns:
        A Counter from token type to its number of occurrences in all the documents.
    """
    counts: Counter = Counter()
    for document in documents:
        counts.update(document)
    return counts


def jensen_shannon(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence, in bits, between two unigram distributions.

    Each Counter is normalised to a probability distribution over the union of both sets of
    types (a type missing from one side has probability 0 there; no smoothing, ``0·log 0 = 0``).
    With base-2 logarithms the divergence lies in [0, 1]: 0 for identical distributions, 1 for
    disjoint vocabularies.

    Args:
        p, q: token counts (entries with a count <= 0 are ignored).

    Returns:
        ``JSD(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M)`` with ``M = ½(P + Q)``.

    Raises:
        ValueError: if either side has no tokens (naming which one).
    """
    p = {t: c for t, c in p.items() if c > 0}
    q = {t: c for t, c in q.items() if c > 0}
    for side, counts in (("first distribution (p)", p), ("second distribution (q)", q)):
        if not counts:
            raise ValueError(f"cannot compute Jensen-Shannon divergence: the {side} is "
                             "empty (no tokens)")
    # Sorted types, not set order: set order depends on string hashing, which changes between
    # processes and would change the summation order (and the last bits of the result).
    types = sorted(p.keys() | q.keys())
    pv = np.array([p.get(t, 0) for t in types], dtype=float)
    qv = np.array([q.get(t, 0) for t in types], dtype=float)
    pv /= pv.sum()
    qv /= qv.sum()
    m = 0.5 * (pv + qv)
    # Only positive-probability terms contribute (0·log 0 = 0); m > 0 wherever pv or qv is.
    kl_pm = float(np.sum(pv[pv > 0] * np.log2(pv[pv > 0] / m[pv > 0])))
    kl_qm = float(np.sum(qv[qv > 0] * np.log2(qv[qv > 0] / m[qv > 0])))
    # Rounding can step a hair outside the mathematical range.
    return min(1.0, max(0.0, 0.5 * kl_pm + 0.5 * kl_qm))


def word_count(documents: Iterable[Sequence[str]]) -> int:
    """Number of tokens (not types) in some documents."""
    return sum(len(document) for document in documents)


def type_token_ratio(documents: Iterable[Sequence[str]]) -> float:
    """Number of distinct types divided by the number of tokens.

    Raises:
        ValueError: if the documents hold no tokens.
    """
    counts = unigram_counts(documents)
    tokens = sum(counts.values())
    if tokens == 0:
        raise ValueError("cannot compute a type-token ratio: the documents hold no tokens")
    return len(counts) / tokens


def oov_rate(documents: Iterable[Sequence[str]], vocabulary: set[str] | frozenset[str]) -> float:
    """Share of the tokens of ``documents`` whose type is not in ``vocabulary``.

    Raises:
        ValueError: if the documents hold no tokens.
    """
    tokens = unseen = 0
    for document in documents:
        tokens += len(document)
        unseen += sum(1 for token in document if token not in vocabulary)
    if tokens == 0:
        raise ValueError("cannot compute an OOV rate: the documents hold no tokens")
    return unseen / tokens


def _as_curve(losses: Sequence[float] | np.ndarray, minimum: int = 2) -> np.ndarray:
    curve = np.asarray(losses, dtype=float)
    if curve.ndim != 1 or curve.size < minimum:
        raise ValueError(f"a loss curve must be a 1-D sequence of at least {minimum} per-epoch "
                         f"losses; got shape {curve.shape}")
    if not np.all(np.isfinite(curve)):
        raise ValueError("a loss curve must hold finite values; got NaN or inf")
    return curve


def curve_gradient(losses: Sequence[float] | np.ndarray, fraction: float) -> float:
    """Slope of a loss curve at a given fraction of training, in loss per epoch.

    The point is epoch index ``i = round(fraction * (n - 1))`` (Python's ``round``: ties go to
    the even index) and the slope is ``np.gradient(losses)[i]``: a central difference inside the
    curve, a one-sided difference at its ends.

    Args:
        losses: per-epoch mean training losses, at least 2.
        fraction: where in training, in [0, 1].

    Raises:
        ValueError: on a curve shorter than 2 points, non-finite losses or a fraction outside
            [0, 1].
    """
    curve = _as_curve(losses)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1]; got {fraction}")
    index = round(fraction * (curve.size - 1))
    return float(np.gradient(curve)[index])


def _log_curve(i: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.log(c * i + 1.0) + b


def fit_log_curve(losses: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares fit of ``a·ln(c·i + d) + b`` to a loss curve at epochs ``i = 1..n``.

    The four parameters of the paper's form are not identifiable: for any ``k > 0``,
    ``(a, b, c, d)`` and ``(a, b - a·ln k, k·c, k·d)`` give the same curve, so a free 4-parameter
    fit returns an arbitrary, start-dependent point of that family and ``c`` would mean nothing.
    We therefore fit the equivalent form with ``d = 1`` (any curve of the family can be written
    so: ``a·ln(c·i + d) + b = a·ln((c/d)·i + 1) + b + a·ln d``), which makes ``c`` — the inverse
    of the number of epochs after which the curve turns logarithmic — well defined. ``a`` (the
    overall steepness) is the same in every representation.

    The fit uses :func:`scipy.optimize.curve_fit` (trust-region reflective) with ``c`` bounded
    to ``(0, CURVE_C_MAX]`` (see :data:`CURVE_C_MAX`) and a deterministic start:
    ``a = (losses[-1] - losses[0]) / ln n``, ``b = losses[0]``, ``c = 1``; ``maxfev`` is 20000.

    Args:
        losses: per-epoch mean training losses, at least 2.

    Returns:
        ``(a, b, c, d)`` with ``d == 1.0``. If the curve has fewer points than free parameters
        (n < 3), or the optimiser does not converge (``RuntimeError``), the start values are
        returned instead of raising, so one odd curve does not stop a whole study.

    Raises:
        ValueError: on a curve shorter than 2 points or with non-finite losses.
    """
    curve = _as_curve(losses)
    # Memoised on the exact values: curve_param_a and curve_param_c fit the same curve, and a
    # task's curve is fitted again for every pair it belongs to. Safe because the fit is pure.
    return _fit_log_curve_cached(tuple(curve.tolist()))


@functools.lru_cache(maxsize=4096)
def _fit_log_curve_cached(values: tuple[float, ...]) -> tuple[float, float, float, float]:
    curve = np.asarray(values, dtype=float)
    n = curve.size
    start = (float(curve[-1] - curve[0]) / math.log(n), float(curve[0]), 1.0)
    if n < 3:  # fewer points than free parameters: nothing to fit
        return (*start, 1.0)
    epochs = np.arange(1, n + 1, dtype=float)
    try:
        with warnings.catch_warnings():
            # A flat curve leaves c undetermined: the covariance warning says so, and is moot
            # because we do not use the covariance.
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(
                _log_curve, epochs, curve, p0=start,
                bounds=([-np.inf, -np.inf, 1e-12], [np.inf, np.inf, CURVE_C_MAX]),
                method="trf", maxfev=20000, xtol=1e-12, ftol=1e-12, gtol=1e-12,
            )
    except RuntimeError:
        params = np.asarray(start)
    a, b, c = (float(v) for v in params)
    return (a, b, c, 1.0)


# --------------------------------------------------------------------------------------------
# Per-task features (each measures one task; used for .main, .aux and .ratio)
# --------------------------------------------------------------------------------------------


def _require_tokens(documents: Documents, what: str) -> Counter:
    counts = unigram_counts(documents)
    if not counts:
        raise ValueError(f"{what} hold no tokens")
    return counts


def _train_all(task: TaskSample) -> list[Sequence[str]]:
    return [*task.train[0], *task.train[1]]


def _test_all(task: TaskSample) -> list[Sequence[str]]:
    return [*task.test[0], *task.test[1]]


def _loss_curve(task: TaskSample) -> np.ndarray:
    if task.loss_curve is None:
        raise ValueError(f"task {task.name!r} has no loss curve; the curve features need the "
                         "per-epoch training losses of its single-task model")
    try:
        return _as_curve(task.loss_curve)
    except ValueError as error:
        raise ValueError(f"task {task.name!r}: {error}") from None


def jsd_train_test(task: TaskSample) -> float:
    """JSD between a task's training and test unigram distributions.

    Measures how far the test data drifts from what the model is trained on; the paper finds it
    strongly (negatively) related to MTL gains (§6.1).
    """
    return jensen_shannon(
        _require_tokens(_train_all(task), f"training documents of task {task.name!r}"),
        _require_tokens(_test_all(task), f"test documents of task {task.name!r}"))


def jsd_classes(task: TaskSample) -> float:
    """JSD between the class-0 and class-1 training documents of a task ("JSD between classes").

    Measures how separable the two topics are by vocabulary alone — an easy task leaves little
    for an auxiliary task to add. Among the strongest coefficients in Table 3b.
    """
    return jensen_shannon(
        _require_tokens(task.train[0], f"class-0 training documents of task {task.name!r}"),
        _require_tokens(task.train[1], f"class-1 training documents of task {task.name!r}"))


def jsd_pos_class(task: TaskSample) -> float:
    """JSD between the class-0 ("positive" topic) training and test documents of a task.

    The train/test drift of one class; the top-ranked predictor for RELATED TOPICS (Table 3a).
    """
    return jensen_shannon(
        _require_tokens(task.train[0], f"class-0 training documents of task {task.name!r}"),
        _require_tokens(task.test[0], f"class-0 test documents of task {task.name!r}"))


def jsd_neg_class(task: TaskSample) -> float:
    """JSD between the class-1 ("negative" topic) training and test documents of a task.

    The train/test drift of the other class (Table 3, "JSD neg. class").
    """
    return jensen_shannon(
        _require_tokens(task.train[1], f"class-1 training documents of task {task.name!r}"),
        _require_tokens(task.test[1], f"class-1 test documents of task {task.name!r}"))


def task_words(task: TaskSample) -> float:
    """Number of tokens in a task's training documents ("# words").

    Data size: auxiliary data is expected to help most where the main task has little.
    """
    return float(word_count(_train_all(task)))


def task_type_token_ratio(task: TaskSample) -> float:
    """Type-token ratio of a task's training documents.

    Lexical variety: a high ratio means many rare words, whose representations an auxiliary
    task may improve (§3.5).
    """
    try:
        return type_token_ratio(_train_all(task))
    except ValueError:
        raise ValueError(f"training documents of task {task.name!r} hold no tokens") from None


def task_oov_rate(task: TaskSample) -> float:
    """Share of a task's test tokens whose type never occurs in its training documents.

    Unseen words are where a model trained on the task alone knows nothing; the paper finds the
    OOV rate positively related to gains (§6.1).
    """
    vocabulary = set(unigram_counts(_train_all(task)))
    try:
        return oov_rate(_test_all(task), vocabulary)
    except ValueError:
        raise ValueError(f"test documents of task {task.name!r} hold no tokens") from None


def _gradient_feature(fraction: float) -> Callable[[TaskSample], float]:
    def feature(task: TaskSample) -> float:
        return curve_gradient(_loss_curve(task), fraction)

    percent = round(fraction * 100)
    feature.__name__ = f"curve_gradient_{percent}"
    feature.__qualname__ = feature.__name__
    feature.__doc__ = (
        f"Slope of a task's single-task loss curve at {percent}% of training.\n\n"
        "Loss-curve gradients were the best predictors of MTL gains in Bingel and Søgaard "
        "(2017): MTL tends to help a main task that plateaus early (§6.1).")
    return feature


curve_gradient_10 = _gradient_feature(0.10)
curve_gradient_25 = _gradient_feature(0.25)
curve_gradient_50 = _gradient_feature(0.50)
curve_gradient_75 = _gradient_feature(0.75)


def curve_param_a(task: TaskSample) -> float:
    """Parameter ``a`` of the log curve fitted to a task's loss curve (:func:`fit_log_curve`).

    The overall steepness of the curve (negative for a falling loss); among the most predictive
    features in the paper (§6.1).
    """
    return fit_log_curve(_loss_curve(task))[0]


def curve_param_c(task: TaskSample) -> float:
    """Parameter ``c`` of the log curve fitted to a task's loss curve (with ``d = 1``).

    How early the curve bends into diminishing returns (1/c epochs); the paper includes it with
    ``a`` as a measure of when training plateaus (§3.5).
    """
    return fit_log_curve(_loss_curve(task))[2]


#: Per-task features, in vector order: name -> function of one task.
TASK_FEATURES: dict[str, Callable[[TaskSample], float]] = {
    "jsd_train_test": jsd_train_test,
    "jsd_classes": jsd_classes,
    "jsd_pos_class": jsd_pos_class,
    "jsd_neg_class": jsd_neg_class,
    "words": task_words,
    "ttr": task_type_token_ratio,
    "oov": task_oov_rate,
    "curve_grad_10": curve_gradient_10,
    "curve_grad_25": curve_gradient_25,
    "curve_grad_50": curve_gradient_50,
    "curve_grad_75": curve_gradient_75,
    "curve_a": curve_param_a,
    "curve_c": curve_param_c,
}


def ratio(main_value: float, aux_value: float) -> float:
    """``main_value / aux_value``: how the main task compares with its auxiliary task.

    The paper includes these "relative differences" (§3.5); Table 2's best non-curve group is
    ratio-only. Division by zero is defined rather than raised: ``0 / 0 = 0.0`` (the tasks do
    not differ) and ``x / 0 = ±1e6`` with the sign of ``x`` (:data:`RATIO_CAP`; a large finite
    value, so min-max normalisation stays finite).
    """
    if aux_value == 0:
        return 0.0 if main_value == 0 else math.copysign(RATIO_CAP, main_value)
    return main_value / aux_value


# --------------------------------------------------------------------------------------------
# Pair-level features (each measures the two tasks together)
# --------------------------------------------------------------------------------------------


def jsd_main_aux(main: TaskSample, aux: TaskSample) -> float:
    """JSD between all training documents of the main and of the auxiliary task.

    How different the auxiliary data is from the main data: the paper's first feature (§3.5);
    more divergence, less chance that MTL works (§6.1).
    """
    return jensen_shannon(
        _require_tokens(_train_all(main), f"training documents of main task {main.name!r}"),
        _require_tokens(_train_all(aux), f"training documents of auxiliary task {aux.name!r}"))


def jsd_pos_class_pair(main: TaskSample, aux: TaskSample) -> float:
    """JSD between the class-0 training documents of the main and of the auxiliary task.

    Whether the two "positive" topics are worded alike; the largest (negative) coefficient for
    UNRELATED TOPICS (Table 3b).
    """
    return jensen_shannon(
        _require_tokens(main.train[0], f"class-0 training documents of main task {main.name!r}"),
        _require_tokens(aux.train[0], f"class-0 training documents of auxiliary task {aux.name!r}"))


def jsd_neg_class_pair(main: TaskSample, aux: TaskSample) -> float:
    """JSD between the class-1 training documents of the main and of the auxiliary task.

    Whether the two "negative" topics are worded alike (Table 3b, second largest coefficient).
    """
    return jensen_shannon(
        _require_tokens(main.train[1], f"class-1 training documents of main task {main.name!r}"),
        _require_tokens(aux.train[1], f"class-1 training documents of auxiliary task {aux.name!r}"))


def jsd_classes_pair(main: TaskSample, aux: TaskSample) -> float:
    """JSD between class 0 and class 1 of the pooled main + auxiliary training documents.

    How separable the "positive" and "negative" topics are by vocabulary once both tasks' data
    are pooled, as the shared layers of an MTL model see them (Table 3b, "JSD between classes /
    all", positive coefficient).
    """
    return jensen_shannon(
        _require_tokens([*main.train[0], *aux.train[0]],
                        f"class-0 training documents of tasks {main.name!r} and {aux.name!r}"),
        _require_tokens([*main.train[1], *aux.train[1]],
                        f"class-1 training documents of tasks {main.name!r} and {aux.name!r}"))


def oov_rate_pair(main: TaskSample, aux: TaskSample) -> float:
    """Share of main-task test tokens unseen in the training documents of both tasks.

    What OOV rate remains once the auxiliary data is added: the words MTL can newly learn
    (Table 3b, "OOV rate / all", positive coefficient).
    """
    vocabulary = set(unigram_counts(_train_all(main))) | set(unigram_counts(_train_all(aux)))
    try:
        return oov_rate(_test_all(main), vocabulary)
    except ValueError:
        raise ValueError(f"test documents of main task {main.name!r} hold no tokens") from None


def pair_train_words(main: TaskSample, aux: TaskSample) -> float:
    """Number of tokens in the training documents of both tasks ("# words / train").

    The amount of data an MTL model is trained on (Table 3b).
    """
    return float(word_count(_train_all(main)) + word_count(_train_all(aux)))


def pair_test_words(main: TaskSample, aux: TaskSample) -> float:
    """Number of tokens in the main task's test documents ("# words / test").

    The size of the evaluation set, i.e. how noisy the measured gain is (Table 3).
    """
    return float(word_count(_test_all(main)))


#: Pair-level features, in vector order: name -> function of (main, aux).
PAIR_FEATURES: dict[str, Callable[[TaskSample, TaskSample], float]] = {
    "jsd_main_aux.all": jsd_main_aux,
    "jsd_pos_class.all": jsd_pos_class_pair,
    "jsd_neg_class.all": jsd_neg_class_pair,
    "jsd_classes.all": jsd_classes_pair,
    "oov.all": oov_rate_pair,
    "words.train": pair_train_words,
    "words.test": pair_test_words,
}

#: Every feature name, in the fixed order of :func:`pair_features`' dict and of the meta-model's
#: columns: per-task ``.main``, then ``.aux``, then ``.ratio``, then the pair-level ones.
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"{name}.main" for name in TASK_FEATURES)
    + tuple(f"{name}.aux" for name in TASK_FEATURES)
    + tuple(f"{name}.ratio" for name in TASK_FEATURES)
    + tuple(PAIR_FEATURES)
)

_FEATURE_WORDING = {
    "jsd_train_test": "JSD train vs test",
    "jsd_classes": "JSD between classes",
    "jsd_pos_class": "JSD pos. class",
    "jsd_neg_class": "JSD neg. class",
    "jsd_main_aux": "JSD main vs aux",
    "words": "# words",
    "ttr": "Type-token ratio",
    "oov": "OOV rate",
    "curve_grad_10": "Curve gradient 10%",
    "curve_grad_25": "Curve gradient 25%",
    "curve_grad_50": "Curve gradient 50%",
    "curve_grad_75": "Curve gradient 75%",
    "curve_a": "Curve param a",
    "curve_c": "Curve param c",
}

#: Each feature name in the paper's wording (Table 3: "Feature / Data"), e.g.
#: ``"jsd_pos_class.main" -> "JSD pos. class / main"``.
FEATURE_LABELS: dict[str, str] = {
    name: f"{_FEATURE_WORDING[name.split('.')[0]]} / {name.split('.')[1]}"
    for name in FEATURE_NAMES
}


def task_features(task: TaskSample) -> dict[str, float]:
    """The 13 per-task features of one task, keyed by bare feature name (no ``.main``/``.aux``).

    Depends on the task alone, so a caller scoring many pairs may compute it once per task.

    Raises:
        ValueError: if the task has no loss curve, or a document set it needs holds no tokens.
    """
    _loss_curve(task)  # fail on a missing curve first, with the task's name
    return {name: float(feature(task)) for name, feature in TASK_FEATURES.items()}


def pair_features(main: TaskSample, aux: TaskSample) -> dict[str, float]:
    """All meta-features of a main/auxiliary pair, keyed and ordered by :data:`FEATURE_NAMES`.

    Args:
        main: the task whose performance MTL should improve.
        aux: the auxiliary task trained alongside it.

    Returns:
        A dict with exactly the keys of :data:`FEATURE_NAMES`, in that order, all floats.

    Raises:
        ValueError: if either task has no loss curve (naming the task), or a document set a
            feature needs holds no tokens (naming it).
    """
    main_values = task_features(main)
    aux_values = task_features(aux)
    features: dict[str, float] = {}
    features.update({f"{name}.main": value for name, value in main_values.items()})
    features.update({f"{name}.aux": value for name, value in aux_values.items()})
    features.update({f"{name}.ratio": ratio(main_values[name], aux_values[name])
                     for name in TASK_FEATURES})
    features.update({name: float(feature(main, aux)) for name, feature in PAIR_FEATURES.items()})
    return features


def feature_groups(names: Sequence[str]) -> dict[str, list[bool]]:
    """The feature subsets of the paper's Table 2, as boolean masks over ``names``.

    Returns:
        ``{"all", "no_curve", "only_curve", "only_ratio"}`` -> one bool per name: every
        feature; every feature but the loss-curve ones (``curve_*``); only the loss-curve ones;
        only the main/aux ratios (``*.ratio``).
    """
    curve = [name.startswith("curve_") for name in names]
    return {
        "all": [True] * len(names),
        "no_curve": [not is_curve for is_curve in curve],
        "only_curve": curve,
        "only_ratio": [name.endswith(".ratio") for name in names],
    }
