"""From stored runs to the paper's Tables 1-3 and Figures 4-5, with the paper's numbers beside ours."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.corpora.newsgroups import TOPIC_HIERARCHY, topic_path
from . import authors_features as authors
from .corpus import StudyCorpus
from .features import FEATURE_LABELS, FEATURE_NAMES, PAIR_FEATURES, TASK_FEATURES, TaskSample, feature_groups, ratio, task_features
from .metamodel import CrossValidation, MetaModel, MetaSettings, cross_validate, fit_meta_model, gain_labels
from .study import PairOutcome, Plan, StudySettings, loss_curve, mean_loss_curve

#: Table 1 of the paper: mean F1 single-task, multi-task, fraction of pairs improved
PAPER_TABLE1 = {"related": (0.834, 0.843, 0.719), "unrelated": (0.893, 0.897, 0.572)}
#: Table 2: mean F1 of the meta-model (100 x 5-fold CV) per feature group
PAPER_TABLE2 = {"all": (0.67, 0.57), "no_curve": (0.66, 0.53), "only_curve": (0.71, 0.58), "only_ratio": (0.69, 0.57)}
GROUP_TITLES = {"all": "Using all features", "no_curve": "Not using curve features",
                "only_curve": "Only using curve features", "only_ratio": "Only using ratio features"}
#: Table 3a (inverse ranks, RELATED) and 3b (mean coefficients, UNRELATED): (feature, data, value)
PAPER_TABLE3A = [
    ("JSD pos. class", "main", 23), ("Curve param a", "main", 21), ("JSD pos. class", "ratio", 21),
    ("Curve gradient 10%", "main", 20), ("Curve gradient 10%", "ratio", 18), ("JSD between classes", "aux", 17),
    ("# words", "ratio", 17), ("OOV rate", "all", 17), ("Curve param c", "aux", 16),
    ("Curve gradient 50%", "ratio", 16), ("JSD neg. class", "aux", 16), ("# words", "main", 15),
    ("Curve gradient 75%", "main", 14), ("Curve gradient 25%", "aux", 14), ("JSD between classes", "ratio", 14),
    ("Curve gradient 75%", "ratio", 14), ("JSD neg. class", "all", 14), ("Curve gradient 25%", "ratio", 13),
    ("Curve gradient 50%", "aux", 12), ("Curve gradient 75%", "aux", 12), ("Curve param a", "aux", 11),
    ("Curve param a", "ratio", 11), ("# words", "test", 11), ("Curve gradient 50%", "main", 10),
    ("Curve param c", "ratio", 10), ("JSD pos. class", "all", 10), ("Curve param c", "main", 9),
    ("# words", "aux", 9), ("Curve gradient 10%", "aux", 9), ("Curve gradient 25%", "main", 8),
]
PAPER_TABLE3B = [
    ("JSD pos. class", "all", -0.93), ("JSD neg. class", "all", -0.88), ("OOV rate", "all", 0.81),
    ("JSD between classes", "all", 0.64), ("JSD between classes", "aux", 0.63), ("JSD between classes", "main", 0.58),
    ("# words", "test", -0.49), ("# words", "train", -0.47), ("Curve param a", "ratio", 0.34),
    ("Curve param a", "aux", -0.31), ("Curve gradient 75%", "ratio", 0.26), ("Curve param c", "ratio", 0.24),
    ("# words", "aux", -0.21), ("Curve param c", "main", -0.17), ("Curve gradient 75%", "main", 0.17),
    ("# words", "main", 0.13), ("Curve gradient 50%", "aux", -0.11), ("Curve gradient 75%", "aux", 0.10),
    ("JSD neg. class", "aux", -0.08), ("Curve gradient 50%", "main", -0.07), ("Curve param a", "main", 0.07),
    ("JSD pos. class", "aux", 0.07), ("Curve gradient 25%", "aux", -0.05), ("Curve gradient 10%", "ratio", 0.04),
    ("Curve gradient 25%", "ratio", 0.04), ("Curve gradient 25%", "main", 0.03), ("Curve gradient 50%", "ratio", -0.03),
    ("Curve gradient 10%", "aux", -0.02), ("Curve param c", "aux", -0.02), ("Curve gradient 10%", "main", 0.01),
]
_PAPER_FEATURE = {"JSD pos. class": "jsd_pos_class", "JSD neg. class": "jsd_neg_class",
                  "JSD between classes": "jsd_classes", "Curve param a": "curve_a", "Curve param c": "curve_c",
                  "Curve gradient 10%": "curve_grad_10", "Curve gradient 25%": "curve_grad_25",
                  "Curve gradient 50%": "curve_grad_50", "Curve gradient 75%": "curve_grad_75",
                  "# words": "words", "OOV rate": "oov"}

#: The paper's Table 3b rows as the authors' 30 features. The paper labels its rows itself; the
#: released coefficients (exp2_0/results200/efficiency_epoch80, "Coeffs") match its 30 values one
#: to one, which names each row's column: e.g. "JSD pos. class / all" (-0.93) is their feature 26,
#: "JSD test vs training set cat. 1" (-0.9327), and "# words / train" (-0.47) their 17, the ratio.
AUTHORS_PAPER_3B: dict[tuple[str, str], str] = {
    ("JSD pos. class", "all"): "jsd_test_class1.main", ("JSD neg. class", "all"): "jsd_test_class0.main",
    ("OOV rate", "all"): "oov.main", ("JSD between classes", "all"): "jsd_classes.ratio",
    ("JSD between classes", "aux"): "jsd_classes.aux", ("JSD between classes", "main"): "jsd_classes.main",
    ("# words", "test"): "words.test", ("# words", "train"): "words.ratio",
    ("JSD neg. class", "aux"): "jsd_class0.main_aux", ("JSD pos. class", "aux"): "jsd_class1.main_aux",
    ("# words", "main"): "words.main", ("# words", "aux"): "words.aux",
    **{(feature, data): f"{_PAPER_FEATURE[feature]}.{data}"
       for feature in ("Curve param a", "Curve param c", "Curve gradient 10%", "Curve gradient 25%",
                       "Curve gradient 50%", "Curve gradient 75%") for data in ("main", "aux", "ratio")},
}
#: Table 3a (RELATED) uses other labels for some rows; no released file gives its values. Rows
#: named as in 3b map as there; "# words / ratio" and "JSD between classes / ratio" are 3b's
#: "train" and "all" (the ratio columns 17 and 16). "JSD pos. class / main" and "/ ratio" are the
#: two columns left (0, JSD between classes main, and 28): which is which cannot be told (n/a).
AUTHORS_PAPER_3A: dict[tuple[str, str], str | None] = {
    **AUTHORS_PAPER_3B, ("# words", "ratio"): "words.ratio", ("JSD between classes", "ratio"): "jsd_classes.ratio",
    ("JSD pos. class", "main"): None, ("JSD pos. class", "ratio"): None,
}


#: topic labels for the figures: the last name part, unless two topics share it
SHORT_TOPIC = {"comp.sys.ibm.pc.hardware": "ibm.pc", "comp.sys.mac.hardware": "mac", "comp.windows.x": "windows.x",
               "comp.os.ms-windows.misc": "ms-windows", "talk.politics.misc": "politics.misc",
               "talk.religion.misc": "religion.misc", "comp.graphics": "graphics"}


def paper_feature_name(feature: str, data: str) -> str:
    """Our name of a feature row of the paper's Table 3, e.g. ("JSD pos. class", "main") -> "jsd_pos_class.main"."""
    return f"{_PAPER_FEATURE[feature]}.{data}"


def feature_set(settings: StudySettings) -> tuple[tuple[str, ...], dict[str, str]]:
    """The names (in column order) and labels of the study's meta-features."""
    if settings.features == "authors":
        return authors.FEATURE_NAMES, authors.FEATURE_LABELS
    return FEATURE_NAMES, FEATURE_LABELS


def task_sample(corpus: StudyCorpus, task: tuple[str, str], curve: np.ndarray, seed: int = 0) -> TaskSample:
    """Our features' view of topic A (class 0) vs topic B (class 1) in the run of ``seed``."""
    a, b = task
    if corpus.settings.draws_per_seed:
        docs = corpus.documents(a, b, seed, as_tokens=True)
        return TaskSample(f"{a}|{b}", docs.train, docs.test_by_class(), curve)
    return TaskSample(f"{a}|{b}", (corpus.tokens("train", a), corpus.tokens("train", b)),
                      (corpus.tokens("test", a), corpus.tokens("test", b)), curve)


def feature_matrix(outcomes: list[PairOutcome], corpus: StudyCorpus, plan: Plan, settings: StudySettings,
                   rows: dict[str, Any], log: Callable[[str], None] | None = None) -> np.ndarray:
    """One row of meta-features per pair, columns in :func:`feature_set` order.

    Our 46 (features "textmtl") read the fixed data sample and the loss curve averaged over
    seeds. Where the sample is drawn anew for every seed (per-task sampling), and for the
    authors' 30 always, each seed's features are computed from that seed's documents and
    curve, and the row is their mean over seeds (with one seed, as the authors ran UNRELATED,
    exactly their features). Per-task parts are computed once per task and seed.
    """
    if settings.features == "authors":
        return _authors_matrix(outcomes, corpus, plan, settings, rows, log)
    per_seed = corpus.settings.draws_per_seed
    samples: dict[tuple, TaskSample] = {}
    per_task: dict[tuple, dict[str, float]] = {}

    def values_of(task: tuple[str, str], seed: int | None) -> tuple[TaskSample, dict[str, float]]:
        if (task, seed) not in samples:
            curve = (mean_loss_curve(plan, settings, rows, task) if seed is None
                     else loss_curve(plan, settings, rows, task, seed))
            samples[task, seed] = task_sample(corpus, task, curve, seed or 0)
            per_task[task, seed] = task_features(samples[task, seed])
        return samples[task, seed], per_task[task, seed]

    matrix = []
    for outcome in outcomes:
        vectors = []
        for seed in (range(settings.seeds) if per_seed else [None]):
            (main, main_values), (aux, aux_values) = values_of(outcome.main, seed), values_of(outcome.aux, seed)
            values = {f"{n}.main": v for n, v in main_values.items()}
            values.update({f"{n}.aux": v for n, v in aux_values.items()})
            values.update({f"{n}.ratio": ratio(main_values[n], aux_values[n]) for n in TASK_FEATURES})
            values.update({n: float(f(main, aux)) for n, f in PAIR_FEATURES.items()})
            vectors.append([values[n] for n in FEATURE_NAMES])
        matrix.append(np.mean(vectors, axis=0))
    return np.asarray(matrix, dtype=float)


def _authors_matrix(outcomes: list[PairOutcome], corpus: StudyCorpus, plan: Plan, settings: StudySettings,
                    rows: dict[str, Any], log: Callable[[str], None] | None) -> np.ndarray:
    """The authors' 30 features per pair (mean over seeds). A task's classes are in name order,
    as scikit-learn labels ``fetch_20newsgroups(categories=...)`` in the authors' code: their
    "cat. 0" of a task is its alphabetically first topic, for main and auxiliary alike."""
    tasks: dict[tuple, authors.AuthorsTask] = {}
    per_task: dict[tuple, dict[str, float]] = {}
    as_main: dict[tuple, dict[str, float]] = {}
    not_converged: set[tuple] = set()

    def task_of(task: tuple[str, str], seed: int) -> tuple[tuple, authors.AuthorsTask, dict[str, float]]:
        key = (tuple(sorted(task)), seed)
        if key not in tasks:
            a, b = key[0]
            docs = corpus.documents(a, b, seed)
            tasks[key] = authors.AuthorsTask(f"{a}|{b}", docs.train, docs.test,
                                             loss_curve(plan, settings, rows, (a, b), seed))
            per_task[key] = authors.task_features(tasks[key], settings.gradient_epochs)
            if not authors.fit_curve_parameters(tasks[key].loss_curve)[2]:
                not_converged.add(key)
        return key, tasks[key], per_task[key]

    matrix = []
    for outcome in outcomes:
        vectors = []
        for seed in range(settings.seeds):
            (key, main, main_values), (_, aux, aux_values) = task_of(outcome.main, seed), task_of(outcome.aux, seed)
            if key not in as_main:  # the main task's test-text features do not depend on the auxiliary task
                as_main[key] = authors.main_features(main)
            values = authors.combine(main_values, aux_values, authors.general_features(main, aux, as_main[key]))
            vectors.append([values[n] for n in authors.FEATURE_NAMES])
        matrix.append(np.mean(vectors, axis=0))
    if not_converged and log is not None:
        log(f"authors' curve fit: {len(not_converged)} of {len(tasks)} single-task curves did not converge from "
            "curve_fit's default start; their curve a / c come from our bounded fit (docs/meta-study.md)")
    return np.asarray(matrix, dtype=float)


@dataclass
class ProblemReport:
    """Everything computed for one problem."""

    problem: str
    outcomes: list[PairOutcome]
    features: np.ndarray
    labels: np.ndarray
    ablations: dict[str, CrossValidation | None]
    names: tuple[str, ...] = FEATURE_NAMES
    labels_of: dict[str, str] | None = None
    meta: MetaSettings = MetaSettings()
    full_fit: MetaModel | None = None  # one model on every pair (Table 3b "full_fit", advisor.json)

    @property
    def single_f1(self) -> float:
        return float(np.mean([np.mean(o.single_f1) for o in self.outcomes]))

    @property
    def mtl_f1(self) -> float:
        return float(np.mean([np.mean(o.mtl_f1) for o in self.outcomes]))

    @property
    def improved(self) -> float:
        """Fraction of pairs whose multi-task F1 beats single-task, averaged over seeds."""
        per_seed = np.array([[m > s for s, m in zip(o.single_f1, o.mtl_f1)] for o in self.outcomes], dtype=float)
        return float(per_seed.mean())

    @property
    def constant_score(self) -> float:
        """What a constant answer scores: the majority class's share (accuracy), or the F1 of
        always answering "helps" (2p / (1 + p))."""
        p = float(np.mean(self.labels))
        return max(p, 1 - p) if self.meta.score == "accuracy" else 2 * p / (1 + p)


def analyse(problem: str, outcomes: list[PairOutcome], features: np.ndarray, *, runs: int = 100,
            folds: int = 5, names: tuple[str, ...] = FEATURE_NAMES, meta: MetaSettings = MetaSettings(),
            labels_of: dict[str, str] | None = None, command: str = "") -> ProblemReport:
    """Meta-model cross-validation for every feature group of Table 2, and the full fit."""
    labels = gain_labels([o.gain for o in outcomes])
    groups = (authors.feature_groups(names, meta.groups) if names == authors.FEATURE_NAMES
              else feature_groups(names))
    ablations: dict[str, CrossValidation | None] = {}
    for group, mask in groups.items():
        try:
            ablations[group] = cross_validate(features[:, np.asarray(mask)], labels, runs=runs, folds=folds,
                                              settings=meta)
        except ValueError:  # too few pairs on one side (e.g. a --quick study): no meta-model
            ablations[group] = None
    report = ProblemReport(problem, outcomes, features, labels, ablations, names, labels_of or FEATURE_LABELS, meta)
    try:
        report.full_fit = fit_meta_model(features, labels, list(names), scaling=meta.scaling, solver=meta.solver,
                                         trained_on={"problem": problem, "pairs": len(outcomes),
                                                     "pairs_mtl_helps": int(labels.sum()), "command": command,
                                                     "features": "authors" if names == authors.FEATURE_NAMES
                                                     else "textmtl", "scaling": meta.scaling})
    except ValueError:
        report.full_fit = None
    return report


def advisor_model(report: ProblemReport, command: str) -> MetaModel:
    """The meta-model over all features, fitted on every pair of ``report``.

    Raises:
        ValueError: when the pairs are all of one class (no model can be fitted).
    """
    if report.full_fit is None:
        return fit_meta_model(report.features, report.labels, list(report.names), scaling=report.meta.scaling,
                              solver=report.meta.solver)  # raises, saying why
    report.full_fit.trained_on["command"] = command
    return report.full_fit


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _seed_spread(report: ProblemReport, attribute: str) -> str:
    """Mean over pairs, as mean ± std over seeds."""
    per_seed = np.mean([getattr(o, attribute) for o in report.outcomes], axis=0)
    spread = f" ± {np.std(per_seed, ddof=1):.3f}" if len(per_seed) > 1 else ""
    return f"{np.mean(per_seed):.3f}{spread}"


def _score_name(average: str) -> str:
    return "accuracy (F1 micro)" if average == "micro" else f"F1 ({average})"


def table1(reports: list[ProblemReport], seeds: int, f1_epoch: int | None = None,
           average: str = "macro") -> tuple[str, list[list[str]]]:
    score = _score_name(average)
    header = ["problem", "pairs", f"single-task {score}", f"multi-task {score}", "improved", "paper single",
              "paper multi", "paper improved"]
    rows = []
    for r in reports:
        p = PAPER_TABLE1[r.problem]
        rows.append([r.problem.upper(), str(len(r.outcomes)), _seed_spread(r, "single_f1"),
                     _seed_spread(r, "mtl_f1"), _fmt(r.improved), *(_fmt(v) for v in p)])
    at = f" at epoch {f1_epoch}" if f1_epoch else ""
    return _markdown(header, rows, f"Table 1: mean test {score} of the main task{at} over pairs and {seeds} "
                                   "seed(s); 'improved' = share of (pair, seed) where multi-task beats "
                                   "single-task"), [header, *rows]


def table2(reports: list[ProblemReport]) -> tuple[str, list[list[str]]]:
    meta = reports[0].meta if reports else MetaSettings()
    score = "accuracy" if meta.score == "accuracy" else "F1"
    header = ["features"]
    for r in reports:
        header += [f"{r.problem.upper()} {score} (mean ± std over runs)", f"{r.problem.upper()} paper"]
    rows = []
    for group, title in GROUP_TITLES.items():
        row = [title]
        for r in reports:
            cv = r.ablations.get(group)
            row.append("n/a" if cv is None else f"{cv.mean_f1:.3f} ± {cv.std_f1:.3f}")
            row.append(_fmt(PAPER_TABLE2[group][0 if r.problem == "related" else 1], 2))
        rows.append(row)
    constant = ["Constant answer (majority class)" if meta.score == "accuracy" else "Constant answer 'helps'"]
    for r in reports:
        constant += [_fmt(r.constant_score), ""]
    rows.append(constant)
    folds = "StratifiedKFold" if meta.splits == "stratified" else "KFold"
    how = f"{folds}, {meta.scaling} scaling, {meta.solver}, groups as {meta.groups.replace('_', ' ')}"
    return _markdown(header, rows, f"Table 2: meta-model {score} (logistic regression, repeated 5-fold CV: {how}) "
                                   "per feature group"), [header, *rows]


def table3(report: ProblemReport, which: str) -> tuple[str, list[list[str]]]:
    """Table 3a (``which="ranks"``) or 3b (``"coefficients"``): the paper's rows with ours beside."""
    cv = report.ablations.get("all")
    names, labels = report.names, report.labels_of or FEATURE_LABELS
    is_authors = names == authors.FEATURE_NAMES
    paper = PAPER_TABLE3A if which == "ranks" else PAPER_TABLE3B
    if which == "ranks":
        ours = None if cv is None else cv.inverse_ranks.mean(0)
    elif report.meta.coefficients == "full_fit":
        ours = None if report.full_fit is None else np.asarray(report.full_fit.coef)
    else:
        ours = None if cv is None else cv.coefficients.mean(0)
    order = {n: i for i, n in enumerate(names)}
    what = "inverse rank" if which == "ranks" else "coefficient"
    header = ["feature", "data", f"paper {what}", f"our {what}", "our position"]
    positions = {} if ours is None else {names[i]: p + 1 for p, i in enumerate(np.argsort(
        -(ours if which == "ranks" else np.abs(ours)), kind="stable"))}
    rows = []
    for feature, data, value in paper:
        if is_authors:
            name = (AUTHORS_PAPER_3A if which == "ranks" else AUTHORS_PAPER_3B).get((feature, data))
        else:
            name = paper_feature_name(feature, data)
        mine = None if ours is None or name is None else float(ours[order[name]])
        rows.append([feature, data, f"{value:g}", _fmt(mine, 1 if which == "ranks" else 2),
                     str(positions.get(name, "n/a"))])
    if which == "ranks":
        title = (f"Table 3a: mean inverse rank (|coefficient| rank, {len(names)} = most important) for "
                 f"{report.problem.upper()}")
    else:
        fitted = ("one model fitted on all pairs" if report.meta.coefficients == "full_fit"
                  else "mean over the cross-validation models")
        title = (f"Table 3b: coefficient ({fitted}; features {report.meta.scaling}-scaled) for "
                 f"{report.problem.upper()}")
    mapping = ("; the paper's labels as the authors' columns (docs/meta-study.md)" if is_authors else "")
    text = _markdown(header, rows, title + f"; the paper's 30 rows, ours beside (position among our {len(names)} "
                                           f"features){mapping}")
    if ours is not None:  # and what our model ranks highest, whether or not the paper lists it
        key = ours if which == "ranks" else np.abs(ours)
        top = [[labels[names[i]], _fmt(float(ours[i]), 2)] for i in np.argsort(-key, kind="stable")[:10]]
        text += "\n" + _markdown(["our top 10 feature", what], top, f"our 10 most important features ({report.problem.upper()})")
    return text, [header, *rows]


def _markdown(header: list[str], rows: list[list[str]], title: str) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, table: list[list[str]]) -> None:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(table)


def figure4(reports: list[ProblemReport], path: Path, score: str = "F1") -> None:
    """Mean test score over epochs, single- vs multi-task (the paper's Figure 4), one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 3.6), squeeze=False)
    for ax, r in zip(axes[0], reports):
        for key, label, marker in (("single_curve", "single-task", "x"), ("mtl_curve", "multi-task", "o")):
            epochs = sorted(set.intersection(*(set(getattr(o, key)) for o in r.outcomes)))
            ax.plot(epochs, [np.mean([getattr(o, key)[e] for o in r.outcomes]) for e in epochs],
                    marker=marker, markersize=4 if len(epochs) <= 40 else 2, label=label)
        ax.set_title(f"{r.problem.upper()} TOPICS ({len(r.outcomes)} pairs)")
        ax.set_xlabel("epochs")
        ax.set_ylabel(f"mean test {score} (main task)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure5(report: ProblemReport, path: Path) -> None:
    """Relative F1 gain of every RELATED pair, one heatmap per class (the paper's Figure 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [c for c, subs in TOPIC_HIERARCHY.items() if len(subs) == 2]
    by_class = {c: [o for o in report.outcomes if topic_path(o.main[0])[0] == c] for c in classes}
    by_class = {c: o for c, o in by_class.items() if o}
    if not by_class:
        return
    fig, axes = plt.subplots(1, len(by_class), figsize=(5.5 * len(by_class), 5), squeeze=False)
    short = lambda task: " vs ".join(SHORT_TOPIC.get(t, t) for t in task)
    for ax, (cls, outcomes) in zip(axes[0], by_class.items()):
        mains = sorted({o.main for o in outcomes})
        auxes = sorted({o.aux for o in outcomes})
        grid = np.full((len(mains), len(auxes)), np.nan)
        for o in outcomes:
            grid[mains.index(o.main), auxes.index(o.aux)] = 100 * o.relative_gain
        bound = max(1e-9, float(np.nanmax(np.abs(grid))))
        image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound)
        ax.set_xticks(range(len(auxes)), [short(a) for a in auxes], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(mains)), [short(m) for m in mains], fontsize=7)
        ax.set_xlabel("auxiliary task")
        ax.set_ylabel("main task")
        subs = " vs ".join(TOPIC_HIERARCHY[cls])
        ax.set_title(f'"{cls}": {subs}', fontsize=9)
        fig.colorbar(image, ax=ax, label="relative F1 gain (%)", shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
