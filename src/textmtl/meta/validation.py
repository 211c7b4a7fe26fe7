"""Does the meta-model generalise beyond 20 Newsgroups? Its predictions against measured gains.

``textmtl study fdu`` measures the gain of every ordered pair of FDU-MTL domains with the
study's protocol; here each candidate meta-model predicts P(MTL helps) for those pairs, and two
numbers judge it:

* **Spearman's ρ** between P and the measured gain (does a higher P mean a larger gain?);
* **AUC** of P for the gain's sign (does P separate the pairs that gain from those that lose?).

Against two baselines that use no meta-features:

* **main task's average gain**: for pair (m, a), the mean measured gain of m with every other
  auxiliary task a' != a (leave-this-pair-out, so the pair's own gain is not used). It asks
  "does this task gain from MTL in general?", which needs the task's other pairs measured;
* **constant**: the same P for every pair (AUC 0.5; ρ undefined, shown as n/a).

Candidates: the models fitted on the 20 Newsgroups study (UNRELATED, RELATED, both), and
models that also see FDU pairs, measured by leave-one-task-out: for each FDU task t, a model is
fitted without any pair involving t and predicts the pairs whose main task is t, so no
prediction comes from a model that saw its pair, its main task or its auxiliary task.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ..errors import DataError
from .metamodel import MetaModel, MetaSettings, fit_meta_model, fit_with_diagnostics, gain_labels
from .study import PairOutcome, task_name

PAIR_COLUMNS = ("main", "aux", "single", "mtl", "gain")


def write_pairs(path: Path, outcomes: list[PairOutcome], features: np.ndarray, names: Sequence[str]) -> None:
    """One row per pair: main and auxiliary task, mean single- and multi-task score, gain, and
    the pair's meta-features; what a validation or a refit reads without the run store."""
    temporary = Path(str(path) + ".tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*PAIR_COLUMNS, *names])
        for outcome, row in zip(outcomes, features):
            writer.writerow([task_name(outcome.main), task_name(outcome.aux), f"{np.mean(outcome.single_f1):.6f}",
                             f"{np.mean(outcome.mtl_f1):.6f}", f"{outcome.gain:.6f}", *(repr(float(v)) for v in row)])
    temporary.replace(path)


@dataclass
class PairTable:
    """What :func:`read_pairs` reads: task names, gains and the feature matrix."""

    main: list[str]
    aux: list[str]
    gain: np.ndarray
    features: np.ndarray
    names: tuple[str, ...]


def read_pairs(path: Path, names: Sequence[str] | None = None) -> PairTable:
    """Read a :func:`write_pairs` file; ``names``: the feature columns expected (in this order).

    Raises:
        DataError: one line naming the file and what is wrong.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise DataError(f"{path}: cannot read the pairs file ({error.strerror or error})") from None
    if not rows or tuple(rows[0][:len(PAIR_COLUMNS)]) != PAIR_COLUMNS:
        raise DataError(f"{path}: expected a header starting {','.join(PAIR_COLUMNS)}, as a study writes")
    header = rows[0][len(PAIR_COLUMNS):]
    wanted = list(names) if names is not None else header
    missing = [n for n in wanted if n not in header]
    if missing:
        raise DataError(f"{path}: feature column {missing[0]!r} is missing ({len(missing)} missing); "
                        "expected the study's feature set")
    columns = [len(PAIR_COLUMNS) + header.index(n) for n in wanted]
    main, aux, gains, matrix = [], [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise DataError(f"{path}: line {number} has {len(row)} fields; expected {len(rows[0])}")
        try:
            values = [float(row[c]) for c in columns]
            gain = float(row[4])
        except ValueError:
            raise DataError(f"{path}: line {number}: expected numbers in the gain and feature columns") from None
        if not all(math.isfinite(v) for v in [gain, *values]):
            raise DataError(f"{path}: line {number}: expected finite numbers, found nan or inf")
        main.append(row[0])
        aux.append(row[1])
        gains.append(gain)
        matrix.append(values)
    if not main:
        raise DataError(f"{path}: no pairs")
    return PairTable(main, aux, np.asarray(gains), np.asarray(matrix, dtype=float), tuple(wanted))


@dataclass
class Judgement:
    """How one predictor's scores rank the measured gains."""

    name: str
    spearman: float
    spearman_p: float
    auc: float
    pairs: int

    def row(self) -> list[str]:
        def fmt(value: float, digits: int = 3) -> str:
            return "n/a" if math.isnan(value) else f"{value:+.{digits}f}" if digits == 3 else f"{value:.{digits}g}"
        return [self.name, fmt(self.spearman), fmt(self.spearman_p, 2), "n/a" if math.isnan(self.auc) else
                f"{self.auc:.3f}", str(self.pairs)]


def judge(name: str, scores: np.ndarray, gains: np.ndarray) -> Judgement:
    """Spearman's ρ of ``scores`` with ``gains`` and their AUC for ``gains > 0``."""
    scores, gains = np.asarray(scores, dtype=float), np.asarray(gains, dtype=float)
    labels = gain_labels(gains)
    if np.ptp(scores) == 0:  # a constant: no ranking at all
        return Judgement(name, math.nan, math.nan, 0.5, len(gains))
    rho, p_value = spearmanr(scores, gains)
    auc = roc_auc_score(labels, scores) if 0 < labels.sum() < len(labels) else math.nan
    return Judgement(name, float(rho), float(p_value), float(auc), len(gains))


def main_task_average(main: Sequence[str], gains: np.ndarray) -> np.ndarray:
    """For each pair, the mean gain of its main task over its *other* pairs (NaN-free: a main
    task with one pair gets the overall mean of the other pairs)."""
    gains = np.asarray(gains, dtype=float)
    out = np.empty(len(gains))
    for i, task in enumerate(main):
        others = [j for j, t in enumerate(main) if t == task and j != i]
        out[i] = gains[others].mean() if others else np.delete(gains, i).mean()
    return out


def predict_all(model: MetaModel, features: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """P(MTL helps) of the model for every row of ``features`` (columns in ``names`` order)."""
    return np.array([model.predict_proba(dict(zip(names, row))) for row in features])


def leave_one_task_out(target: PairTable, extra: list[PairTable], meta: MetaSettings) -> np.ndarray:
    """P for every pair of ``target`` from models that never saw a pair of its main task.

    For each main task t of ``target``: fit on every ``extra`` pair and every ``target`` pair
    that does not involve t (as main or auxiliary task), then predict the pairs whose main task is t.
    """
    predictions = np.full(len(target.gain), np.nan)
    for task in sorted(set(target.main)):
        keep = np.array([m != task and a != task for m, a in zip(target.main, target.aux)])
        X = np.vstack([*(t.features for t in extra), target.features[keep]])
        y = gain_labels(np.concatenate([*(t.gain for t in extra), target.gain[keep]]))
        model = fit_meta_model(X, y, list(target.names), scaling=meta.scaling, solver=meta.solver)
        rows = np.flatnonzero(np.array(target.main) == task)
        predictions[rows] = predict_all(model, target.features[rows], target.names)
    return predictions


@dataclass
class Validation:
    """What :func:`validate` found.

    Attributes:
        judged: every predictor judged on the target's gains, in table order.
        scores: every predictor's scores of the target pairs.
        fitted_on: for each meta-model predictor, the pair tables its shipped version is fitted
            on (a leave-one-task-out predictor ships as one fit on all of them).
        independent: label -> the judgements on that independent set of gains.
    """

    judged: list[Judgement]
    scores: dict[str, np.ndarray]
    fitted_on: dict[str, list[PairTable]]
    independent: dict[str, list[Judgement]]

    def best_model(self) -> Judgement:
        """The meta-model whose P ranks the target's gains best (Spearman's ρ; baselines excluded)."""
        models = [j for j in self.judged if j.name in self.fitted_on and not math.isnan(j.spearman)]
        if not models:
            raise ValueError("no meta-model could be judged")
        return max(models, key=lambda j: j.spearman)

    def shipped_model(self) -> Judgement:
        """The model ``textmtl study fdu`` ships: the one fitted on every corpus (the references
        and the target's pairs; measured with the target's tasks held out) when it could be
        fitted, else :meth:`best_model`.

        Why not simply the best-ranking one: a user's tasks come from neither corpus, and on the
        FDU study (docs/meta-study.md) the model of both corpora ranks held-out FDU tasks nearly
        as well as the FDU-only model (mean ρ over the two gain measurements 0.53 against 0.55),
        having seen topic and sentiment tasks alike; the per-corpus models transfer poorly.
        """
        every = [j for j in self.judged if j.name in self.fitted_on and "+ target pairs" in j.name]
        return every[0] if every and not math.isnan(every[0].spearman) else self.best_model()

    def judgement(self, name: str) -> Judgement:
        return next(j for j in self.judged if j.name == name)


MAIN_AVERAGE = "baseline: main task's average gain over its other pairs"
CONSTANT = "baseline: constant"


def validate(target: PairTable, references: dict[str, PairTable], meta: MetaSettings,
             independent: dict[str, np.ndarray] | None = None) -> Validation:
    """Every candidate and baseline judged on ``target``'s gains (and on each ``independent``
    set of gains of the same pairs, e.g. the measured-advice matrix).

    Args:
        target: the pairs to predict (an FDU study's :func:`read_pairs`).
        references: name -> pairs of another corpus (e.g. "20NG UNRELATED"); a model is fitted
            on each, on all of them together, and on all of them plus ``target``'s own pairs
            with one task held out at a time.
        meta: scaling and solver of the fits (the study's).
    """
    names = list(target.names)
    scores: dict[str, np.ndarray] = {}
    fitted_on: dict[str, list[PairTable]] = {}

    def fit(tables: list[PairTable]) -> MetaModel:
        X = np.vstack([t.features for t in tables])
        y = gain_labels(np.concatenate([t.gain for t in tables]))
        return fit_meta_model(X, y, names, scaling=meta.scaling, solver=meta.solver)

    groups = [[name] for name in references] + ([list(references)] if len(references) > 1 else [])
    for group in groups:
        name = f"meta-model fitted on {' + '.join(group)}"
        fitted_on[name] = [references[g] for g in group]
        scores[name] = predict_all(fit(fitted_on[name]), target.features, names)
    everything = list(references.values())
    for name, extra in ((f"meta-model fitted on {' + '.join(references)} + target pairs (leave one task out)",
                         everything), ("meta-model fitted on target pairs only (leave one task out)", [])):
        try:
            scores[name] = leave_one_task_out(target, extra, meta)
            fitted_on[name] = [*extra, target]
        except ValueError:  # too few pairs of one class once a task is held out (a small study)
            pass
    scores[MAIN_AVERAGE] = main_task_average(target.main, target.gain)
    scores[CONSTANT] = np.full(len(target.gain), 0.5)
    judged = [judge(name, s, target.gain) for name, s in scores.items()]
    others = {}
    for label, gains in (independent or {}).items():
        own = {**scores, MAIN_AVERAGE: main_task_average(target.main, gains)}
        others[label] = [judge(name, s, gains) for name, s in own.items()]
    return Validation(judged, scores, fitted_on, others)


def ship(validation: Validation, name: str, meta: MetaSettings, *, runs: int = 100,
         trained_on: dict | None = None) -> MetaModel:
    """The model ``name`` of ``validation`` fitted on all its pairs, with its cross-validation,
    feature ranges (:func:`fit_with_diagnostics`) and out-of-corpus numbers in ``trained_on``."""
    tables = validation.fitted_on[name]
    X = np.vstack([t.features for t in tables])
    y = gain_labels(np.concatenate([t.gain for t in tables]))
    judged = validation.judgement(name)

    def numbers(j: Judgement) -> dict:
        return {"spearman": None if math.isnan(j.spearman) else j.spearman, "auc": j.auc}

    info = dict(trained_on or {})
    info.update({
        "fitted_on": name.removeprefix("meta-model fitted on ").replace(" (leave one task out)", ""),
        "pairs": int(len(y)), "pairs_mtl_helps": int(y.sum()), "scaling": meta.scaling, "solver": meta.solver,
        "out_of_corpus": {
            "pairs": judged.pairs, "model": numbers(judged),
            "main_task_average": numbers(validation.judgement(MAIN_AVERAGE)), "constant": {"auc": 0.5},
            "held_out": "leave one task out" in name,
            "independent": {label: {"model": numbers(next(j for j in js if j.name == name)),
                                    "main_task_average": numbers(next(j for j in js if j.name == MAIN_AVERAGE))}
                            for label, js in validation.independent.items()},
        },
    })
    return fit_with_diagnostics(X, y, list(tables[0].names), meta=meta, runs=runs, trained_on=info)


def markdown(judged: list[Judgement], title: str) -> str:
    header = ["predictor", "Spearman ρ with the gain", "p", "AUC (gain > 0)", "pairs"]
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(j.row()) + " |" for j in judged]
    return "\n".join(lines) + "\n"
