"""The 20 Newsgroups meta-study: which trainings it needs, running them, and what they add up to.

Work is planned as *units*, each one training run, identified by a key that says everything the
run depends on (kind, tasks, seed, a digest of the settings):

* ``single``: one task (a topic pair, classes in name order) trained alone for
  ``curve_epochs`` (150); its loss curve feeds the meta-features and its test score at
  ``f1_epoch`` is the single-task score. One run serves every pair that uses the task, as main
  or auxiliary, in either problem (the authors' code too reuses a task's single-task run, and
  its data sample, for every pair of a run).
* ``mtl``: two tasks hard-sharing the hidden layers for ``mtl_epochs`` (100), one batch of each per
  step, scored at ``f1_epoch`` too. The settings are symmetric (equal loss weights, one batch
  each, test sets cut to the same length), so one joint run gives the multi-task score of both
  directions: main A-vs-B with auxiliary C-vs-D and the reverse.

Units already in the results store are skipped, so a study resumes where it was stopped.

Two *protocols* are presets of the settings (:func:`protocol_settings`, docs/meta-study.md):
"authors" reproduces the authors' released Keras code, "cleaned" is this package's first
reading of the paper. Every setting can be changed on its own (:func:`apply_overrides`); a run's
key holds a digest of every setting it depends on, so runs of different settings never mix.
"""

from __future__ import annotations

import ast
import hashlib
import json
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np

from ..data.corpora.newsgroups import task_pairs
from ..errors import ConfigError, DataError
from .corpus import CorpusSettings, StudyArrays
from .engine import Job, SparseMLPEngine, TrainSettings, key_fields
from .metamodel import MetaSettings
from .store import RunStore

PROBLEMS = ("related", "unrelated")
PROTOCOLS = ("authors", "cleaned")
#: "textmtl": our 46 (:mod:`.features`); "authors": the authors' 30 (:mod:`.authors_features`)
FEATURE_SETS = ("textmtl", "authors")
Pair = tuple[tuple[str, str], tuple[str, str]]


@dataclass(frozen=True)
class StudySettings:
    """Everything that defines the study. The field defaults are the "cleaned" protocol's (so the
    keys of runs made before protocols existed stay valid); :func:`protocol_settings` gives either
    preset.

    Args:
        problems: "related" (Problem 1, 52 pairs) and/or "unrelated" (Problem 2, 516 pairs).
        seeds: random initialisations (and batch orders, dropout masks, and with per-task
            sampling the data samples) per run; the paper's 5.
        pairs: keep this many pairs per problem (a seeded shuffle), None for all.
        mtl_epochs: epochs of a multi-task run (§4.1: 100).
        curve_epochs: epochs of a single-task run, whose loss curve gives the features (§3.5: 150).
        f1_epoch: both models are scored at this epoch (1-based: after this many passes) of their
            runs; cleaned 100, authors 81 (their results are read at Keras's 0-based epoch 80).
        eval_every: test score every this many epochs (Figure 4's curves); 1 = every epoch, so any
            ``f1_epoch`` is read from the store without training again.
        hidden, lr, batch_size: the MLP (§3.4: two hidden layers of 100, Adam, batch 32).
        eps, activation, head, init, adam, dropout, bce_clip, batch_order, f1_average: the
            model and its training (:class:`~textmtl.meta.engine.TrainSettings`).
        features: the meta-features (:data:`FEATURE_SETS`).
        curve_gradient_epochs: the authors' features only: their curve gradients are read on the
            curve's first this many epochs; None = ``f1_epoch - 1`` (the authors read them on
            the first ``ep`` = 80 epochs, ``ep`` being the 0-based epoch of their scores).
        corpus: how documents are drawn and featurised.
        meta: the meta-model's evaluation (analysis only: not part of any run's key).
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
    eps: float = 1e-8
    activation: str = "relu"
    head: str = "softmax"
    init: str = "torch"
    adam: str = "torch"
    dropout: float = 0.0
    bce_clip: float = 0.0
    batch_order: str = "per_task"
    f1_average: str = "macro"
    features: str = "textmtl"
    curve_gradient_epochs: int | None = None
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    meta: MetaSettings = field(default_factory=MetaSettings)

    def __post_init__(self) -> None:
        unknown = [p for p in self.problems if p not in PROBLEMS]
        if unknown or not self.problems:
            raise ConfigError(f"'problem' must be related, unrelated or both; found {unknown or 'none'}")
        if self.seeds < 1:
            raise ConfigError(f"'seeds' must be >= 1, got {self.seeds}")
        if self.pairs is not None and self.pairs < 1:
            raise ConfigError(f"'pairs' must be >= 1, got {self.pairs}")
        if self.mtl_epochs < 1:
            raise ConfigError(f"'mtl_epochs' must be >= 1, got {self.mtl_epochs}")
        last = min(self.curve_epochs, self.mtl_epochs)
        if not 1 <= self.f1_epoch <= last:
            raise ConfigError(f"'f1_epoch' must be within 1..{last} (curve_epochs {self.curve_epochs}, "
                              f"mtl_epochs {self.mtl_epochs}), got {self.f1_epoch}")
        if self.eval_every < 0:
            raise ConfigError(f"'eval_every' must be >= 0, got {self.eval_every}")
        if self.features not in FEATURE_SETS:
            raise ConfigError(f"'features' must be one of {', '.join(FEATURE_SETS)}; got {self.features!r}")
        if self.meta.groups == "authors_code" and self.features != "authors":
            raise ConfigError("'meta.groups' authors_code selects columns of the authors' 30 features: "
                              "it needs features 'authors'")
        if self.curve_gradient_epochs is not None and self.curve_gradient_epochs < 3:
            raise ConfigError(f"'curve_gradient_epochs' must be >= 3 or None, got {self.curve_gradient_epochs}")
        self.train_settings("single")  # the model's own checks (activation, head, ...), now

    @classmethod
    def quick(cls, **changes: Any) -> "StudySettings":
        """The cleaned protocol's ``--quick`` study (see :func:`protocol_settings`)."""
        return protocol_settings("cleaned", quick=True, **changes)

    @property
    def gradient_epochs(self) -> int:
        """How many epochs of the curve the authors' gradient features read."""
        return self.curve_gradient_epochs or max(3, self.f1_epoch - 1)

    def train_settings(self, kind: str) -> TrainSettings:
        single = kind == "single"
        epochs = self.curve_epochs if single else self.mtl_epochs
        if self.eval_every == 1:
            f1_epochs: tuple[int, ...] = ()  # every epoch is recorded: --f1-epoch reads any
        elif single:
            f1_epochs = (self.f1_epoch,)
        else:  # the last epoch is always recorded (and keys made before this rule had none)
            f1_epochs = () if self.f1_epoch == epochs else (self.f1_epoch,)
        return TrainSettings(hidden=self.hidden, lr=self.lr, eps=self.eps, batch_size=self.batch_size, epochs=epochs,
                             eval_every=self.eval_every, f1_epochs=f1_epochs, f1_average=self.f1_average,
                             activation=self.activation, head=self.head, init=self.init, adam=self.adam,
                             dropout=self.dropout, bce_clip=self.bce_clip, batch_order=self.batch_order)

    def run_config(self, kind: str) -> dict[str, Any]:
        """What a run of this kind depends on (stored with it; its digest is part of the key).

        Settings added after the first study are left out while at their defaults
        (:func:`~textmtl.meta.engine.key_fields`), so the runs of a cleaned study made before
        them keep their keys.
        """
        return {"train": key_fields(self.train_settings(kind)), "corpus": key_fields(self.corpus)}


#: The authors' protocol: their released Keras code (docs/meta-study.md has the evidence)
AUTHORS_PRESET: dict[str, Any] = dict(
    f1_epoch=81, eval_every=1, eps=1e-7, activation="sigmoid", head="sigmoid", init="keras", adam="keras",
    dropout=0.5, bce_clip=1e-7, batch_order="shared", f1_average="micro", features="authors",
    corpus=CorpusSettings(cleaning="sklearn", sampling="per_task", train_per_task=200, test_per_task=700,
                          mtl_equal_test=True),
    meta=MetaSettings(scaling="standard", splits="kfold", score="accuracy", solver="liblinear",
                      coefficients="full_fit", groups="authors_code"),
)
#: ``--quick``: 1 seed, 20 pairs per problem; the cleaned protocol also shortens its runs. The
#: authors' sigmoid network with dropout stays near chance for its first 10-30 epochs, and its
#: loss curve only takes the log-like shape their curve fit assumes over the full 150 epochs
#: (on 75-epoch curves the fit did not converge), so their quick study keeps the full lengths.
QUICK_PRESETS: dict[str, dict[str, Any]] = {
    "cleaned": dict(seeds=1, pairs=20, mtl_epochs=20, curve_epochs=30, f1_epoch=20),
    "authors": dict(seeds=1, pairs=20),
}


def protocol_settings(protocol: str, *, quick: bool = False, **changes: Any) -> StudySettings:
    """The settings of a protocol (:data:`PROTOCOLS`), optionally its ``--quick`` version, with
    ``changes`` applied last."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"'protocol' must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    preset = dict(AUTHORS_PRESET) if protocol == "authors" else {}
    if quick:
        preset.update(QUICK_PRESETS[protocol])
    preset.update(changes)
    return StudySettings(**preset)


def apply_overrides(settings: StudySettings, assignments: list[str]) -> StudySettings:
    """``KEY=VALUE`` changes to ``settings`` (``--set``): a StudySettings field, or
    ``corpus.FIELD`` / ``meta.FIELD``. Values are Python literals (``0.5``, ``None``, ``(50, 50)``,
    ``True``), anything else a string.

    Raises:
        ConfigError: one line naming an unknown key or a malformed assignment.
    """
    study_changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"corpus": {}, "meta": {}}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {assignment!r}")
        owner_name, dot, name = key.rpartition(".")
        if dot and owner_name not in nested:
            raise ConfigError(f"--set {key}: expected a study setting or corpus.NAME / meta.NAME")
        owner = getattr(settings, owner_name) if dot else settings
        known = {f.name: f for f in fields(owner)}
        if name not in known or (not dot and name in nested):
            raise ConfigError(f"--set {key}: unknown setting; expected one of "
                              f"{', '.join(sorted(n for n in known if dot or n not in nested))}")
        try:
            value: Any = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        default = getattr(owner, name)
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # 0 and 0.0 are one setting, and must be one key
        (nested[owner_name] if dot else study_changes)[name] = value
    for owner_name, changes in nested.items():
        if changes:
            study_changes[owner_name] = replace(getattr(settings, owner_name), **changes)
    try:
        return replace(settings, **study_changes)
    except TypeError as error:  # a value of the wrong kind, e.g. a string where a tuple is expected
        raise ConfigError(f"--set: {error}") from None


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
    """Every unit the 20 Newsgroups study needs, each once."""
    return plan_pairs({p: select_pairs(p, settings.pairs) for p in settings.problems}, settings)


def plan_pairs(pairs: dict[str, list[Pair]], settings: StudySettings, *, mtl: bool = True) -> Plan:
    """Every unit the pairs of each problem need, each once (``mtl`` False: the single-task runs
    only, all the meta-features need)."""
    plan = Plan(pairs, [], 0)
    units: dict[str, Unit] = {}
    for problem_pairs in pairs.values():
        # without sharing: per pair and seed, a single-task run of each task and a joint run
        plan.naive_trainings += 3 * len(problem_pairs) * settings.seeds
        for seed in range(settings.seeds):
            for main, aux in problem_pairs:
                needed = [plan.single_unit(main, seed, settings), plan.single_unit(aux, seed, settings)]
                if mtl:
                    needed.append(plan.mtl_unit(main, aux, seed, settings))
                for unit in needed:
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
    jobs = [Job(arrays.run_tasks(unit["tasks"], unit["seed"]), unit["seed"]) for unit in units]
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
        sizes = tuple(arrays.train_size(*name.split("|")) for name in unit.tasks)  # without building the arrays
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
                [s[settings.f1_epoch] for s in singles], [j[settings.f1_epoch] for j in joints],
                _mean_curve(singles), _mean_curve(joints)))
    return outcomes


def _mean_curve(per_seed: list[dict[int, float]]) -> dict[int, float]:
    epochs = sorted(set.intersection(*(set(c) for c in per_seed)))
    return {e: float(np.mean([c[e] for c in per_seed])) for e in epochs}


def loss_curve(plan: Plan, settings: StudySettings, rows: dict[str, Any], task: tuple[str, str],
               seed: int) -> np.ndarray:
    """The single-task training-loss curve of ``task`` in the run of ``seed``."""
    return np.asarray(rows[plan.single_unit(task, seed, settings).key].curves[task_name(task)], dtype=float)


def mean_loss_curve(plan: Plan, settings: StudySettings, rows: dict[str, Any], task: tuple[str, str]) -> np.ndarray:
    """The single-task training-loss curve of ``task``, averaged over seeds."""
    return np.mean([loss_curve(plan, settings, rows, task, seed) for seed in range(settings.seeds)], axis=0)
