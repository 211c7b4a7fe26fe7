"""Task samplers: which task(s) each training step draws rows from.

A sampler plans an epoch as a list of steps; each step is a list of :class:`Draw`
``(task_id, num_rows, source)``. The trainer draws the rows from per-task shuffled streams that
persist across epochs, so a small task cycles through its data while a large one is still in its
first pass.

Epoch length: samplers that train one task per step make ``ceil(total_rows / batch_size)``
steps (one pass over all data on average); ``every_task`` makes ``ceil(max_k n_k / batch)``
steps of one batch from every task (one pass over the largest task).

Every sampler can add unlabelled rows to its steps (``unlabelled_per_step``): for each task
drawn in a step, that many rows of the task's unlabelled texts (for methods that read them,
e.g. the adversarial task discriminator of ASP-MTL). Capabilities that sharing methods may
require are class attributes, checked when an experiment is loaded:

- ``trains_every_task_per_step``: every step holds rows of every task;
- ``draws_collections``: every step holds the same number of rows of every task, row i of
  each forming collection i (Zhang et al. 2017's Type-III input).

A step's draw names a row count (the trainer takes that many rows from the task's stream) or,
for a sampler that chooses the rows itself (Task Oriented Sampling,
:mod:`textmtl.data.task_oriented_sampling`), the positions within the task's training rows.
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

import numpy as np

from ..registry import Registry
from .batching import UNLABELLED, Draw

SAMPLERS: Registry = Registry("sampler")

Step = list[Draw]


class TaskSampler:
    """Base class: ``plan_epoch`` returns the steps of one epoch.

    Args:
        task_names: the tasks, in task-id order.
        unlabelled_per_step: unlabelled rows drawn per task drawn in a step (0: none).
    """

    trains_every_task_per_step: ClassVar[bool] = False
    draws_collections: ClassVar[bool] = False

    def __init__(self, task_names: Sequence[str] = (), *, unlabelled_per_step: int = 0) -> None:
        if unlabelled_per_step < 0:
            raise ValueError(f"'unlabelled_per_step' of {type(self).__name__} must be >= 0, "
                             f"got {unlabelled_per_step}")
        self.task_names = list(task_names)
        self.unlabelled_per_step = unlabelled_per_step

    def plan_epoch(self, task_sizes: Sequence[int], batch_size: int,
                   rng: np.random.Generator,
                   unlabelled_sizes: Sequence[int] | None = None) -> list[Step]:
        """The steps of one epoch.

        Args:
            task_sizes: training rows per task.
            batch_size: rows per task per step.
            rng: the run's generator.
            unlabelled_sizes: unlabelled rows per task (tasks with none get no such draws).
        """
        steps = [[Draw(k, n) for k, n in step] for step in self.plan_labelled(task_sizes, batch_size, rng)]
        if self.unlabelled_per_step and unlabelled_sizes is not None:
            for step in steps:
                step += [Draw(d.task, self.unlabelled_per_step, UNLABELLED) for d in list(step)
                         if unlabelled_sizes[d.task] > 0]
        return steps

    def plan_labelled(self, task_sizes: Sequence[int], batch_size: int,
                      rng: np.random.Generator) -> list[list[tuple[int, int]]]:
        """The labelled draws of each step: ``(task_id, num_rows)`` pairs."""
        raise NotImplementedError


class _OneTaskPerStep(TaskSampler):
    def probabilities(self, task_sizes: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def plan_labelled(self, task_sizes, batch_size, rng):
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
        unlabelled_per_step: unlabelled rows drawn per task drawn in a step (0: none).
    """

    def __init__(self, task_names: Sequence[str] = (), *, temperature: float = 2.0,
                 unlabelled_per_step: int = 0) -> None:
        super().__init__(task_names, unlabelled_per_step=unlabelled_per_step)
        if temperature <= 0:
            raise ValueError(f"'temperature' of TemperatureSampler must be > 0, got {temperature}")
        self.temperature = temperature

    def probabilities(self, task_sizes):
        scaled = np.asarray(task_sizes, dtype=float) ** (1.0 / self.temperature)
        return scaled / scaled.sum()


@SAMPLERS.register("round_robin")
class RoundRobinSampler(TaskSampler):
    """One task per step, cycling through the tasks in order."""

    def plan_labelled(self, task_sizes, batch_size, rng):
        steps = math.ceil(sum(task_sizes) / batch_size)
        return [[(step % len(task_sizes), batch_size)] for step in range(steps)]


@SAMPLERS.register("every_task")
class EveryTaskSampler(TaskSampler):
    """Every step takes one batch from every task (the combined batch trains all tasks)."""

    trains_every_task_per_step = True

    def plan_labelled(self, task_sizes, batch_size, rng):
        steps = math.ceil(max(task_sizes) / batch_size)
        return [[(k, batch_size) for k in range(len(task_sizes))] for _ in range(steps)]


class TaskStreams:
    """Per-task endless streams of shuffled row indices (reshuffled after each pass).

    Args:
        task_sizes: number of rows per task.
        rng: the run's random generator.
        order: optional function ``(task_id, rng) -> permutation`` replacing plain shuffling
            (e.g. length-bucketed orders for recurrent encoders).
    """

    def __init__(self, task_sizes: Sequence[int], rng: np.random.Generator, order=None) -> None:
        self.sizes = list(task_sizes)
        self.rng = rng
        self.order = order or (lambda k, r: r.permutation(self.sizes[k]))
        self.queues = [np.empty(0, dtype=np.int64) for _ in self.sizes]

    def take(self, task_id: int, count: int, exact: bool = False) -> np.ndarray:
        """The next ``count`` rows of the task.

        Args:
            task_id: the task.
            count: rows wanted.
            exact: return exactly ``count`` rows even from a smaller task (its rows then repeat
                within the draw; collections need one row of every task). Otherwise a task
                smaller than ``count`` gives all its rows once.
        """
        if not exact:
            count = min(count, self.sizes[task_id])
        queue = self.queues[task_id]
        while len(queue) < count:
            queue = np.concatenate([queue, self.order(task_id, self.rng)])
        self.queues[task_id] = queue[count:]
        return queue[:count]


from . import task_oriented_sampling  # noqa: E402,F401  (registers "task_oriented")
