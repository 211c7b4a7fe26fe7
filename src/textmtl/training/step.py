"""One training step, used by the trainer and by every benchmark (no copies of it).

A step forwards each batch of the step (one per task level: classification rows and tagging
rows cannot share a logits tensor), collects the per-task losses, the method's named extra
losses and its parameter penalties, lets the weighting run the backward pass (it owns it:
gradient methods aggregate per-task gradients there), clips and steps the optimiser, then
applies the proximal steps of the regularisers that ask for them (``uses_proximal_step``; their
penalties are logged but not added to the loss).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from ..data.batching import IGNORE_LABEL, Batch
from ..errors import TrainingError

if TYPE_CHECKING:
    from .distributed import DataParallel
    from .precision import MixedPrecision


def task_losses(logits: torch.Tensor, labels: torch.Tensor, task_index: torch.Tensor,
                task_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Mean cross-entropy of each task present in the batch (over its labelled rows or tokens).

    Args:
        logits: (B, C) or (B, T, C).
        labels: (B,) or (B, T), IGNORE_LABEL where there is nothing to learn (unlabelled rows,
            token padding).
        task_index: (B,) the task of each row.
        task_names: names by task id.
    Returns:
        task name -> loss, for the tasks with at least one labelled row or token.
    """
    if logits.dim() == 3:  # tagging: every token is an example of its row's task
        task_index = task_index[:, None].expand_as(labels)
        logits, labels, task_index = logits.flatten(0, 1), labels.flatten(), task_index.flatten()
    per_example = F.cross_entropy(logits, labels, reduction="none", ignore_index=IGNORE_LABEL)
    valid = (labels != IGNORE_LABEL).to(per_example.dtype)
    k = len(task_names)
    sums = per_example.new_zeros(k).index_add(0, task_index, per_example * valid)
    counts = per_example.new_zeros(k).index_add(0, task_index, valid)
    present = (counts > 0).nonzero(as_tuple=True)[0].tolist()
    return {task_names[i]: sums[i] / counts[i] for i in present}


@dataclass
class StepLosses:
    """The float values of one step's losses, for the learning curves and the hooks."""

    tasks: dict[str, float]
    extras: dict[str, float]


def train_step(model, weighting, batches: Sequence[Batch], optimizer: torch.optim.Optimizer,
               clip_parameters: Sequence[torch.nn.Parameter], clip_norm: float | None,
               extra_loss_weights: dict[str, float] | None = None,
               precision: "MixedPrecision | None" = None,
               data_parallel: "DataParallel | None" = None) -> StepLosses:
    """Forward, backward (by the weighting), clip and update, for one step.

    Args:
        model: a sharing method.
        weighting: a loss weighting (owns the backward pass).
        batches: the step's batches (on the model's device), one per task level.
        optimizer: built from the method's ``param_groups()``.
        clip_parameters: parameters whose global gradient norm is clipped.
        clip_norm: the clipping norm (None: no clipping).
        extra_loss_weights: weight of each named extra loss of the method (names it leaves
            out: the method's ``default_loss_weights``, else 1).
        precision: autocast and loss scaling (:mod:`textmtl.training.precision`); None: fp32.
        data_parallel: this process's group (:mod:`textmtl.training.distributed`): the batches
            are its share of the step's rows; each task's loss is weighted by this process's
            share of what the task's mean runs over (labelled rows, or labelled tokens for
            tagging), the gradients are summed over the group, and the logged losses are the
            combined batch's.
    Returns:
        The step's task losses and extra losses (extra losses unweighted) as floats.
    """
    weights = {**model.default_loss_weights, **(extra_loss_weights or {})}
    losses: dict[str, torch.Tensor] = {}
    extras: dict[str, torch.Tensor] = {}
    with precision.autocast() if precision is not None else contextlib.nullcontext():
        for batch in batches:
            logits = model(batch)
            losses.update(task_losses(logits, batch.labels, batch.task_index, model.task_names))
            for name, value in model.extra_losses().items():
                extras[name] = extras[name] + value if name in extras else value
    weighted_extras = [weights.get(name, 1.0) * value for name, value in extras.items()]
    penalties = model.penalties()  # already weighted by each regulariser's own weight
    extras.update(penalties)
    proximal = proximal_regularizers(model)
    # a proximal-mode penalty is applied by its proximal step below, not by the gradient
    in_loss = [value for name, value in penalties.items()
               if name not in {regularizer.name for regularizer in proximal}]
    extra_total = None
    for value in weighted_extras + in_loss:
        extra_total = value if extra_total is None else extra_total + value
    if data_parallel is not None:
        # this process's means, weighted by its share of what each task's mean runs over:
        # summed over the group, the combined batch's means and their gradients; penalties
        # counted once
        shares = loss_shares(batches, model.task_names, data_parallel)
        losses = {name: loss * shares[name] for name, loss in losses.items()}
        extra_total = None if extra_total is None else extra_total / data_parallel.world
        logged_tasks = combined_losses(losses, shares, model.task_names, data_parallel)
    else:
        logged_tasks = {name: loss.item() for name, loss in losses.items()}
    # the values logged are the true losses, whatever the scaling below
    logged = StepLosses(logged_tasks, {name: float(value.detach()) for name, value in extras.items()})
    optimizer.zero_grad(set_to_none=True)
    if precision is not None and precision.scaler is not None:
        losses = {name: precision.scale(loss) for name, loss in losses.items()}
        extra_total = precision.scale(extra_total)
    if losses:
        weighting.backward(losses, extra_total, model)
    elif extra_total is not None:  # a process whose share of a small step is empty
        extra_total.backward()
    if data_parallel is not None:
        data_parallel.all_reduce_gradients(clip_parameters)
    if precision is not None:
        precision.unscale(optimizer)
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(clip_parameters, clip_norm)
    if precision is not None:
        precision.step(optimizer)
    else:
        optimizer.step()
    proximal_steps(model, proximal, optimizer)
    return logged


def loss_shares(batches: Sequence[Batch], task_names: Sequence[str], data_parallel: "DataParallel") -> dict[str, float]:
    """Per task present anywhere in the step: this process's fraction of the labelled rows
    (tokens, for tagging) that the task's mean loss runs over in the combined batch."""
    local = torch.zeros(len(task_names), dtype=torch.float64)
    for batch in batches:
        labelled = (batch.labels != IGNORE_LABEL).cpu()
        per_row = labelled.reshape(len(labelled), -1).sum(dim=1).to(torch.float64)
        local.index_add_(0, batch.task_index.cpu(), per_row)
    total = data_parallel.all_reduce_sum(local)
    return {name: float(local[i] / total[i]) for i, name in enumerate(task_names) if total[i] > 0}


def combined_losses(scaled: dict[str, torch.Tensor], shares: dict[str, float], task_names: Sequence[str],
                    data_parallel: "DataParallel") -> dict[str, float]:
    """The combined batch's mean loss of every task in the step (in any process's share)."""
    values = torch.zeros(len(task_names), dtype=torch.float64)
    for name, loss in scaled.items():
        values[list(task_names).index(name)] = float(loss.detach())
    total = data_parallel.all_reduce_sum(values)
    return {name: float(total[i]) for i, name in enumerate(task_names) if name in shares}


def proximal_regularizers(model) -> list:
    """The model's regularisers applied by a proximal step (asked by capability, not name)."""
    return [r for r in getattr(model, "regularizers", ()) if getattr(r, "uses_proximal_step", False)]


def proximal_steps(model, regularizers: Sequence, optimizer: torch.optim.Optimizer) -> None:
    """After an optimiser step: each regulariser's ``proximal_step(model, lr)``.

    Args:
        model: a sharing method.
        regularizers: those of :func:`proximal_regularizers`.
        optimizer: the optimiser that just stepped; the step size of a regulariser is the
            current learning rate of the param group holding its parameters.
    Raises:
        TrainingError: the penalised parameters sit in groups with different learning rates.
    """
    for regularizer in regularizers:
        ids = {id(p) for p in regularizer.penalised_parameters(model)}
        rates = {group["lr"] for group in optimizer.param_groups
                 if any(id(p) in ids for p in group["params"])}
        if not rates:  # none of them is trained by this optimiser: nothing moved, nothing to do
            continue
        if len(rates) > 1:
            raise TrainingError(
                f"regularizer {regularizer.name!r} takes a proximal step over parameters in "
                f"optimiser groups with different learning rates ({sorted(rates)}); expected one")
        regularizer.proximal_step(model, rates.pop())


def build_optimizer(groups: list[dict], optimizer: str, lr: float, momentum: float = 0.0,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser over parameter groups; a group's ``lr_scale`` multiplies the base rate.

    Args:
        groups: ``{"params": [...], "name": ..., "lr_scale": ...}`` dicts (empty groups dropped).
        optimizer: "adam" or "sgd".
        lr, momentum, weight_decay: the training settings.
    """
    torch_groups = []
    for group in groups:
        if not group["params"]:
            continue
        group = dict(group)
        group["lr"] = lr * group.pop("lr_scale", 1.0)
        torch_groups.append(group)
    parameters = [p for g in torch_groups for p in g["params"]]
    if optimizer == "adam":
        # the fused kernel updates all tensors in one pass: the dense update of a wide first
        # layer dominates a TF-IDF MLP's step (same arithmetic as the loop version)
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters)
        return torch.optim.Adam(torch_groups, lr=lr, weight_decay=weight_decay, fused=fused)
    return torch.optim.SGD(torch_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
