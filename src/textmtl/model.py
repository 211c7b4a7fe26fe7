"""Trained models from run folders: ``textmtl.load(RUN_DIR).predict(task, texts)``.

A model folder (``<run>/<method>/seed-<n>[/<task>]``, see :mod:`textmtl.experiment`) holds the
method and encoder configs, the task names and label names, the fitted featurizer and the
weights, so it can read new text with nothing else. An experiment folder holds several; the
method, the seed (and for single-task runs the task) choose one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import ConfigError, DataError

MODEL_FILES = ("model.json", "featurizer.json", "checkpoint.pt", "metrics.json")


@dataclass
class Prediction:
    """One input's prediction: the label (token labels for tagging) and class probabilities."""

    label: str | list[str]
    probabilities: dict[str, float] | list[dict[str, float]]

    def as_dict(self) -> dict:
        return {"label": self.label, "probabilities": self.probabilities}


def model_folders(run_dir: Path) -> list[Path]:
    """Every finished model folder inside ``run_dir`` (itself included)."""
    return sorted(p.parent for p in Path(run_dir).glob("**/model.json")
                  if (p.parent / "metrics.json").is_file())


def find_model(run_dir: str | Path, method: str | None = None, seed: int | None = None,
               task: str | None = None) -> Path:
    """The model folder of ``run_dir`` that ``method``, ``seed`` and ``task`` pick.

    Raises:
        ConfigError: no folder, an incomplete one, or an ambiguous choice (the message lists
            the candidates).
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: run folder not found")
    if (root / "model.json").is_file():
        missing = [f for f in MODEL_FILES if not (root / f).is_file()]
        if missing:
            raise ConfigError(f"{root}: incomplete model folder (missing {', '.join(missing)}); "
                              "was its training interrupted? (continue it with textmtl run --resume)")
        return root
    candidates = model_folders(root)
    if not candidates:
        hint = " (an interrupted run: continue it with textmtl run CONFIG --resume FOLDER)" \
            if root.name.endswith(".partial") else ""
        raise ConfigError(f"{root}: no finished model folder inside{hint}")

    def keep(folder: Path) -> bool:
        parts = folder.relative_to(root).parts
        if method is not None and (not parts or parts[0] != method):
            return False
        if seed is not None and f"seed-{seed}" not in parts:
            return False
        if task is not None and len(parts) > 2:  # single-task runs: one folder per task
            return parts[2] == task
        return True

    chosen = [c for c in candidates if keep(c)]
    if len(chosen) > 1 and task is not None:
        # a joint model that holds the task and single-task folders: the joint one needs --method
        chosen = [c for c in chosen if _holds(c, task)] or chosen
    if len(chosen) == 1:
        return chosen[0]
    listed = ", ".join(str(c.relative_to(root)) for c in candidates[:12])
    what = "matches" if chosen else "matches none of"
    raise ConfigError(f"{root}: the choice (method={method}, seed={seed}) {what} the models "
                      f"{'; choose one with --method/--seed' if chosen else ''}: {listed}")


def _holds(folder: Path, task: str) -> bool:
    try:
        return task in [t["name"] for t in json.loads((folder / "model.json").read_text())["tasks"]]
    except (OSError, ValueError, KeyError):
        return False


class TrainedModel:
    """A trained multi-task model read from a model folder.

    Attributes:
        folder: the model folder.
        task_names: the tasks it predicts.
        method: the sharing method's config.
    """

    def __init__(self, folder: Path, device: str = "auto", data_dir: str | None = None) -> None:
        from . import __version__
        from .config import METHOD_ENTRY_KEYS
        from .data.features import FEATURIZERS
        from .encoders import ENCODERS
        from .experiment import MODEL_FORMAT
        from .sharing import SHARING
        from .sharing.base import TaskSpec
        from .training.checkpoint import load_checkpoint
        from .training.runtime import resolve_device

        self.folder = folder
        #: where the run's datasets are, for methods that score texts beside training texts
        #: (None: $TEXTMTL_DATA_DIR, the cache)
        self.data_dir = data_dir
        self._companions = None
        try:
            info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
            features = json.loads((folder / "featurizer.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"{folder}: unreadable model folder ({error})") from None
        if info.get("format") != MODEL_FORMAT:
            raise ConfigError(f"{folder}/model.json: model format {info.get('format')!r} (written by "
                              f"textmtl {info.get('textmtl_version', '?')}); this textmtl "
                              f"({__version__}) reads format {MODEL_FORMAT}")
        self.tasks = info["tasks"]
        self.task_names = [t["name"] for t in self.tasks]
        self.method = info["method"]
        self.device = resolve_device(device, "device")
        self.featurizer = FEATURIZERS.get(features["kind"]).from_state(features["state"])
        spec = self.featurizer.spec()
        encoder = info["encoder"]
        specs = [TaskSpec(t["name"], len(t["labels"]), "token" if t["kind"] == "tagging" else "sequence")
                 for t in self.tasks]
        encoder_params = {k: v for k, v in encoder.items() if k != "name"}
        # the entry's own encoder, features, sampler... are not the sharing method's parameters
        method_params = {k: v for k, v in self.method.items()
                         if k != "name" and k not in METHOD_ENTRY_KEYS}
        self.model = SHARING.build(
            self.method["name"], specs,
            lambda: ENCODERS.build(encoder["name"], spec, params=encoder_params, where="encoder"),
            params=method_params, where="method")
        self.model.load_exported_state(load_checkpoint(folder / "checkpoint.pt"))
        self.model.to(self.device).eval()

    def _task(self, task: str) -> tuple[int, dict]:
        if task not in self.task_names:
            raise ConfigError(f"{self.folder}: unknown task {task!r}; this model predicts "
                              f"{', '.join(self.task_names)}")
        k = self.task_names.index(task)
        return k, self.tasks[k]

    @torch.no_grad()
    def logits(self, task: str, texts: Sequence, batch_size: int = 256) -> list[torch.Tensor]:
        """Raw logits of each text for ``task`` ((C,) or (T, C) per text, own classes only)."""
        from .data.batching import Batch

        k, info = self._task(task)
        tagging = info["kind"] == "tagging"
        texts = [t.split() if tagging and isinstance(t, str) else t for t in texts]
        if not texts:
            return []
        if self.model.rows_interact:
            return self._logits_beside_companions(k, texts, batch_size)
        table = self.featurizer.transform(list(texts))
        level = "token" if tagging else "sequence"
        out: list[torch.Tensor] = []
        classes = len(info["labels"])
        for start in range(0, len(texts), batch_size):
            rows = np.arange(start, min(start + batch_size, len(texts)))
            inputs = table.gather(rows)
            batch = Batch.of(inputs, torch.full((len(rows),), k, dtype=torch.long), level=level)
            logits = self.model(batch.to(self.device)).cpu()[..., :classes]
            if tagging:
                lengths = inputs.lengths.tolist()
                out += [logits[b, : lengths[b]] for b in range(len(rows))]
            else:
                out += list(logits)
        return out

    def _logits_beside_companions(self, k: int, texts: list, batch_size: int) -> list[torch.Tensor]:
        """Logits of texts of task ``k`` for a method whose rows interact (Zhang et al.'s
        collections): each text is scored as evaluation scores a test row, beside companion
        training texts of the other tasks drawn by the method's own rule (the row's position
        and the tasks, never the batch), the mean of its draws' class probabilities, as
        log-probabilities. The companions are the training rows of the run, read again from
        its config and datasets, so ``evaluate`` on a run's test split reproduces its
        ``metrics.json``."""
        from .data.batching import MultiTaskData
        from .data.tasks import Split
        from .training.evaluation import scored_chunks

        companions = self._companion_data()
        task = companions.tasks[k]
        dummy = [[0] * len(t) for t in texts] if task.kind == "tagging" else [0] * len(texts)
        tasks = list(companions.tasks)
        tasks[k] = dataclasses.replace(task, test=Split(list(texts), dummy))
        rows = [np.arange(len(texts)) if j == k else np.empty(0, dtype=np.int64)
                for j in range(len(tasks))]
        data = MultiTaskData(tasks, {"train": companions.tables["train"],
                                     "test": self.featurizer.transform(list(texts))},
                             {"train": companions.rows["train"], "test": rows},
                             companions.spec, self.featurizer)
        classes = len(self.tasks[k]["labels"])
        out: dict[int, torch.Tensor] = {}
        for _, logits, _, positions in scored_chunks(self.model, data, "test", self.device, batch_size):
            for row, position in enumerate(positions):
                out[int(position)] = logits[row, ..., :classes]
        if task.kind != "tagging":
            return [out[i] for i in range(len(texts))]
        lengths = data.tables["test"].gather(np.arange(len(texts))).lengths.tolist()
        return [out[i][: lengths[i]] for i in range(len(texts))]

    def _companion_data(self):
        """The model's tasks' training rows, featurized by its featurizer (read once)."""
        if self._companions is not None:
            return self._companions
        import yaml

        from .config import parse_config
        from .data.batching import MultiTaskData
        from .experiment import load_experiment_tasks

        # the run's config.yaml sits above the model folder: <run>/<method>/[<pair>/]seed-<n>[/<task>]
        found = next((p / "config.yaml" for p in list(self.folder.parents)[:4]
                      if (p / "config.yaml").is_file()), None)
        if found is None:
            raise ConfigError(f"{self.folder}: method {self.method['name']!r} scores a text beside "
                              "training texts of the other tasks; expected the run's config.yaml in "
                              "a folder above the model (it names the datasets), found none")
        try:
            config = parse_config(yaml.safe_load(found.read_text(encoding="utf-8")), str(found))
        except yaml.YAMLError as error:
            raise ConfigError(f"{found}: unreadable ({error})") from None
        loaded = {t.name: t for t in load_experiment_tasks(config, self.data_dir, lambda line: None)}
        missing = [name for name in self.task_names if name not in loaded]
        if missing:
            raise ConfigError(f"{found}: its data yields no task {missing[0]!r}, which the model "
                              f"{self.folder} was trained on")
        tasks = [loaded[name] for name in self.task_names]
        texts = [t for task in tasks for t in task.train.texts]
        rows, start = [], 0
        for task in tasks:
            rows.append(np.arange(start, start + len(task.train.texts)))
            start += len(task.train.texts)
        self._companions = MultiTaskData(tasks, {"train": self.featurizer.transform(texts)},
                                         {"train": rows}, self.featurizer.spec(), self.featurizer)
        return self._companions

    def predict(self, task: str, texts: Sequence) -> list[Prediction]:
        """Label and class probabilities of each text (tagging: of each token; a text is a
        string split on whitespace, or a list of tokens; tokens past the featurizer's
        ``max_length`` get the label ``None``).

        Args:
            task: one of ``task_names``.
            texts: the inputs.
        Returns:
            One :class:`Prediction` per input, in order.
        """
        k, info = self._task(task)
        labels = info["labels"]
        results = []
        tagging = info["kind"] == "tagging"
        tokens = [t.split() if tagging and isinstance(t, str) else t for t in texts]
        for text, logits in zip(tokens, self.logits(task, texts)):
            probabilities = torch.softmax(logits, dim=-1)
            if tagging:
                cut = len(text) - logits.shape[0]
                token_labels = [labels[i] for i in probabilities.argmax(-1).tolist()] + [None] * cut
                token_probabilities = [dict(zip(labels, map(float, row))) for row in probabilities] + \
                    [{}] * cut
                results.append(Prediction(token_labels, token_probabilities))
            else:
                results.append(Prediction(labels[int(probabilities.argmax())],
                                          dict(zip(labels, map(float, probabilities)))))
        return results

    def evaluate(self, task: str, texts: Sequence, gold_labels: Sequence) -> dict[str, float]:
        """The task's metrics on labelled texts (gold label names; per token for tagging)."""
        from .training.metrics import NO_PREDICTION, task_metrics

        k, info = self._task(task)
        index = {name: i for i, name in enumerate(info["labels"])}
        tagging = info["kind"] == "tagging"

        def ids(names, where):
            unknown = [n for n in names if n not in index]
            if unknown:
                raise DataError(f"{where}: label {unknown[0]!r} is not a label of task {task!r}; "
                                f"expected one of {sorted(index)}")
            return [index[n] for n in names]

        logits = self.logits(task, texts)
        if tagging:
            gold = [np.array(ids(row, f"example {i + 1}")) for i, row in enumerate(gold_labels)]
            predicted = []
            for g, row in zip(gold, logits):
                p = row.argmax(-1).numpy()[: len(g)]
                predicted.append(np.concatenate([p, np.full(len(g) - len(p), NO_PREDICTION)]).astype(np.int64))
            return task_metrics("tagging", info["labels"], gold, predicted)
        gold = np.array(ids(list(gold_labels), "labels"))
        predicted = np.array([int(row.argmax()) for row in logits])
        return task_metrics("classification", info["labels"], gold, predicted)


def load(run_dir: str | Path, method: str | None = None, seed: int | None = None,
         task: str | None = None, device: str = "auto", data_dir: str | None = None) -> TrainedModel:
    """Read a trained model from a run folder.

    Args:
        run_dir: a model folder, or an experiment folder holding several (then ``method``,
            ``seed`` and, for single-task runs, ``task`` choose one; with one candidate, that one).
        method: the method's column name (folder name) in the experiment.
        seed: the seed.
        task: for single-task runs, the task whose model is wanted.
        device: "auto", "cpu" or "cuda[:N]".
        data_dir: the datasets' folder, read only by methods whose rows interact (their texts
            are scored beside the run's training texts); default: ``$TEXTMTL_DATA_DIR``, the cache.
    Returns:
        The model, ready to ``predict(task, texts)``.
    """
    return TrainedModel(find_model(run_dir, method, seed, task), device, data_dir)
