"""Experiment configs: YAML -> dataclasses, with dotted ``--set key=value`` overrides.

Unknown keys and wrong types are errors that name the key, the expected type and the value.
Component sections (``encoder``, ``methods``, ``weighting``, ``sampler``, ``features``) are
checked against the registered constructors, whose keyword-only arguments are their schema.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from .errors import ConfigError
from .registry import _matches, _type_name
from .training.config import AVERAGE, TrainingConfig


@dataclass
class ComponentConfig:
    """A registry entry and its parameters, e.g. ``{name: mlp, hidden_dims: [100]}``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


#: keys of a ``methods:`` entry that are not the sharing method's own parameters
METHOD_ENTRY_KEYS = ("label", "sampler", "weighting", "loss_weights", "encoder", "features",
                     "train_tasks", "grid_group")

#: how a method entry's models are trained (``methods[i].train_tasks``, see MethodConfig)
TRAIN_TASKS = ("together", "separately", "oriented")


@dataclass
class MethodConfig(ComponentConfig):
    """One entry of ``methods:``: a sharing method, its parameters, and what it overrides.

    Attributes:
        label: the column name in the table (default: the method name); unique.
        sampler: this method's task sampler (default: the experiment's ``sampler``).
        weighting: this method's loss weighting (default: the experiment's ``weighting``).
        loss_weights: weight of each named extra loss of the method (names left out: the method's
            ``default_loss_weights``, else 1).
        encoder: this method's encoder (default: the experiment's ``encoder``), so one table
            can hold e.g. single-task LSTM, TextCNN and HAN rows.
        features: this method's featurizer options (default: the experiment's ``features``
            when its encoder reads the same input kind as the experiment's, else the
            featurizer's defaults).
        train_tasks: which models a seed trains. ``together``: one model of every task;
            ``separately``: one model per task, trained on that task alone (what single-task
            learning does); ``oriented``: one model per task, trained on every task but with
            epochs selected on that task's dev set and only that task's result reported (the
            protocol of Zhang et al. 2017, one model per "oriented" task; a sampler with
            ``takes_oriented_task`` is told the task). None: the method's default
            (``separately`` when the method ``trains_tasks_separately``, else ``together``).
        grid_group: set on the entries a ``grid:`` expanded (see :func:`expand_grids`): the
            title of the entry they came from, the table column that shows the member with the
            best mean dev score.
    """

    label: str | None = None
    sampler: ComponentConfig | None = None
    weighting: ComponentConfig | None = None
    loss_weights: dict[str, float] = field(default_factory=dict)
    encoder: ComponentConfig | None = None
    features: dict[str, Any] | None = None
    train_tasks: str | None = None
    grid_group: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.name

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        if self.label is not None:
            out["label"] = self.label
        if self.sampler is not None:
            out["sampler"] = self.sampler.as_dict()
        if self.weighting is not None:
            out["weighting"] = self.weighting.as_dict()
        if self.loss_weights:
            out["loss_weights"] = dict(self.loss_weights)
        if self.encoder is not None:
            out["encoder"] = self.encoder.as_dict()
        if self.features is not None:
            out["features"] = dict(self.features)
        if self.train_tasks is not None:
            out["train_tasks"] = self.train_tasks
        if self.grid_group is not None:
            out["grid_group"] = self.grid_group
        return out


@dataclass
class ReferenceResult:
    """A published number to print beside ours.

    Attributes:
        source: the paper (and table) the numbers come from.
        average: the published average over the tasks, in percent.
        per_task: published per-task numbers, in percent (only from a checked source).
        metric: the metric they report.
    """

    source: str
    average: float | None = None
    per_task: dict[str, float] = field(default_factory=dict)
    metric: str = "accuracy"


@dataclass
class ExperimentConfig:
    """One experiment: tasks, features, an encoder, sharing methods to compare, seeds.

    Attributes:
        name: experiment name (the run folder is named after it).
        data: dataset name -> loader options (or a list of them, e.g. several ``user_files``);
            the tasks of all datasets are trained together.
        features: featurizer options (the featurizer kind follows the encoder's input).
        encoder: the encoder and its parameters.
        methods: sharing methods to compare; ``single_task`` trains each task alone. An entry
            may set its own ``sampler``, ``weighting``, ``loss_weights`` and table ``label``.
        weighting: loss weighting of the joint runs (unless a method entry sets its own).
        sampler: task sampler of the joint runs (unless a method entry sets its own).
        training: optimisation and model selection.
        seeds: one run per seed and method.
        baselines: non-neural baselines to add to the table (``logreg_per_task``,
            ``logreg_pooled``).
        reference: published numbers printed beside ours.
        output_dir: where run folders are written.
        unlabelled_in_vocabulary: when a method reads the tasks' unlabelled texts, fit the
            featurizer (vocabulary, TF-IDF statistics) on them too.
        max_rows: split (``train``, ``dev``, ``test``) -> at most this many rows per task, a
            seeded class-balanced sample (:meth:`~textmtl.data.tasks.Task.limited`): for a quick
            check of a whole config, never for a reported table (the table says it is limited).
    """

    name: str
    data: dict[str, dict[str, Any] | list[dict[str, Any]]]
    encoder: ComponentConfig
    methods: list[MethodConfig]
    features: dict[str, Any] = field(default_factory=dict)
    weighting: ComponentConfig = field(default_factory=lambda: ComponentConfig("fixed"))
    sampler: ComponentConfig = field(default_factory=lambda: ComponentConfig("every_task"))
    training: TrainingConfig = field(default_factory=TrainingConfig)
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    baselines: list[str] = field(default_factory=list)
    reference: ReferenceResult | None = None
    output_dir: str = "runs"
    unlabelled_in_vocabulary: bool = False
    max_rows: dict[str, int] | None = None

    def method_train_tasks(self, method: MethodConfig) -> str:
        """``together``, ``separately`` or ``oriented`` (see :class:`MethodConfig`)."""
        if method.train_tasks is not None:
            return method.train_tasks
        from .sharing import SHARING

        return "separately" if SHARING.get(method.name).trains_tasks_separately else "together"

    def method_sampler(self, method: MethodConfig) -> ComponentConfig:
        return method.sampler or self.sampler

    def method_weighting(self, method: MethodConfig) -> ComponentConfig:
        return method.weighting or self.weighting

    def method_encoder(self, method: MethodConfig) -> ComponentConfig:
        return method.encoder or self.encoder

    def method_features(self, method: MethodConfig) -> dict[str, Any]:
        """The featurizer options of ``method`` (see :class:`MethodConfig`)."""
        if method.features is not None:
            return method.features
        from .encoders import ENCODERS

        same_input = (ENCODERS.get(self.method_encoder(method).name).input_kind
                      == ENCODERS.get(self.encoder.name).input_kind)
        return self.features if same_input else {}

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["encoder"] = self.encoder.as_dict()
        out["methods"] = [m.as_dict() for m in self.methods]
        out["weighting"] = self.weighting.as_dict()
        out["sampler"] = self.sampler.as_dict()
        return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error.

    Plain YAML keeps the last value silently, so a repeated ``training:`` section would drop
    every setting of the first one without a word.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _UniqueKeyLoader.construct_mapping)

#: an experiment name is a folder name: no separators, no leading dot (``..`` would escape
#: the output dir)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
#: room for the timestamp and ``.partial`` within a file system's 255-byte names
MAX_NAME_LENGTH = 200


def _component(value: Any, key: str) -> ComponentConfig:
    if isinstance(value, str):
        return ComponentConfig(value)
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(f"'{key}' must be a name or a mapping with a 'name' key, got {value!r}")
    params = {k: v for k, v in value.items() if k != "name"}
    if not isinstance(value["name"], str):
        raise ConfigError(f"'{key}.name' must be a string, got {value['name']!r}")
    return ComponentConfig(value["name"], params)


def _method(value: Any, key: str) -> MethodConfig:
    component = _component(value, key)
    params = dict(component.params)
    entry = {k: params.pop(k) for k in METHOD_ENTRY_KEYS if k in params}
    label = entry.get("label")
    if label is not None and not isinstance(label, str):
        raise ConfigError(f"'{key}.label' must be a string, got {label!r}")
    loss_weights = entry.get("loss_weights", {})
    if not _matches(loss_weights, dict[str, float]) or any(v < 0 for v in loss_weights.values()):
        raise ConfigError(f"'{key}.loss_weights' must map extra-loss names to weights >= 0, "
                          f"got {loss_weights!r}")
    features = entry.get("features")
    if features is not None and not isinstance(features, dict):
        raise ConfigError(f"'{key}.features' must be a mapping of featurizer options, got {features!r}")
    train_tasks = entry.get("train_tasks")
    if train_tasks is not None and train_tasks not in TRAIN_TASKS:
        raise ConfigError(f"'{key}.train_tasks' must be one of {', '.join(TRAIN_TASKS)}, "
                          f"got {train_tasks!r}")
    return MethodConfig(component.name, params, label=label,
                        sampler=_component(entry["sampler"], f"{key}.sampler") if "sampler" in entry else None,
                        weighting=_component(entry["weighting"], f"{key}.weighting") if "weighting" in entry else None,
                        loss_weights=dict(loss_weights),
                        encoder=_component(entry["encoder"], f"{key}.encoder") if "encoder" in entry else None,
                        features=None if features is None else dict(features),
                        train_tasks=train_tasks, grid_group=entry.get("grid_group"))


def _grid_value_text(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _set_dotted(entry: dict, path: str, value: Any, where: str) -> None:
    """Set ``entry[a][b]...[z] = value`` for ``path`` "a.b...z" (list indexes as numbers)."""
    parts = path.split(".")
    node: Any = entry
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ConfigError(f"'{where}.grid' path {path!r}: the entry has no "
                              f"'{'.'.join(parts[:i + 1])}'")
        if isinstance(node, str):  # a component given by name: make it a mapping
            node = {"name": node}
    failure = _assign_leaf(node, parts[-1], value)
    if failure == "index":
        raise ConfigError(f"'{where}.grid' path {path!r}: index {parts[-1]!r} is not in the list")
    if failure == "container":
        raise ConfigError(f"'{where}.grid' path {path!r} does not lead into a mapping or list")


def _assign_leaf(node: Any, last: str, value: Any) -> str | None:
    """``node[last] = value`` for a mapping, ``node[int(last)]`` for a list (an existing index).

    Returns None when assigned, else why not: ``"index"`` (not an index of the list) or
    ``"container"`` (``node`` is neither); the callers word the error for their own syntax.
    """
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            return "index"
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        return "container"
    return None


def expand_grids(methods: list, source: str = "config") -> list:
    """Replace every ``methods`` entry that has a ``grid`` by one entry per grid point.

    ``grid`` maps dotted paths inside the entry (``regularizers.0.weight``, ``self_weight``,
    ``sampler.temperature``) to lists of values; every combination becomes an entry labelled
    ``<title>@<last path part>=<value>,...`` with ``grid_group: <title>``. The table shows, under
    ``<title>``, the member with the best mean dev score over seeds and tasks (dev only, never
    test); ``grid.md`` lists every member. Entries without ``grid`` pass unchanged.
    """
    import itertools

    expanded = []
    for i, entry in enumerate(methods):
        if not isinstance(entry, dict) or "grid" not in entry:
            expanded.append(entry)
            continue
        where = f"methods.{i}"
        grid = entry["grid"]
        if (not isinstance(grid, dict) or not grid
                or any(not isinstance(v, list) or not v for v in grid.values())):
            raise ConfigError(f"{source}: '{where}.grid' must map dotted paths in the entry to "
                              f"non-empty lists of values, got {grid!r}")
        if "grid_group" in entry:
            raise ConfigError(f"{source}: '{where}' has both 'grid' and 'grid_group'")
        base = {k: v for k, v in entry.items() if k != "grid"}
        title = base.get("label") or base.get("name")
        paths = list(grid)
        for values in itertools.product(*(grid[p] for p in paths)):
            member = copy.deepcopy(base)
            for path, value in zip(paths, values):
                _set_dotted(member, path, value, where)
            point = ",".join(f"{p.split('.')[-1]}={_grid_value_text(v)}" for p, v in zip(paths, values))
            member["label"] = f"{title}@{point}"
            member["grid_group"] = title
            expanded.append(member)
    return expanded


def _check_fields(cls: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Check keys and simple types of a plain dataclass section."""
    if not isinstance(raw, dict):
        raise ConfigError(f"'{where}' must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"unknown key '{where}.{key}'; valid keys: {', '.join(names)}")
        if not _matches(value, hints[key]):
            raise ConfigError(f"'{where}.{key}' must be {_type_name(hints[key])}, "
                              f"got {value!r} ({type(value).__name__})")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for key in required:
        if key not in raw:
            raise ConfigError(f"'{where}' needs key '{key}'" if where else f"config needs key '{key}'")
    return raw


def parse_config(raw: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a plain mapping."""
    from .data.datasets import DATASETS
    from .data.features import FEATURIZERS
    from .data.samplers import SAMPLERS
    from .encoders import ENCODERS
    from .sharing import SHARING
    from .weighting import WEIGHTINGS

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a YAML mapping at the top level, got {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    top_hints = {"data": dict, "features": dict, "seeds": list[int], "baselines": list[str],
                 "name": str, "output_dir": str, "unlabelled_in_vocabulary": bool}
    names = [f.name for f in dataclasses.fields(ExperimentConfig)]
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{key}'; valid keys: {', '.join(names)}")
        if key in top_hints and not _matches(value, top_hints[key]):
            raise ConfigError(f"{source}: '{key}' must be {_type_name(top_hints[key])}, got {value!r}")
    for key in ("name", "data", "encoder", "methods"):
        if key not in raw:
            raise ConfigError(f"{source}: missing key '{key}'")
    if len(raw["name"]) > MAX_NAME_LENGTH:
        raise ConfigError(f"{source}: 'name' must be at most {MAX_NAME_LENGTH} characters (it names "
                          f"the run folder), got {len(raw['name'])}")
    if not NAME_PATTERN.fullmatch(raw["name"]):
        raise ConfigError(f"{source}: 'name' must be a folder name (letters, digits, _ . + -, "
                          f"not starting with '.' or '-'), got {raw['name']!r}")
    if not raw["data"]:
        raise ConfigError(f"{source}: 'data' must name at least one dataset")
    for dataset, entries in raw["data"].items():
        # one mapping of loader options, or a list of them (e.g. several user_files tasks)
        many = isinstance(entries, list)
        if many and not entries:
            raise ConfigError(f"{source}: 'data.{dataset}' is an empty list; expected at least "
                              "one mapping of loader options")
        checked = []
        for i, options in enumerate(entries if many else [entries]):
            where = f"data.{dataset}.{i}" if many else f"data.{dataset}"
            options = {} if options is None else options
            if not isinstance(options, dict):
                raise ConfigError(f"{source}: '{where}' must be a mapping of loader options, got {options!r}")
            DATASETS.get(dataset)
            DATASETS.validate(dataset, options, where)
            checked.append(options)
        raw["data"][dataset] = checked if many else checked[0]

    encoder = _component(raw["encoder"], "encoder")
    ENCODERS.validate(encoder.name, encoder.params, "encoder")
    featurizer_kind = ENCODERS.get(encoder.name).input_kind
    FEATURIZERS.validate(featurizer_kind, raw.get("features", {}), "features")
    if not isinstance(raw["methods"], list) or not raw["methods"]:
        raise ConfigError(f"{source}: 'methods' must be a non-empty list of sharing methods")
    raw["methods"] = expand_grids(raw["methods"], source)
    methods = [_method(m, f"methods.{i}") for i, m in enumerate(raw["methods"])]
    weighting = _component(raw.get("weighting", "fixed"), "weighting")
    WEIGHTINGS.validate(weighting.name, weighting.params, "weighting")
    sampler = _component(raw.get("sampler", "every_task"), "sampler")
    SAMPLERS.validate(sampler.name, sampler.params, "sampler")
    for i, method in enumerate(methods):
        SHARING.validate(method.name, method.params, f"methods.{i}")
        if method.sampler is not None:
            SAMPLERS.validate(method.sampler.name, method.sampler.params, f"methods.{i}.sampler")
        if method.weighting is not None:
            WEIGHTINGS.validate(method.weighting.name, method.weighting.params, f"methods.{i}.weighting")
        if method.encoder is not None:
            ENCODERS.validate(method.encoder.name, method.encoder.params, f"methods.{i}.encoder")
        if method.encoder is not None or method.features is not None:
            kind = ENCODERS.get((method.encoder or encoder).name).input_kind
            own = method.features if method.features is not None else \
                (raw.get("features", {}) if kind == featurizer_kind else {})
            FEATURIZERS.validate(kind, own, f"methods.{i}.features")
        if SHARING.get(method.name).trains_tasks_separately and method.train_tasks not in (None, "separately"):
            raise ConfigError(f"'methods.{i}.train_tasks' must be 'separately' for {method.name!r} "
                              f"(its model holds one task), got {method.train_tasks!r}")
        known = SHARING.get(method.name).extra_loss_names
        unknown = sorted(set(method.loss_weights) - set(known))
        if unknown:
            raise ConfigError(f"'methods.{i}.loss_weights' names {unknown[0]!r}, which method "
                              f"{method.name!r} does not compute; its extra losses: "
                              f"{', '.join(known) or '(none)'}")
    titles = [m.title for m in methods]
    titles += list(dict.fromkeys(m.grid_group for m in methods if m.grid_group))  # each group's column
    repeated = sorted({t for t in titles if titles.count(t) > 1})
    if repeated:
        raise ConfigError(f"{source}: 'methods' has two entries named {repeated[0]!r}; give one "
                          "a 'label' (the table column name)")
    training = TrainingConfig(**_check_fields(TrainingConfig, raw.get("training", {}), "training"))
    training.validate()
    reference = None
    if raw.get("reference") is not None:
        reference = ReferenceResult(**_check_fields(ReferenceResult, raw["reference"], "reference"))
    from .baselines import BASELINES
    for baseline in raw.get("baselines", []):
        if baseline not in BASELINES:
            raise ConfigError(f"{source}: unknown baseline {baseline!r}; expected one of {', '.join(sorted(BASELINES))}")
    max_rows = raw.get("max_rows")
    if max_rows is not None:
        from .data.tasks import SPLITS

        if (not isinstance(max_rows, dict) or not max_rows or set(max_rows) - set(SPLITS)
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in max_rows.values())):
            raise ConfigError(f"{source}: 'max_rows' must map splits ({', '.join(SPLITS)}) to "
                              f"row counts >= 1, got {max_rows!r}")
    seeds = raw.get("seeds", [1])
    if not seeds:
        raise ConfigError(f"{source}: 'seeds' must list at least one seed")
    if any(seed < 0 for seed in seeds):
        raise ConfigError(f"{source}: 'seeds' must be integers >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        # two runs of one seed share a folder and make a std over copies
        raise ConfigError(f"{source}: 'seeds' lists a seed twice, got {seeds}; expected distinct seeds")
    return ExperimentConfig(
        name=raw["name"], data=raw["data"], encoder=encoder, methods=methods,
        features=raw.get("features", {}), weighting=weighting, sampler=sampler, training=training,
        seeds=raw.get("seeds", [1, 2, 3]), baselines=raw.get("baselines", []),
        reference=reference, output_dir=raw.get("output_dir", "runs"),
        unlabelled_in_vocabulary=raw.get("unlabelled_in_vocabulary", False),
        max_rows=max_rows,
    )


def check_references(config: ExperimentConfig, tasks: Sequence) -> None:
    """Every cross-reference of a config to task names, checked once the tasks are known.

    ``training.select_on``, the keys of ``training.select_metric``, and every component
    parameter whose keys are task names (a component lists them in its ``task_references``
    class attribute, e.g. ``weights`` of the fixed weighting, ``task_stages`` of low
    supervision) must name tasks of the experiment. Raises a one-line :class:`ConfigError`.
    """
    from .sharing import SHARING
    from .training.metrics import default_metric, metrics_for
    from .weighting import WEIGHTINGS

    names = [t.name for t in tasks]
    listed = ", ".join(names)
    select_on = config.training.select_on
    if select_on != AVERAGE and select_on not in names:
        raise ConfigError(f"'training.select_on' must be 'average' or a task name ({listed}), "
                          f"got {select_on!r}")
    if isinstance(config.training.select_metric, dict):
        unknown = sorted(set(config.training.select_metric) - set(names))
        if unknown:
            raise ConfigError(f"'training.select_metric' names unknown task {unknown[0]!r}; "
                              f"tasks: {listed}")
    for task in tasks:
        # span-F1 exists for chunk-like tag sets only: a selection on it must have it to read
        chosen = config.training.metric_of(task.name, default_metric(task.kind, task.labels))
        available = metrics_for(task.kind, task.labels)
        if chosen not in available:
            raise ConfigError(f"'training.select_metric' is {chosen!r} for task {task.name!r}, "
                              f"which has only {', '.join(available)} ({task.kind})")
    sections = [("weighting", WEIGHTINGS, config.weighting)]
    for i, method in enumerate(config.methods):
        sections.append((f"methods.{i}", SHARING, method))
        if method.weighting is not None:
            sections.append((f"methods.{i}.weighting", WEIGHTINGS, method.weighting))
    for where, registry, component in sections:
        for key in getattr(registry.get(component.name), "task_references", ()):
            unknown = sorted(set(component.params.get(key, {})) - set(names))
            if unknown:
                raise ConfigError(f"'{where}.{key}' names unknown task {unknown[0]!r}; "
                                  f"tasks: {listed}")


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML.

    List items are addressed by index (``methods.1.self_weight=0.8``).
    """
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {key}: value {text!r} is not valid YAML") from error
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        path = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: '{path}' must be a list index below {len(node)}")
            child_key: Any = int(part)
        elif isinstance(node, dict):
            child_key = part
            if node.get(part) is None:
                node[part] = {}
        else:
            raise ConfigError(f"--set {key}: '{'.'.join(parts[:depth])}' is not a mapping or list")
        if isinstance(node[child_key], str):  # a component given by name gains parameters
            node[child_key] = {"name": node[child_key]}
        node = node[child_key]
    failure = _assign_leaf(node, parts[-1], value)
    if failure == "index":
        raise ConfigError(f"--set {key}: '{parts[-1]}' must be a list index below {len(node)}")
    if failure == "container":
        raise ConfigError(f"--set {key}: '{'.'.join(parts[:-1])}' is not a mapping or list")


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config, apply ``--set`` overrides and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; expected a YAML config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read the config file (permission denied)") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(error, 'problem', error)}") from None
    if raw is None:
        raise ConfigError(f"{path}: config file is empty; expected a YAML mapping")
    for assignment in overrides or []:
        apply_override(raw, assignment)
    try:
        return parse_config(raw, str(path))
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}") from None
