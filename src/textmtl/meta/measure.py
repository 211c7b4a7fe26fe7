"""``textmtl advise --measure`` / ``--tasks``: train the tasks and measure what sharing does.

Instead of predicting from meta-features, the advisor trains the tasks itself with the study's
fast engine (:class:`~textmtl.meta.engine.SparseMLPEngine`): for every seed, each task alone
(single-task) and each pair hard-sharing the hidden layer (multi-task), on the user's data.

Protocol (:class:`MeasureProtocol`, docs/meta-study.md "Measured advice"):

* features as the package's FDU-MTL TF-IDF job (``configs/fdu_mtl_tfidf_mlp.yaml``): one TF-IDF
  vocabulary (scikit-learn ``TfidfVectorizer``: the 10,000 most frequent word 1-2-grams with
  min_df 2, sublinear tf) fitted on the pooled *training* texts of the measured tasks, so a
  task's single-task run is the same run for every pair it is part of;
* the model of that job (one hidden layer of 100, dropout 0.5, Adam lr 1e-3, batch 32 per task)
  in the study's "cleaned" engine settings: ReLU, one softmax head per task (any number of
  classes) with cross-entropy, PyTorch initialisation; hard sharing = the hidden layer is
  shared, one batch of every task per step, losses summed; 15 epochs (passes over the larger
  task);
* dev-based model selection: dev and test are scored after every epoch; a run's epoch is the
  first with the best *dev* score of the task in question (the main task's, in a joint run),
  and the test score is read at that epoch only. Test scores never choose anything;
* one joint run of a pair gives both directions (A with auxiliary B and B with A), each with
  its own dev-selected epoch; single-task runs are shared by every pair;
* the gain of a direction is, per seed, multi-task test score - single-task test score (seed s
  of both: the same initial hidden layer), and its 95 % confidence interval is Student's
  t-interval over the seeds' paired differences (k - 1 degrees of freedom).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ..data.tasks import Task
from ..errors import ConfigError, DataError
from .engine import SparseMLPEngine, TaskArrays, TrainSettings

METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class MeasureProtocol:
    """How the advisor measures a gain (see the module docstring).

    Args:
        max_features: TF-IDF vocabulary size (most frequent terms of the pooled training texts).
        ngram_max: word n-grams up to this length; min_df: a term must occur in this many
            training texts (sublinear tf always).
        hidden: hidden layer sizes (shared in a joint run).
        epochs: epochs of every run (passes over the largest task); dev and test are scored
            after each, and the best dev epoch is chosen.
        batch_size: rows per task per step.
        lr: Adam's learning rate.
        dropout: after every hidden activation, training only.
        metric: "accuracy" or "macro_f1" (for dev selection and for the gain).
    """

    max_features: int = 10000
    ngram_max: int = 2
    min_df: int = 2
    hidden: tuple[int, ...] = (100,)
    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3
    dropout: float = 0.5
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"'metric' must be one of {', '.join(METRICS)}; got {self.metric!r}")
        if self.epochs < 1:
            raise ConfigError(f"'epochs' must be >= 1, got {self.epochs}")
        for name in ("max_features", "ngram_max", "min_df"):
            if getattr(self, name) < 1:
                raise ConfigError(f"'{name}' must be >= 1, got {getattr(self, name)}")

    def settings(self) -> TrainSettings:
        """The engine's settings: the study's cleaned ones, scored every epoch."""
        return TrainSettings(hidden=tuple(self.hidden), lr=self.lr, batch_size=self.batch_size, epochs=self.epochs,
                             eval_every=1, f1_average="micro" if self.metric == "accuracy" else "macro",
                             activation="relu", head="softmax", init="torch", adam="torch", dropout=self.dropout)

    def describe(self) -> str:
        terms = "words" if self.ngram_max == 1 else f"word 1-{self.ngram_max}-grams"
        return (f"TF-IDF over the {self.max_features} most frequent training {terms}"
                f"{f' (min_df {self.min_df})' if self.min_df > 1 else ''}, sublinear tf; MLP "
                f"{' -> '.join(str(h) for h in self.hidden)} ReLU, softmax head per task, PyTorch init, Adam lr "
                f"{self.lr:g}, batch {self.batch_size} per task"
                f"{f', dropout {self.dropout:g}' if self.dropout else ''}; "
                f"{self.epochs} epochs, dev and test {self.metric.replace('_', '-')} after each, epoch chosen on "
                "the main task's dev score")


def featurize(tasks: list[Task], protocol: MeasureProtocol) -> dict[str, TaskArrays]:
    """TF-IDF arrays (train, dev, test) of every task over one vocabulary of their training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(max_features=protocol.max_features, ngram_range=(1, protocol.ngram_max),
                                 min_df=protocol.min_df, sublinear_tf=True, dtype=np.float32)
    try:
        train = vectorizer.fit_transform([t for task in tasks for t in task.train.texts]).tocsr()
    except ValueError as error:  # "empty vocabulary": no text holds a word (often enough)
        raise DataError(f"tasks {', '.join(t.name for t in tasks)}: their training texts hold no terms to learn "
                        f"from (scikit-learn: {error}); expected texts with words of 2+ letters or digits") from None
    arrays = {}
    start = 0
    for task in tasks:
        rows = train[start:start + len(task.train)]
        start += len(task.train)
        label = lambda split: np.asarray(split.labels, dtype=np.int64)  # noqa: E731
        test = vectorizer.transform(task.test.texts).tocsr()
        dev = vectorizer.transform(task.dev.texts).tocsr()
        arrays[task.name] = TaskArrays(task.name, rows, label(task.train), test, label(task.test),
                                       num_classes=task.num_classes, dev_x=dev, dev_y=label(task.dev))
    return arrays


@dataclass(frozen=True)
class Unit:
    """One training run: one task (single-task) or two (a joint run), one seed."""

    tasks: tuple[str, ...]
    seed: int

    @property
    def kind(self) -> str:
        return "single" if len(self.tasks) == 1 else "joint"


def plan_units(names: list[str], seeds: int, pairs: list[tuple[str, str]] | None = None) -> list[Unit]:
    """The runs that measure ``pairs`` (default: every ordered pair of ``names``).

    A joint run serves both directions of its pair and a single-task run every pair of its task,
    so N tasks need N + N(N-1)/2 runs per seed, not 2 N(N-1). Joint runs come first (they take
    longer: the pool finishes on short runs).
    """
    if pairs is None:
        pairs = [(a, b) for a in names for b in names if a != b]
    couples = []
    for main, aux in pairs:
        couple = tuple(sorted((main, aux), key=names.index))
        if couple not in couples:
            couples.append(couple)
    singles = list(dict.fromkeys(main for main, _ in pairs))
    return ([Unit(c, s) for s in range(seeds) for c in couples] +
            [Unit((t,), s) for s in range(seeds) for t in singles])


def _train_unit(unit: Unit, shared: tuple[dict[str, TaskArrays], TrainSettings]) -> dict:
    """A worker's job: train one unit, return per task its dev and test scores by epoch."""
    arrays, settings = shared
    started = time.perf_counter()
    result = SparseMLPEngine().train([arrays[n] for n in unit.tasks], settings, unit.seed)
    return {"dev": result.dev_f1, "test": result.test_f1, "seconds": time.perf_counter() - started}


def select_epoch(dev: dict[int, float]) -> int:
    """The epoch with the best dev score (the first of equals: the least training)."""
    if not dev:
        raise ValueError("no dev scores to select an epoch on")
    best = max(dev.values())
    return min(e for e, v in dev.items() if v == best)


def selected(run: dict, task: str) -> tuple[int, float, float]:
    """(epoch chosen on ``task``'s dev score, its dev score, its test score at that epoch)."""
    epoch = select_epoch(run["dev"][task])
    return epoch, run["dev"][task][epoch], run["test"][task][epoch]


def t_interval(differences: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t confidence interval of the mean of paired differences.

    ``low``/``high`` are NaN for fewer than two values (no spread to estimate); a zero spread
    gives the point itself.
    """
    values = np.asarray(list(differences), dtype=float)
    if values.size == 0:
        raise ValueError("no differences")
    mean = float(values.mean())
    if values.size < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half


@dataclass
class Direction:
    """The measured effect of auxiliary ``aux`` on main task ``main`` (scores in [0, 1])."""

    main: str
    aux: str
    single: list[float]
    joint: list[float]
    single_epochs: list[int]
    joint_epochs: list[int]
    gains: list[float] = field(init=False)
    mean: float = field(init=False)
    low: float = field(init=False)
    high: float = field(init=False)

    def __post_init__(self) -> None:
        self.gains = [j - s for j, s in zip(self.joint, self.single)]
        self.mean, self.low, self.high = t_interval(self.gains)

    def verdict(self) -> str:
        if math.isnan(self.low):
            return "helps (1 seed: no interval)" if self.mean > 1e-9 else "does not help (1 seed: no interval)"
        if self.low > 0:
            return "multi-task learning helps the main task"
        if self.high < 0:
            return "multi-task learning hurts the main task"
        return "no clear effect (the interval contains 0)"


@dataclass
class Measurement:
    """Every measured direction, and what it cost."""

    names: list[str]
    seeds: int
    protocol: MeasureProtocol
    directions: dict[tuple[str, str], Direction]
    runs: dict[str, int]
    training_seconds: float
    engine_seconds: float
    workers: str

    def matrix(self, attribute: str = "mean") -> np.ndarray:
        """``[main][aux]`` of a direction's attribute (NaN on the diagonal and where unmeasured)."""
        n = len(self.names)
        out = np.full((n, n), np.nan)
        for (main, aux), d in self.directions.items():
            out[self.names.index(main), self.names.index(aux)] = getattr(d, attribute)
        return out

    def to_json(self) -> dict:
        return {
            "tasks": self.names, "seeds": self.seeds, "protocol": asdict(self.protocol),
            "score": self.protocol.metric, "gain": "multi-task minus single-task test score of the main task, "
            "each at its run's best main-task dev epoch; interval: 95 % Student t over the seeds' paired differences",
            "runs": self.runs, "training_seconds": round(self.training_seconds, 2),
            "engine_seconds": round(self.engine_seconds, 2), "workers": self.workers,
            "directions": [{"main": d.main, "aux": d.aux, "mean_gain": d.mean,
                            "ci_low": None if math.isnan(d.low) else d.low,
                            "ci_high": None if math.isnan(d.high) else d.high, "gains": d.gains,
                            "single": d.single, "joint": d.joint, "single_epochs": d.single_epochs,
                            "joint_epochs": d.joint_epochs} for d in self.directions.values()],
        }


def measure(arrays: dict[str, TaskArrays], protocol: MeasureProtocol, seeds: int, executor: Any,
            pairs: list[tuple[str, str]] | None = None,
            progress: Callable[[int, int], None] | None = None) -> Measurement:
    """Train every unit :func:`plan_units` needs on ``executor`` and measure each direction.

    Args:
        arrays: the tasks, by name, in the order of the matrix.
        pairs: (main, auxiliary) directions; default every ordered pair.
        executor: a :class:`textmtl.sweep.LocalExecutor` (or anything with its ``map``).
    """
    if seeds < 1:
        raise ConfigError(f"'seeds' must be >= 1, got {seeds}")
    names = list(arrays)
    if pairs is None:
        pairs = [(a, b) for a in names for b in names if a != b]
    units = plan_units(names, seeds, pairs)
    settings = protocol.settings()
    started = time.perf_counter()
    done: dict[Unit, dict] = {}
    for unit, result in executor.map(_train_unit, units, (arrays, settings)):
        done[unit] = result
        if progress is not None:
            progress(len(done), len(units))
    seconds = time.perf_counter() - started
    directions = {}
    for main, aux in pairs:
        couple = tuple(sorted((main, aux), key=names.index))
        single = [selected(done[Unit((main,), s)], main) for s in range(seeds)]
        joint = [selected(done[Unit(couple, s)], main) for s in range(seeds)]
        directions[(main, aux)] = Direction(main, aux, [x[2] for x in single], [x[2] for x in joint],
                                            [x[0] for x in single], [x[0] for x in joint])
    runs = {"single": sum(u.kind == "single" for u in units), "joint": sum(u.kind == "joint" for u in units)}
    describe = getattr(executor, "describe", None)
    return Measurement(names, seeds, protocol, directions, runs, seconds,
                       float(sum(r["seconds"] for r in done.values())), describe() if describe else "")
