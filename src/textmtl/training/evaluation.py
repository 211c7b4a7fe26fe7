"""Scoring a model on a split: every task's metrics, through the method's evaluation plan.

Every gold label is scored. Tagging inputs longer than the featurizer's ``max_length`` are cut
before they reach the model; the tokens past the cut have no prediction and count as wrong
(accuracy, macro-F1) or as outside every predicted chunk (span-F1), and ``cut_tokens`` says
how many there were.

A method's plan may score a row several times, each time beside other companion rows (a
Type-III method's collections, :class:`~textmtl.data.batching.EvaluationChunk`); the row is
then scored once, on the mean of its copies' class probabilities.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.batching import IGNORE_LABEL, MultiTaskData
from .config import TrainingConfig
from .metrics import NO_PREDICTION, default_metric, task_metrics


@torch.no_grad()
def evaluate(model, data: MultiTaskData, split: str, device: torch.device,
             batch_size: int = 512) -> dict[str, dict[str, float]]:
    """Metrics (accuracy, macro-F1, span-F1 for chunk-like tagging) and mean cross-entropy
    ("loss") of every task on ``split``.

    Args:
        model: a sharing method over ``data.tasks``.
        data: the featurized tasks.
        split: "dev" or "test" (or "train").
        device: where the model is.
        batch_size: rows per evaluation batch (the method's plan decides what a batch holds).
    Returns:
        task name -> metric name -> value (fractions; "loss" in nats).
    """
    was_training = model.training
    model.eval()
    predictions: list[dict[int, object]] = [{} for _ in data.tasks]
    loss_sums = [0.0] * len(data.tasks)
    loss_counts = [0] * len(data.tasks)
    for task, logits, labels, scored_positions in scored_chunks(model, data, split, device, batch_size):
        keep = labels != IGNORE_LABEL
        loss_sums[task] += float(F.cross_entropy(logits[keep], labels[keep], reduction="sum"))
        loss_counts[task] += int(keep.sum())
        predicted = logits.argmax(-1).numpy()
        for row, position in enumerate(scored_positions):
            predictions[task][int(position)] = predicted[row]
    results = {}
    for k, task in enumerate(data.tasks):
        gold = task.split(split).labels
        missing = [i for i in range(len(gold)) if i not in predictions[k]]
        if missing:
            raise RuntimeError(f"the evaluation plan of {type(model).__name__} scored no prediction "
                               f"for row {missing[0]} of task {task.name!r} ({split})")
        if task.kind == "classification":
            predicted = np.array([int(predictions[k][i]) for i in range(len(gold))])
            metrics = task_metrics(task.kind, task.labels, np.asarray(gold), predicted)
        else:
            predicted_rows, cut = [], 0
            for i, sentence in enumerate(gold):
                row = np.asarray(predictions[k][i])[: len(sentence)]
                cut += len(sentence) - len(row)
                predicted_rows.append(np.concatenate(
                    [row, np.full(len(sentence) - len(row), NO_PREDICTION)]).astype(np.int64))
            metrics = task_metrics(task.kind, task.labels, [np.asarray(s) for s in gold],
                                   predicted_rows)
            metrics["cut_tokens"] = cut
        results[task.name] = {**metrics, "loss": loss_sums[k] / max(loss_counts[k], 1)}
    model.train(was_training)
    return results


def scored_chunks(model, data: MultiTaskData, split: str, device: torch.device, batch_size: int):
    """The method's evaluation plan over ``split``, run: per chunk ``(task, logits, labels,
    positions)`` of its scored rows, one row per position (a row scored beside several
    companion draws is their mean, :func:`average_repeated_rows`). Also what a saved model's
    predictions run through (``TrainedModel``), so both score a row alike."""
    sizes = [len(rows) for rows in data.rows[split]]
    for chunk in model.evaluation_plan(sizes, batch_size, train_sizes=data.train_sizes()):
        splits = None
        if chunk.companion_split is not None:  # the companions come from another split
            splits = [split] + [chunk.companion_split] * (len(chunk.draws) - 1)
        batch = data.batch(split, chunk.draws, collections=chunk.collections, splits=splits)
        logits = model(batch.to(device)).cpu()
        positions = np.asarray(chunk.draws[0][1])
        scored = len(positions)
        yield (chunk.task, *average_repeated_rows(logits[:scored], batch.labels[:scored], positions))


def average_repeated_rows(logits: torch.Tensor, labels: torch.Tensor, positions: np.ndarray
                          ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """One scored row per position: the copies of a position a plan scores several times (one
    per companion draw of a Type-III method) become the log of their mean class probabilities.

    Args:
        logits: (R, C) or (R, T, C) logits of the scored rows.
        labels: (R,) or (R, T) their labels (the copies of a position have the same).
        positions: (R,) each row's position in its task's split.
    Returns:
        (logits, labels, positions) unchanged when no position repeats (every default plan);
        otherwise one row per distinct position, in increasing position order.
    """
    distinct, first, inverse = np.unique(positions, return_index=True, return_inverse=True)
    if len(distinct) == len(positions):
        return logits, labels, positions
    index = torch.from_numpy(inverse.reshape(-1)).to(logits.device)
    summed = logits.new_zeros((len(distinct), *logits.shape[1:])).index_add_(
        0, index, torch.softmax(logits, dim=-1))
    counts = torch.bincount(index, minlength=len(distinct)).to(logits.dtype)
    mean = summed / counts.view(-1, *([1] * (logits.dim() - 1)))
    # masked classes have probability 0: a finite floor keeps the loss and argmax defined
    tiny = torch.finfo(logits.dtype).tiny
    return mean.clamp_min(tiny).log(), labels[torch.from_numpy(first)], distinct


def selection_metrics(data: MultiTaskData, config: TrainingConfig) -> dict[str, str]:
    """The dev metric that selects epochs for each task (``training.select_metric``)."""
    return {t.name: config.metric_of(t.name, default_metric(t.kind, t.labels)) for t in data.tasks}


def selection_score(metrics: dict[str, dict[str, float]], chosen_metric: dict[str, str],
                    select_on: str) -> tuple[float, float]:
    """(dev metric, minus dev loss) of the selected task(s); compared as a tuple.

    The loss breaks ties: on small dev sets accuracy often stays flat for epochs while the
    model still improves, and a strict metric-only rule would stop training there.

    Args:
        metrics: task -> metric -> value, from :func:`evaluate`.
        chosen_metric: task -> the metric that selects it.
        select_on: "average" or one task name.
    """
    names: Sequence[str] = list(metrics) if select_on == "average" else [select_on]
    return (float(np.mean([metrics[n][chosen_metric[n]] for n in names])),
            -float(np.mean([metrics[n]["loss"] for n in names])))
