"""From stored runs to the paper's Tables 1-3 and Figures 4-5, with the paper's numbers beside ours."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.corpora.newsgroups import TOPIC_HIERARCHY, topic_path
from .corpus import StudyCorpus
from .features import FEATURE_LABELS, FEATURE_NAMES, PAIR_FEATURES, TASK_FEATURES, TaskSample, feature_groups, ratio, task_features
from .metamodel import CrossValidation, MetaModel, cross_validate, fit_meta_model, gain_labels
from .study import PairOutcome, Plan, StudySettings, mean_loss_curve

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


#: topic labels for the figures: the last name part, unless two topics share it
SHORT_TOPIC = {"comp.sys.ibm.pc.hardware": "ibm.pc", "comp.sys.mac.hardware": "mac", "comp.windows.x": "windows.x",
               "comp.os.ms-windows.misc": "ms-windows", "talk.politics.misc": "politics.misc",
               "talk.religion.misc": "religion.misc", "comp.graphics": "graphics"}


def paper_feature_name(feature: str, data: str) -> str:
    """Our name of a feature row of the paper's Table 3, e.g. ("JSD pos. class", "main") -> "jsd_pos_class.main"."""
    return f"{_PAPER_FEATURE[feature]}.{data}"


def task_sample(corpus: StudyCorpus, task: tuple[str, str], curve: np.ndarray) -> TaskSample:
    """The meta-features' view of topic A (class 0) vs topic B (class 1)."""
    a, b = task
    return TaskSample(f"{a}|{b}", (corpus.train_tokens[a], corpus.train_tokens[b]),
                      (corpus.test_tokens[a], corpus.test_tokens[b]), curve)


def feature_matrix(outcomes: list[PairOutcome], corpus: StudyCorpus, plan: Plan, settings: StudySettings,
                   rows: dict[str, Any]) -> np.ndarray:
    """One row of :data:`FEATURE_NAMES` per pair (per-task features computed once per task)."""
    samples: dict[tuple[str, str], TaskSample] = {}
    per_task: dict[tuple[str, str], dict[str, float]] = {}

    def sample(task: tuple[str, str]) -> TaskSample:
        if task not in samples:
            samples[task] = task_sample(corpus, task, mean_loss_curve(plan, settings, rows, task))
            per_task[task] = task_features(samples[task])
        return samples[task]

    matrix = []
    for outcome in outcomes:
        main, aux = sample(outcome.main), sample(outcome.aux)
        values = {f"{n}.main": v for n, v in per_task[outcome.main].items()}
        values.update({f"{n}.aux": v for n, v in per_task[outcome.aux].items()})
        values.update({f"{n}.ratio": ratio(per_task[outcome.main][n], per_task[outcome.aux][n]) for n in TASK_FEATURES})
        values.update({n: float(f(main, aux)) for n, f in PAIR_FEATURES.items()})
        matrix.append([values[n] for n in FEATURE_NAMES])
    return np.asarray(matrix, dtype=float)


@dataclass
class ProblemReport:
    """Everything computed for one problem."""

    problem: str
    outcomes: list[PairOutcome]
    features: np.ndarray
    labels: np.ndarray
    ablations: dict[str, CrossValidation | None]

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


def analyse(problem: str, outcomes: list[PairOutcome], features: np.ndarray, *, runs: int = 100,
            folds: int = 5) -> ProblemReport:
    """Meta-model cross-validation for every feature group of Table 2."""
    labels = gain_labels([o.gain for o in outcomes])
    ablations: dict[str, CrossValidation | None] = {}
    for group, mask in feature_groups(FEATURE_NAMES).items():
        try:
            ablations[group] = cross_validate(features[:, np.asarray(mask)], labels, runs=runs, folds=folds)
        except ValueError:  # too few pairs on one side (e.g. a --quick study): no meta-model
            ablations[group] = None
    return ProblemReport(problem, outcomes, features, labels, ablations)


def advisor_model(report: ProblemReport, command: str) -> MetaModel:
    """The meta-model over all features, fitted on every pair of ``report``."""
    return fit_meta_model(report.features, report.labels, list(FEATURE_NAMES), trained_on={
        "problem": report.problem, "pairs": len(report.outcomes),
        "pairs_mtl_helps": int(report.labels.sum()), "command": command})


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _seed_spread(report: ProblemReport, attribute: str) -> str:
    """Mean over pairs, as mean ± std over seeds."""
    per_seed = np.mean([getattr(o, attribute) for o in report.outcomes], axis=0)
    spread = f" ± {np.std(per_seed, ddof=1):.3f}" if len(per_seed) > 1 else ""
    return f"{np.mean(per_seed):.3f}{spread}"


def table1(reports: list[ProblemReport], seeds: int) -> tuple[str, list[list[str]]]:
    header = ["problem", "pairs", "single-task F1", "multi-task F1", "improved", "paper single", "paper multi",
              "paper improved"]
    rows = []
    for r in reports:
        p = PAPER_TABLE1[r.problem]
        rows.append([r.problem.upper(), str(len(r.outcomes)), _seed_spread(r, "single_f1"),
                     _seed_spread(r, "mtl_f1"), _fmt(r.improved), *(_fmt(v) for v in p)])
    return _markdown(header, rows, f"Table 1: mean test F1 of the main task over pairs and {seeds} seed(s); "
                                   "'improved' = share of (pair, seed) where multi-task beats single-task"), [header, *rows]


def table2(reports: list[ProblemReport]) -> tuple[str, list[list[str]]]:
    header = ["features"]
    for r in reports:
        header += [f"{r.problem.upper()} F1 (mean ± std over runs)", f"{r.problem.upper()} paper"]
    rows = []
    for group, title in GROUP_TITLES.items():
        row = [title]
        for r in reports:
            cv = r.ablations.get(group)
            row.append("n/a" if cv is None else f"{cv.mean_f1:.2f} ± {cv.std_f1:.2f}")
            row.append(_fmt(PAPER_TABLE2[group][0 if r.problem == "related" else 1], 2))
        rows.append(row)
    return _markdown(header, rows, "Table 2: meta-model F1 (logistic regression, repeated 5-fold CV) per feature group"), [header, *rows]


def table3(report: ProblemReport, which: str) -> tuple[str, list[list[str]]]:
    """Table 3a (``which="ranks"``) or 3b (``"coefficients"``): the paper's rows with ours beside."""
    cv = report.ablations.get("all")
    paper = PAPER_TABLE3A if which == "ranks" else PAPER_TABLE3B
    ours = None if cv is None else (cv.inverse_ranks if which == "ranks" else cv.coefficients).mean(0)
    order = {} if ours is None else {n: i for i, n in enumerate(FEATURE_NAMES)}
    what = "inverse rank" if which == "ranks" else "coefficient"
    header = ["feature", "data", f"paper {what}", f"our {what}", "our position"]
    positions = {} if ours is None else {FEATURE_NAMES[i]: p + 1 for p, i in enumerate(np.argsort(
        -(ours if which == "ranks" else np.abs(ours)), kind="stable"))}
    rows = []
    for feature, data, value in paper:
        name = paper_feature_name(feature, data)
        mine = None if ours is None else float(ours[order[name]])
        rows.append([feature, data, f"{value:g}", _fmt(mine, 1 if which == "ranks" else 2),
                     str(positions.get(name, "n/a"))])
    title = (f"Table 3a: mean inverse rank (|coefficient| rank, {len(FEATURE_NAMES)} = most important) for "
             f"{report.problem.upper()}" if which == "ranks" else
             f"Table 3b: mean coefficient (features min-max normalised) for {report.problem.upper()}")
    text = _markdown(header, rows, title + "; the paper's 30 rows, ours beside (position among our "
                                           f"{len(FEATURE_NAMES)} features)")
    if ours is not None:  # and what our model ranks highest, whether or not the paper lists it
        key = ours if which == "ranks" else np.abs(ours)
        top = [[FEATURE_LABELS[FEATURE_NAMES[i]], _fmt(float(ours[i]), 2)] for i in np.argsort(-key, kind="stable")[:10]]
        text += "\n" + _markdown(["our top 10 feature", what], top, f"our 10 most important features ({report.problem.upper()})")
    return text, [header, *rows]


def _markdown(header: list[str], rows: list[list[str]], title: str) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, table: list[list[str]]) -> None:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(table)


def figure4(reports: list[ProblemReport], path: Path) -> None:
    """Mean F1 over epochs, single- vs multi-task (the paper's Figure 4), one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 3.6), squeeze=False)
    for ax, r in zip(axes[0], reports):
        for key, label, marker in (("single_curve", "single-task", "x"), ("mtl_curve", "multi-task", "o")):
            epochs = sorted(set.intersection(*(set(getattr(o, key)) for o in r.outcomes)))
            ax.plot(epochs, [np.mean([getattr(o, key)[e] for o in r.outcomes]) for e in epochs],
                    marker=marker, markersize=4, label=label)
        ax.set_title(f"{r.problem.upper()} TOPICS ({len(r.outcomes)} pairs)")
        ax.set_xlabel("epochs")
        ax.set_ylabel("mean test F1 (main task)")
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
