"""The 20 Newsgroups meta-study: which trainings it needs, running them, and what they add up to.

Work is planned as *units*, each one training run, identified by a key that says everything the
run depends on (kind, tasks, seed, a digest of the settings):

* ``single``: one task (a topic pair, classes in name order) trained alone for
  ``curve_epochs`` (150); its loss curve feeds the meta-features and its test F1 at ``f1_epoch``
  (100) is the single-task score. One run serves every pair that uses the task, as main or
  auxiliary, in either problem.
* ``mtl``: two tasks hard-sharing the hidden layers for ``mtl_epochs`` (100), one batch of each per
  step. The settings are symmetric (equal loss weights, one batch each), so one joint run gives
  the multi-task score of both directions: main A-vs-B with auxiliary C-vs-D and the reverse.

Units already in the results store are skipped, so a study resumes where it was stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..data.corpora.newsgroups import task_pairs
from ..errors import ConfigError, DataError
from .corpus import CorpusSettings, StudyArrays
from .engine import Job, SparseMLPEngine, TrainSettings
from .store import RunStore

PROBLEMS = ("related", "unrelated")
Pair = tuple[tuple[str, str], tuple[str, str]]


@dataclass(frozen=True)
class StudySettings:
    """Everything that defines the study (defaults: the paper's §3-§4).

    Args:
        problems: "related" (Problem 1, 52 pairs) and/or "unrelated" (Problem 2, 516 pairs).
        seeds: random initialisations (and batch orders) per run; the paper's 5.
        pairs: keep this many pairs per problem (a seeded shuffle), None for all.
        mtl_epochs: epochs of a multi-task run (§4.1: 100).
        curve_epochs: epochs of a single-task run, whose loss curve gives the features (§3.5: 150).
        f1_epoch: the single-task F1 is read at this epoch of that run, so both models train
            equally long (100).
        eval_every: test F1 every this many epochs (Figure 4's curves).
        hidden, lr, batch_size: the MLP (§3.4: two hidden layers of 100, Adam, batch 32).
        corpus: how documents are drawn and featurised.
    """

    problems: tuple[str, ...] = PROBLEMS
    seeds: int = 5
    pairs: int | None = None
    mtl_epochs: int = 100
    curve_epochs: int = 150
    f1_epoch: int = 100
    eval_every: int = 5
    hidden: tuple[int, ...] = (100, 100)
    lr: float = 1e-3
    batch_size: int = 32
    corpus: CorpusSettings = field(default_factory=CorpusSettings)

    def __post_init__(self) -> None:
        unknown = [p for p in self.problems if p not in PROBLEMS]
        if unknown or not self.problems:
            raise ConfigError(f"'problem' must be related, unrelated or both; found {unknown or 'none'}")
        if self.seeds < 1:
            raise ConfigError(f"'seeds' must be >= 1, got {self.seeds}")
        if self.pairs is not None and self.pairs < 1:
            raise ConfigError(f"'pairs' must be >= 1, got {self.pairs}")
        if not 1 <= self.f1_epoch <= self.curve_epochs:
            raise ConfigError(f"'f1_epoch' must be within 1..curve_epochs ({self.curve_epochs}), got {self.f1_epoch}")
        if self.mtl_epochs < 1:
            raise ConfigError(f"'mtl_epochs' must be >= 1, got {self.mtl_epochs}")

    @classmethod
    def quick(cls, **changes: Any) -> "StudySettings":
        """The ``--quick`` study: 1 seed, 20 pairs per problem, 20 multi-task / 30 single-task epochs."""
        return replace(cls(seeds=1, pairs=20, mtl_epochs=20, curve_epochs=30, f1_epoch=20), **changes)

    def train_settings(self, kind: str) -> TrainSettings:
        single = kind == "single"
        return TrainSettings(hidden=self.hidden, lr=self.lr, batch_size=self.batch_size,
                             epochs=self.curve_epochs if single else self.mtl_epochs,
                             eval_every=self.eval_every, f1_epochs=(self.f1_epoch,) if single else ())

    def run_config(self, kind: str) -> dict[str, Any]:
        """What a run of this kind depends on (stored with it; its digest is part of the key)."""
        return {"train": asdict(self.train_settings(kind)), "corpus": asdict(self.corpus)}


def digest(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def task_name(task: tuple[str, str]) -> str:
    """The canonical name of a topic-pair task: its topics in name order, e.g. ``rec.autos|sci.med``."""
    return "|".join(sorted(task))


def select_pairs(problem: str, limit: int | None = None) -> list[Pair]:
    """The problem's main/auxiliary pairs (§3.2), or ``limit`` of them in a seeded shuffle."""
    pairs = task_pairs(related=problem == "related")
    if limit is not None and limit < len(pairs):
        order = np.random.default_rng(0).permutation(len(pairs))[:limit]
        pairs = [pairs[i] for i in sorted(order)]
    return pairs


@dataclass(frozen=True)
class Unit:
    """One training run of the study."""

    kind: str
    tasks: tuple[str, ...]
    seed: int
    config: dict[str, Any] = field(hash=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.kind}|{'+'.join(self.tasks)}|seed={self.seed}|{digest(self.config)}"


@dataclass
class Plan:
    """The units a study needs, and how many trainings it would take without sharing them."""

    pairs: dict[str, list[Pair]]
    units: list[Unit]
    naive_trainings: int

    def single_unit(self, task: tuple[str, str], seed: int, settings: StudySettings) -> Unit:
        return Unit("single", (task_name(task),), seed, settings.run_config("single"))

    def mtl_unit(self, main: tuple[str, str], aux: tuple[str, str], seed: int, settings: StudySettings) -> Unit:
        return Unit("mtl", tuple(sorted((task_name(main), task_name(aux)))), seed, settings.run_config("mtl"))


def plan_study(settings: StudySettings) -> Plan:
    """Every unit the study needs, each once."""
    pairs = {p: select_pairs(p, settings.pairs) for p in settings.problems}
    plan = Plan(pairs, [], 0)
    units: dict[str, Unit] = {}
    for problem_pairs in pairs.values():
        # without sharing: per pair and seed, a single-task run of each task and a joint run
        plan.naive_trainings += 3 * len(problem_pairs) * settings.seeds
        for seed in range(settings.seeds):
            for main, aux in problem_pairs:
                for unit in (plan.single_unit(main, seed, settings), plan.single_unit(aux, seed, settings),
                             plan.mtl_unit(main, aux, seed, settings)):
                    units.setdefault(unit.key, unit)
    # long runs first, so the pool's last minutes are not one straggler
    plan.units = sorted(units.values(), key=lambda u: (u.kind != "single", u.seed, u.tasks))
    return plan


def run_group(payload: dict[str, Any], arrays: StudyArrays) -> list[dict[str, Any]]:
    """Train a group of units (in a worker), side by side in one engine call; returns what the
    store keeps for each, in order.

    ``payload``: ``{"units": [{"key", "kind", "tasks", "seed", "config"}, ...], "device": str}``;
    the units share their kind, settings and training sizes (see :func:`group_units`).
    """
    units = payload["units"]
    settings = TrainSettings(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in units[0]["config"]["train"].items()})
    jobs = [Job(tuple(arrays.task(*name.split("|")) for name in unit["tasks"]), unit["seed"]) for unit in units]
    start = time.perf_counter()
    results = SparseMLPEngine(device=payload.get("device", "cpu")).train_many(jobs, settings)
    seconds = (time.perf_counter() - start) / len(units)  # wall time per model of the group
    return [{"metrics": r.test_f1, "curves": r.train_loss, "seconds": seconds} for r in results]


def group_units(units: list[Unit], arrays: StudyArrays, models_per_call: int) -> list[list[Unit]]:
    """Split ``units`` into groups the engine can train side by side: same kind and settings, same
    training-set sizes, at most ``models_per_call`` each (1: every unit alone)."""
    if models_per_call < 1:
        raise ConfigError(f"'models_per_call' must be >= 1, got {models_per_call}")
    if models_per_call == 1:
        return [[u] for u in units]
    by_shape: dict[tuple, list[Unit]] = {}
    for unit in units:
        # a task's training rows are its two topics' (no need to build its arrays)
        sizes = tuple(sum(arrays.train_x[topic].shape[0] for topic in name.split("|")) for name in unit.tasks)
        by_shape.setdefault((unit.kind, digest(unit.config), sizes), []).append(unit)
    return [same[i:i + models_per_call] for same in by_shape.values() for i in range(0, len(same), models_per_call)]


@dataclass
class StudyRun:
    """What :func:`run_study` did."""

    total: int
    already_done: int
    executed: int
    seconds: float


def run_study(plan: Plan, arrays: StudyArrays, store: RunStore, executor: Any,
              progress: Callable[[int, int], Any] | None = None, *, device: str = "cpu",
              models_per_call: int = 1) -> StudyRun:
    """Run every unit of ``plan`` not yet in ``store``, writing each as it finishes.

    Args:
        executor: a :mod:`textmtl.sweep` executor.
        progress: called as ``progress(done, total)`` after each stored run (and once at start).
        device: where the runs train ("cpu", "cuda", "cuda:1"). How runs execute is not part of a
            unit's key: a CUDA run and a CPU run of a unit differ by float rounding only.
        models_per_call: train up to this many units side by side in one engine call (stacked
            weights, batched matmuls). On a GPU dozens at once fill the device; on a CPU one at a
            time is fastest (docs/meta-study.md).
    """
    done = store.keys()
    todo = [u for u in plan.units if u.key not in done]
    already = len(plan.units) - len(todo)
    start = time.perf_counter()
    if progress:
        progress(already, len(plan.units))
    payloads = [{"units": [{"key": u.key, "kind": u.kind, "tasks": list(u.tasks), "seed": u.seed, "config": u.config}
                           for u in group], "device": device}
                for group in group_units(todo, arrays, models_per_call)]
    executed = 0
    for payload, results in executor.map(run_group, payloads, arrays):
        for unit, result in zip(payload["units"], results):
            store.add(unit["key"], unit["kind"], unit["tasks"], unit["seed"], unit["config"],
                      result["metrics"], result["curves"], result["seconds"])
            executed += 1
        if progress:
            progress(already + executed, len(plan.units))
    return StudyRun(len(plan.units), already, executed, time.perf_counter() - start)


@dataclass
class PairOutcome:
    """One main/auxiliary pair of a problem, over seeds."""

    main: tuple[str, str]
    aux: tuple[str, str]
    single_f1: list[float]
    mtl_f1: list[float]
    single_curve: dict[int, float]  # mean over seeds of the main task's test F1 per epoch
    mtl_curve: dict[int, float]

    @property
    def gain(self) -> float:
        """Mean multi-task F1 minus mean single-task F1 (the sign is the meta-model's label)."""
        return float(np.mean(self.mtl_f1) - np.mean(self.single_f1))

    @property
    def relative_gain(self) -> float:
        return self.gain / max(float(np.mean(self.single_f1)), 1e-12)


def load_runs(plan: Plan, store: RunStore) -> dict[str, Any]:
    """The stored rows of every unit of ``plan`` (all must be there), by key."""
    rows = {row.key: row for row in store.rows({u.key for u in plan.units})}
    missing = [u.key for u in plan.units if u.key not in rows]
    if missing:
        raise ConfigError(f"the study is not complete: {len(missing)} run(s) missing, e.g. {missing[0]}; "
                          "run it again to finish them")
    for unit in plan.units:
        _check_row(rows[unit.key], unit, store)
    return rows


def _check_row(row: Any, unit: Unit, store: RunStore) -> None:
    """Fail with the file and the row's key when a stored row lacks what the analysis reads.

    The store checks each row's shape; this checks its content against the unit's own settings
    (the F1 at the epochs the tables compare, one loss per epoch), which would otherwise be a
    KeyError or a ragged-array error in the middle of the analysis.
    """
    train = unit.config["train"]
    last = int(train["epochs"])
    epochs = {last} | {int(e) for e in train.get("f1_epochs", ()) if int(e) <= last}  # as the engine records
    for task in unit.tasks:
        lacking = sorted(epochs - set(row.metrics.get(task, {})))
        if lacking:
            raise DataError(f"{store.path}: row {row.key!r}: the F1 of task {task!r} lacks epoch(s) "
                            f"{lacking}; expected the epochs {sorted(epochs)} of its settings; remove the "
                            "row (it is trained again)")
        found = len(row.curves.get(task, []))
        if found != last:
            raise DataError(f"{store.path}: row {row.key!r}: the loss curve of task {task!r} has {found} "
                            f"epoch(s); expected {last}; remove the row (it is trained again)")


def collect_outcomes(plan: Plan, settings: StudySettings, rows: dict[str, Any]) -> dict[str, list[PairOutcome]]:
    """Per problem, every pair's single- and multi-task F1 from the stored runs."""
    outcomes: dict[str, list[PairOutcome]] = {}
    for problem, pairs in plan.pairs.items():
        outcomes[problem] = []
        for main, aux in pairs:
            singles, joints = [], []
            for seed in range(settings.seeds):
                singles.append(rows[plan.single_unit(main, seed, settings).key].metrics[task_name(main)])
                joints.append(rows[plan.mtl_unit(main, aux, seed, settings).key].metrics[task_name(main)])
            outcomes[problem].append(PairOutcome(
                main, aux,
                [s[settings.f1_epoch] for s in singles], [j[settings.mtl_epochs] for j in joints],
                _mean_curve(singles), _mean_curve(joints)))
    return outcomes


def _mean_curve(per_seed: list[dict[int, float]]) -> dict[int, float]:
    epochs = sorted(set.intersection(*(set(c) for c in per_seed)))
    return {e: float(np.mean([c[e] for c in per_seed])) for e in epochs}


def mean_loss_curve(plan: Plan, settings: StudySettings, rows: dict[str, Any], task: tuple[str, str]) -> np.ndarray:
    """The single-task training-loss curve of ``task``, averaged over seeds."""
    curves = [rows[plan.single_unit(task, seed, settings).key].curves[task_name(task)]
              for seed in range(settings.seeds)]
    return np.mean(np.asarray(curves, dtype=float), axis=0)
