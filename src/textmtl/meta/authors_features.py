"""The authors' 30 meta-features, as their released code computes them (docs/meta-study.md).

"When does MTL work" names its features in §3.5 without defining all of them; the authors'
code (``KerinecEmma/investigationMTL``, ``utils.py``: ``charge_params``, ``JSD``,
``get_curve_params``, ``get_curve_gradients`` and the ``number_to_feature`` table) fixes them.
This module reimplements those definitions; nothing of it is shared with our own 46 features
(:mod:`.features`), whose choices differ (bits instead of nats, word tokens instead of
whitespace pieces, token instead of type OOV rates, a 3-parameter log fit):

* **JSD** (``JSD``): the texts of each side are concatenated *without a separator* and split on
  whitespace (case kept, punctuation attached; the last word of one post and the first of the
  next fuse when no whitespace separates them); Jensen-Shannon divergence of the two count
  distributions in *nats* (``scipy.stats.entropy``, natural log).
* **distinct words** (the ``dictio_train`` / ``dictio_test`` loops): the number of distinct
  pieces of ``re.split(r"\\W+", text)`` over the texts, the empty piece a split leaves at a
  text's ends included. The authors ran Python 2, whose ``\\W`` without ``re.UNICODE`` is ASCII
  only, so the split here uses ``re.ASCII`` (the posts are latin-1 text).
* **OOV rate**: distinct test pieces unseen in the training pieces, over distinct test pieces
  (types, not tokens).
* **curve parameters** (``get_curve_params``): ``scipy.optimize.curve_fit`` of
  ``a + b·ln(c·x + d)`` to the training-loss curve at ``x = 0, 1, ...`` (Keras's 0-based epoch
  numbers), from curve_fit's default start (all ones, Levenberg-Marquardt); the features are the
  fitted ``b`` and ``c`` (the paper's a and c). The four parameters are not identifiable (see
  :func:`textmtl.meta.features.fit_log_curve`), so ``c`` is where the optimiser stops.
* **curve gradients** (``get_curve_gradients``): the central difference
  ``(y[i+1] - y[i-1]) / 2`` at ``i = int(n·p)`` for p = 10/25/50/75 %, over the first ``n``
  epochs of the curve, where the authors' ``n`` is the epoch their scores are read at (80), not
  the whole 150-epoch curve.
* **ratios**: main / auxiliary of the first 8, 0 where the auxiliary value is 0.

Every function here is pure; the vector's order is the authors' index order (:data:`FEATURE_NAMES`).
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from .features import fit_log_curve

_NON_WORD = re.compile(r"\W+", re.ASCII)
FRACTIONS = (0.10, 0.25, 0.50, 0.75)

#: per-task features, in the authors' order (indices 0-7 main, 8-15 auxiliary, 16-23 ratios)
TASK_FEATURES = ("jsd_classes", "words", "curve_a", "curve_c", "curve_grad_10", "curve_grad_25", "curve_grad_50",
                 "curve_grad_75")
#: the authors' features 24-29 (main task and pair)
GENERAL_FEATURES = ("words.test", "jsd_test_class0.main", "jsd_test_class1.main", "jsd_class0.main_aux",
                    "jsd_class1.main_aux", "oov.main")
FEATURE_NAMES: tuple[str, ...] = (tuple(f"{n}.main" for n in TASK_FEATURES) + tuple(f"{n}.aux" for n in TASK_FEATURES)
                                  + tuple(f"{n}.ratio" for n in TASK_FEATURES) + GENERAL_FEATURES)

_TASK_WORDING = {"jsd_classes": "JSD training set cat. 0 vs cat. 1", "words": "nb words training set",
                 "curve_a": "Curve param a", "curve_c": "Curve param c", "curve_grad_10": "Curve gradient 10%",
                 "curve_grad_25": "Curve gradient 25%", "curve_grad_50": "Curve gradient 50%",
                 "curve_grad_75": "Curve gradient 75%"}
#: each feature in the wording of the authors' ``number_to_feature`` table
FEATURE_LABELS: dict[str, str] = {
    **{f"{n}.{side}": f"{_TASK_WORDING[n]} {side}" for side in ("main", "aux", "ratio") for n in TASK_FEATURES},
    "words.test": "nb words test set", "jsd_test_class0.main": "JSD test vs training set cat. 0",
    "jsd_test_class1.main": "JSD test vs training set cat. 1",
    "jsd_class0.main_aux": "JSD training set cat. 0 main vs cat. 0 aux",
    "jsd_class1.main_aux": "JSD training set cat. 1 main vs cat. 1 aux", "oov.main": "OOV rate",
}


@dataclass(frozen=True, eq=False)
class AuthorsTask:
    """One binary task as the authors' features see it.

    The word counts and sets of its texts are computed once (cached properties): a task takes
    part in many pairs.

    Attributes:
        name: for error messages.
        train: cleaned texts of the class-0 and class-1 training posts.
        test: cleaned texts of the test posts (both classes; only the main task's are read).
        loss_curve: the single-task model's mean training loss per epoch.
    """

    name: str
    train: tuple[Sequence[str], Sequence[str]]
    test: Sequence[str]
    loss_curve: np.ndarray | None = None

    @functools.cached_property
    def train_counts(self) -> tuple[CountVector, CountVector]:
        return whitespace_count_vector(self.train[0]), whitespace_count_vector(self.train[1])

    @functools.cached_property
    def test_counts(self) -> CountVector:
        return whitespace_count_vector(self.test)

    @functools.cached_property
    def train_words(self) -> frozenset[str]:
        return frozenset(_pieces([*self.train[0], *self.train[1]]))

    @functools.cached_property
    def test_words(self) -> frozenset[str]:
        return frozenset(_pieces(self.test))


# --------------------------------------------------------------------------------------------
# Primitives
# --------------------------------------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """The authors' word pieces: ``re.split(r"\\W+", text)`` with Python 2's ASCII ``\\W``."""
    return _NON_WORD.split(text)


@functools.lru_cache(maxsize=1 << 16)
def _text_pieces(text: str) -> frozenset[str]:
    # cached by text: a study draws the same posts into many (task, seed) samples, and the
    # split is most of the time of the word-set features
    return frozenset(split_words(text))


def _pieces(texts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    for text in texts:
        seen.update(_text_pieces(text))
    return seen


def distinct_words(texts: Iterable[str]) -> int:
    """Number of distinct :func:`split_words` pieces over ``texts`` (the empty piece counts)."""
    return len(_pieces(texts))


def whitespace_counts(texts: Sequence[str]) -> Counter:
    """Counts of the whitespace pieces of the texts concatenated without a separator."""
    return Counter("".join(texts).split())


@functools.lru_cache(maxsize=1 << 16)
def _text_whitespace(text: str) -> tuple[np.ndarray, tuple[str, ...], bool, bool]:
    """A text's whitespace pieces as ids, the pieces, and whether it starts / ends with whitespace."""
    pieces = tuple(text.split())
    return _PieceIds.of(pieces), pieces, text[:1].isspace(), text[-1:].isspace()


def whitespace_count_vector(texts: Sequence[str]) -> CountVector:
    """:func:`whitespace_counts` as a :class:`CountVector`, from per-text pieces (cached by text).

    Joining without a separator fuses the last piece of a text with the first of the next when
    neither side has whitespace there (an empty text is transparent, a whitespace-only text
    separates); the fused pieces are formed here, every other piece keeps its cached id.
    """
    parts: list[np.ndarray] = []
    fused: list[str] = []
    pending: str | None = None  # the last piece so far, while it may still fuse with what follows
    for text in texts:
        if not text:
            continue
        ids, pieces, leads, trails = _text_whitespace(text)
        if not pieces:  # whitespace only: a separator
            if pending is not None:
                fused.append(pending)
                pending = None
            continue
        first = 0
        if pending is not None:
            if leads:
                fused.append(pending)
            else:
                pieces_0 = pending + pieces[0]
                if len(pieces) == 1 and not trails:
                    pending = pieces_0  # the whole text fuses on into the next one
                    continue
                fused.append(pieces_0)
                first = 1
            pending = None
        last = len(pieces) if trails else len(pieces) - 1
        if first < last:
            parts.append(ids[first:last])
        if not trails:  # (a one-piece text that fused and does not end in whitespace went on above)
            pending = pieces[-1]
    if pending is not None:
        fused.append(pending)
    if fused:
        parts.append(_PieceIds.of(fused))
    if not parts:
        return CountVector(np.zeros(0, dtype=np.int64), np.zeros(0))
    types, counts = np.unique(np.concatenate(parts), return_counts=True)
    return CountVector(types, counts.astype(float))


class _PieceIds:
    """Process-wide ids of pieces, so count vectors of different texts can be aligned in numpy."""

    ids: dict[str, int] = {}

    @classmethod
    def of(cls, pieces: Iterable[str]) -> np.ndarray:
        ids = cls.ids
        return np.fromiter((ids.setdefault(piece, len(ids)) for piece in pieces), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class CountVector:
    """A count distribution as arrays: piece ids (:class:`_PieceIds`) and their counts.

    A study compares each task's counts with many others'; aligning two vectors by id in numpy
    is what makes the thousands of Jensen-Shannon divergences of a study take seconds.
    """

    ids: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, counts: Counter | CountVector) -> CountVector:
        if isinstance(counts, CountVector):
            return counts
        return cls(_PieceIds.of(counts.keys()), np.fromiter(counts.values(), dtype=float, count=len(counts)))

    @property
    def total(self) -> float:
        return float(self.counts.sum())


def _ordered_sum(values: np.ndarray) -> float:
    # summed in sorted order: the terms' order follows piece ids, which depend on what the
    # process met first; sorted, the sum rounds the same way in every process
    return float(np.sum(np.sort(values)))


def jensen_shannon_nats(p: Counter | CountVector, q: Counter | CountVector) -> float:
    """Jensen-Shannon divergence of two count distributions, natural log (max ln 2).

    Raises:
        ValueError: if either side has no pieces.
    """
    p, q = CountVector.of(p), CountVector.of(q)
    for side, counts in (("first", p), ("second", q)):
        if counts.total <= 0:
            raise ValueError(f"cannot compute Jensen-Shannon divergence: the {side} side has no words")
    types, where = np.unique(np.concatenate([p.ids, q.ids]), return_inverse=True)
    pv = np.bincount(where[:len(p.ids)], weights=p.counts, minlength=len(types))
    qv = np.bincount(where[len(p.ids):], weights=q.counts, minlength=len(types))
    pv /= pv.sum()
    qv /= qv.sum()
    m = 0.5 * (pv + qv)
    kl_pm = _ordered_sum(pv[pv > 0] * np.log(pv[pv > 0] / m[pv > 0]))
    kl_qm = _ordered_sum(qv[qv > 0] * np.log(qv[qv > 0] / m[qv > 0]))
    return min(math.log(2.0), max(0.0, 0.5 * (kl_pm + kl_qm)))


def jsd_texts(first: Sequence[str], second: Sequence[str]) -> float:
    """The authors' ``JSD(a, b)``: :func:`jensen_shannon_nats` of the :func:`whitespace_counts`."""
    return jensen_shannon_nats(whitespace_counts(first), whitespace_counts(second))


def oov_type_rate(train: Iterable[str], test: Iterable[str]) -> float:
    """Distinct test pieces unseen in training, over distinct test pieces (:func:`split_words`)."""
    return _oov(_pieces(train), _pieces(test))


def _oov(known: set[str] | frozenset[str], test_types: set[str] | frozenset[str]) -> float:
    if not test_types:
        raise ValueError("cannot compute an OOV rate: the test texts hold no words")
    return len(test_types - known) / len(test_types)


def _authors_log_curve(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a + b * np.log(c * x + d)


def curve_parameters(losses: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The authors' curve "a" and "c": the fitted ``b`` and ``c`` of ``a + b·ln(c·x + d)``
    (:func:`fit_curve_parameters` without its flag)."""
    b, c, _ = fit_curve_parameters(losses)
    return b, c


def fit_curve_parameters(losses: Sequence[float] | np.ndarray) -> tuple[float, float, bool]:
    """``(b, c, converged)`` of the authors' fit of ``a + b·ln(c·x + d)``.

    ``curve_fit`` from its default start (1, 1, 1, 1), ``x = 0..n-1``. The authors' code has no
    answer when the fit fails (it would stop); here a failed or non-finite fit falls back to our
    bounded fit (:func:`textmtl.meta.features.fit_log_curve`: its a, the same steepness, and its
    c with d = 1) and says so (``converged`` False), so one odd curve does not stop a study.
    On the authors' 150-epoch curves the fit converges; on short curves that are still flat at
    the start (a sigmoid network's first epochs) it often does not.
    """
    curve = np.asarray(losses, dtype=float)
    if curve.ndim != 1 or curve.size < 4 or not np.all(np.isfinite(curve)):
        raise ValueError(f"a loss curve must be a finite 1-D sequence of at least 4 losses; got {curve.shape}")
    return _fit_cached(tuple(curve.tolist()))


@functools.lru_cache(maxsize=8192)
def _fit_cached(values: tuple[float, ...]) -> tuple[float, float, bool]:
    curve = np.asarray(values)
    x = np.arange(curve.size, dtype=float)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # the optimiser may try c·x + d < 0 (log of a negative) on its way; and the
            # covariance it warns about is not used
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(_authors_log_curve, x, curve)
        b, c = float(params[1]), float(params[2])
        if math.isfinite(b) and math.isfinite(c):
            return b, c, True
    except (RuntimeError, ValueError):
        pass
    a, _, c, _ = fit_log_curve(curve)
    return a, c, False


def curve_gradients(losses: Sequence[float] | np.ndarray, epochs: int | None = None) -> tuple[float, ...]:
    """The authors' gradients at 10/25/50/75 % of the curve's first ``epochs`` points.

    ``(y[i+1] - y[i-1]) / 2`` at ``i = int(n·p)``, ``n = min(epochs, len(curve))``. Their code
    reads past the end for a very short curve; here ``i`` stays within ``[1, n-2]``.

    Raises:
        ValueError: on fewer than 3 points or non-finite losses.
    """
    curve = np.asarray(losses, dtype=float)
    n = curve.size if epochs is None else min(epochs, curve.size)
    if curve.ndim != 1 or n < 3 or not np.all(np.isfinite(curve[:n])):
        raise ValueError(f"curve gradients need a finite curve of at least 3 epochs; got {n}")
    out = []
    for p in FRACTIONS:
        i = min(max(int(n * p), 1), n - 2)
        out.append(float((curve[i + 1] - curve[i - 1]) / 2.0))
    return tuple(out)


def ratio(main_value: float, aux_value: float) -> float:
    """main / aux, and 0 where aux is 0 (the authors leave the zero-initialised entry)."""
    return main_value / aux_value if aux_value != 0 else 0.0


# --------------------------------------------------------------------------------------------
# The vector
# --------------------------------------------------------------------------------------------


def _curve(task: AuthorsTask) -> np.ndarray:
    if task.loss_curve is None:
        raise ValueError(f"task {task.name!r} has no loss curve; the curve features need its single-task losses")
    return np.asarray(task.loss_curve, dtype=float)


def task_features(task: AuthorsTask, gradient_epochs: int | None = None) -> dict[str, float]:
    """The 8 per-task features of one task (bare names, :data:`TASK_FEATURES`)."""
    curve = _curve(task)
    try:
        jsd = jensen_shannon_nats(*task.train_counts)
    except ValueError as error:
        raise ValueError(f"task {task.name!r}: {error}") from None
    a, c = curve_parameters(curve)
    gradients = curve_gradients(curve, gradient_epochs)
    values = [jsd, float(len(task.train_words)), a, c, *gradients]
    return dict(zip(TASK_FEATURES, values))


def main_features(main: AuthorsTask) -> dict[str, float]:
    """The authors' features 24-26 and 29, which read the main task alone (its test texts)."""
    try:
        return {
            "words.test": float(len(main.test_words)),
            "jsd_test_class0.main": jensen_shannon_nats(main.test_counts, main.train_counts[0]),
            "jsd_test_class1.main": jensen_shannon_nats(main.test_counts, main.train_counts[1]),
            "oov.main": _oov(main.train_words, main.test_words),
        }
    except ValueError as error:
        raise ValueError(f"task {main.name!r}: {error}") from None


def general_features(main: AuthorsTask, aux: AuthorsTask, main_part: dict[str, float] | None = None) -> dict[str, float]:
    """The authors' features 24-29: the main task's test texts (``main_part``, if computed
    already: :func:`main_features`), and class-wise main vs auxiliary training texts."""
    values = dict(main_part or main_features(main))
    try:
        values["jsd_class0.main_aux"] = jensen_shannon_nats(main.train_counts[0], aux.train_counts[0])
        values["jsd_class1.main_aux"] = jensen_shannon_nats(aux.train_counts[1], main.train_counts[1])
    except ValueError as error:
        raise ValueError(f"tasks {main.name!r} / {aux.name!r}: {error}") from None
    return {n: values[n] for n in GENERAL_FEATURES}


def combine(main_values: dict[str, float], aux_values: dict[str, float],
            general: dict[str, float]) -> dict[str, float]:
    """The 30-feature vector from the parts, in :data:`FEATURE_NAMES` order."""
    values = {f"{n}.main": main_values[n] for n in TASK_FEATURES}
    values.update({f"{n}.aux": aux_values[n] for n in TASK_FEATURES})
    values.update({f"{n}.ratio": ratio(main_values[n], aux_values[n]) for n in TASK_FEATURES})
    values.update(general)
    return {n: float(values[n]) for n in FEATURE_NAMES}


def pair_features(main: AuthorsTask, aux: AuthorsTask, gradient_epochs: int | None = None) -> dict[str, float]:
    """All 30 features of a main/auxiliary pair, keyed and ordered by :data:`FEATURE_NAMES`."""
    return combine(task_features(main, gradient_epochs), task_features(aux, gradient_epochs),
                   general_features(main, aux))


#: Table 2's feature groups as the authors' ``efficiency_prediction.py`` selects them (column
#: indices it deletes): its "Only curve data" deletes the 18 curve features (keeping the 12
#: others), its "Without curve data" keeps the curve features and the OOV rate, and the paper's
#: "Only using ratio features" row carries the number of its "Without ratio data". Their keys
#: are the paper's rows, as :func:`textmtl.meta.features.feature_groups`'.
AUTHORS_CODE_GROUPS: dict[str, tuple[int, ...]] = {
    "all": tuple(range(30)),
    "no_curve": tuple(sorted(set(range(30)) - {0, 1, 8, 9, 16, 17, 24, 25, 26, 27, 28})),
    "only_curve": tuple(sorted(set(range(30)) - {18, 3, 10, 11, 19, 2, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23})),
    "only_ratio": tuple(sorted(set(range(30)) - set(range(16, 24)))),
}


def feature_groups(names: Sequence[str], how: str = "named") -> dict[str, list[bool]]:
    """Table 2's groups over the 30 features: "named" (what the rows say: curve features are
    ``curve_*``, ratios ``*.ratio``) or "authors_code" (:data:`AUTHORS_CODE_GROUPS`)."""
    if how == "authors_code":
        if tuple(names) != FEATURE_NAMES:
            raise ValueError("the authors' code groups are defined over their 30 features in their order")
        return {group: [i in keep for i in range(len(names))] for group, keep in AUTHORS_CODE_GROUPS.items()}
    curve = [name.startswith("curve_") for name in names]
    return {"all": [True] * len(names), "no_curve": [not c for c in curve], "only_curve": curve,
            "only_ratio": [name.endswith(".ratio") for name in names]}
