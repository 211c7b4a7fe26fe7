"""Task samplers: which task(s) each training step draws rows from.

A sampler plans an epoch as a list of steps; each step is a list of ``(task_id, num_rows)``.
The trainer draws the rows from per-task shuffled streams that persist across epochs, so a
small task cycles through its data while a large one is still in its first pass.

Epoch length: samplers that train one task per step make ``ceil(total_rows / batch_size)``
steps (one pass over all data on average); ``every_task`` makes ``ceil(max_k n_k / batch)``
steps of one batch from every task (one pass over the largest task).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..registry import Registry

SAMPLERS: Registry = Registry("sampler")

Step = list[tuple[int, int]]


class TaskSampler:
    """Base class: ``plan_epoch`` returns the steps of one epoch."""

    def plan_epoch(self, task_sizes: Sequence[int], batch_size: int,
                   rng: np.random.Generator) -> list[Step]:
        raise NotImplementedError


class _OneTaskPerStep(TaskSampler):
    def probabilities(self, task_sizes: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def plan_epoch(self, task_sizes, batch_size, rng):
        steps = math.ceil(sum(task_sizes) / batch_size)
        tasks = rng.choice(len(task_sizes), size=steps, p=self.probabilities(task_sizes))
        return [[(int(k), batch_size)] for k in tasks]


@SAMPLERS.register("proportional")
class ProportionalSampler(_OneTaskPerStep):
    """One task per step, chosen with probability proportional to its training size."""

    def probabilities(self, task_sizes):
        sizes = np.asarray(task_sizes, dtype=float)
        return sizes / sizes.sum()


@SAMPLERS.register("uniform")
class UniformSampler(_OneTaskPerStep):
    """One task per step, every task equally likely."""

    def probabilities(self, task_sizes):
        return np.full(len(task_sizes), 1.0 / len(task_sizes))


@SAMPLERS.register("temperature")
class TemperatureSampler(_OneTaskPerStep):
    """One task per step with probability proportional to ``n_k ** (1 / temperature)``.

    Args:
        temperature: 1 is proportional sampling; large values approach uniform.
    """

    def __init__(self, *, temperature: float = 2.0) -> None:
        if temperature <= 0:
            raise ValueError(f"'temperature' of TemperatureSampler must be > 0, got {temperature}")
        self.temperature = temperature

    def probabilities(self, task_sizes):
        scaled = np.asarray(task_sizes, dtype=float) ** (1.0 / self.temperature)
        return scaled / scaled.sum()


@SAMPLERS.register("round_robin")
class RoundRobinSampler(TaskSampler):
    """One task per step, cycling through the tasks in order."""

    def plan_epoch(self, task_sizes, batch_size, rng):
        steps = math.ceil(sum(task_sizes) / batch_size)
        return [[(step % len(task_sizes), batch_size)] for step in range(steps)]


@SAMPLERS.register("every_task")
class EveryTaskSampler(TaskSampler):
    """Every step takes one batch from every task (the combined batch trains all tasks)."""

    def plan_epoch(self, task_sizes, batch_size, rng):
        steps = math.ceil(max(task_sizes) / batch_size)
        return [[(k, batch_size) for k in range(len(task_sizes))] for _ in range(steps)]


class TaskStreams:
    """Per-task endless streams of shuffled row indices (reshuffled after each pass).

    Args:
        task_sizes: number of training rows per task.
        rng: the run's random generator.
        order: optional function ``(task_id, rng) -> permutation`` replacing plain shuffling
            (e.g. length-bucketed orders for recurrent encoders).
    """

    def __init__(self, task_sizes: Sequence[int], rng: np.random.Generator, order=None) -> None:
        self.sizes = list(task_sizes)
        self.rng = rng
        self.order = order or (lambda k, r: r.permutation(self.sizes[k]))
        self.queues = [np.empty(0, dtype=np.int64) for _ in self.sizes]

    def take(self, task_id: int, count: int) -> np.ndarray:
        """The next ``count`` rows of the task (fewer only if the task is smaller than that)."""
        count = min(count, self.sizes[task_id])
        queue = self.queues[task_id]
        if len(queue) < count:
            queue = np.concatenate([queue, self.order(task_id, self.rng)])
        self.queues[task_id] = queue[count:]
        return queue[:count]
