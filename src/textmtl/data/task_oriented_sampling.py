"""Task Oriented Sampling (TOS): Type-III collections that favour one task (Zhang et al. 2017).

A Type-III model reads one row of every task together (a *collection*). Of the
``N_1 x ... x N_K`` possible collections, Algorithm 1 of the paper builds ``N = n0 * N_k`` for
an oriented task k:

1. task k's set S_k holds each of its ``N_k`` training samples ``n0`` times;
2. every other task i draws a set S_i of N samples, without replacement when ``N_i >= N``,
   with replacement otherwise;
3. collection j takes the j-th sample of every S_i, each S_i in random order (the paper: "randomly
   select a sample from each S_i without replacements").

One epoch is one pass over the N collections, ``batch_size`` collections per step (the paper
takes one per step: batch size 1), the last step holding the rest. The sets are drawn afresh
every epoch from the run's generator. The sampler names the rows itself (``Draw.rows`` holds
positions, not a count), so every step holds the same number of rows of every task, row i of
each forming collection i (``draws_collections``).

References:
    Zhang, Xiao, Wang & Jin (2017), "A Generalized Recurrent Neural Architecture for Text
    Classification with Multi-Task Learning" (IJCAI), section 3.3 and Algorithm 1
    (``generalized-recurrent-mtl.txt``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .samplers import SAMPLERS, TaskSampler


def task_oriented_sets(task_sizes: Sequence[int], oriented: int, upsampling_coefficient: int,
                       rng: np.random.Generator) -> list[np.ndarray]:
    """The sets S_1 ... S_K of Algorithm 1, each in random order: ``S_i[j]`` is task i's row of
    collection j.

    Args:
        task_sizes: N_i, training rows per task.
        oriented: k, the oriented task's index.
        upsampling_coefficient: n0 >= 1; N = n0 * N_k collections.
        rng: the generator (one epoch's sets are drawn from it).
    Returns:
        K arrays of N positions (within each task's training rows).
    References:
        Zhang et al. (2017), Algorithm 1.
    """
    count = upsampling_coefficient * task_sizes[oriented]  # N
    sets = []
    for i, size in enumerate(task_sizes):
        if i == oriented:  # every sample n0 times
            chosen = np.repeat(np.arange(size), upsampling_coefficient)
        elif size >= count:
            chosen = rng.choice(size, size=count, replace=False)
        else:
            chosen = rng.integers(0, size, size=count)
        # collections combine the sets' samples at random
        sets.append(rng.permutation(chosen).astype(np.int64))
    return sets


@SAMPLERS.register("task_oriented")
class TaskOrientedSampler(TaskSampler):
    """Task Oriented Sampling (Zhang et al. 2017, Algorithm 1): collections aimed at one task.

    Each collection holds one row of every task; each row of the oriented task is in
    ``upsampling_coefficient`` collections of an epoch.

    Args:
        oriented_task: the task k whose performance the collections target, by name or by
            index (in task order).
        upsampling_coefficient: n0 >= 1 (the paper uses 2): an epoch has n0 * N_k collections.
        unlabelled_per_step: unlabelled rows drawn per task per step (0: none).
    """

    trains_every_task_per_step = True
    draws_collections = True
    #: a method entry with ``train_tasks: oriented`` builds one sampler per task, oriented on it
    takes_oriented_task = True

    def __init__(self, task_names: Sequence[str] = (), *, oriented_task: str | int = 0,
                 upsampling_coefficient: int = 2, unlabelled_per_step: int = 0) -> None:
        super().__init__(task_names, unlabelled_per_step=unlabelled_per_step)
        name = type(self).__name__
        if isinstance(upsampling_coefficient, bool) or not isinstance(upsampling_coefficient, int) \
                or upsampling_coefficient < 1:
            raise ValueError(f"'upsampling_coefficient' of {name} must be an integer >= 1, "
                             f"got {upsampling_coefficient!r}")
        if isinstance(oriented_task, bool) or not isinstance(oriented_task, (str, int)):
            raise ValueError(f"'oriented_task' of {name} must be a task name or index, "
                             f"got {oriented_task!r}")
        self.oriented_task = oriented_task
        self.upsampling_coefficient = upsampling_coefficient
        if self.task_names:
            self.oriented_index(len(self.task_names))  # fail at construction, not at epoch 1

    def oriented_index(self, num_tasks: int) -> int:
        """The oriented task's index among ``num_tasks`` tasks (one-line error if none)."""
        name = type(self).__name__
        task = self.oriented_task
        if isinstance(task, str):
            if task not in self.task_names:
                listed = ", ".join(self.task_names) or "(no task names given)"
                raise ValueError(f"'oriented_task' of {name} must name a task ({listed}), "
                                 f"got {task!r}")
            return self.task_names.index(task)
        if not 0 <= task < num_tasks:
            raise ValueError(f"'oriented_task' of {name} must be a task index in "
                             f"[0, {num_tasks - 1}], got {task}")
        return task

    def plan_labelled(self, task_sizes, batch_size, rng):
        oriented = self.oriented_index(len(task_sizes))
        empty = [i for i, size in enumerate(task_sizes) if size < 1]
        if empty:
            task = self.task_names[empty[0]] if len(self.task_names) == len(task_sizes) else empty[0]
            raise ValueError(f"{type(self).__name__} draws a row of every task into each "
                             f"collection; task {task!r} has no training rows")
        sets = task_oriented_sets(task_sizes, oriented, self.upsampling_coefficient, rng)
        return [[(i, s[start: start + batch_size]) for i, s in enumerate(sets)]
                for start in range(0, len(sets[0]), batch_size)]
