"""Soft parameter sharing: one network per task, their copies of each layer tied by a penalty.

Every task keeps its own encoder and head (as in single-task learning), but the tasks are
trained together and the configured regularisers (by default ``l2_to_mean``: the squared
distance of each task's copy of a layer to the mean of the copies) pull the copies of every
layer that all tasks own toward each other. With weight 0 it is K independent networks trained
jointly.

References:
    Duong, Cohn, Bird & Cook (2015), "Low Resource Dependency Parsing: Cross-lingual Parameter
    Sharing in a Neural Network Parser" (l2 distance between the parsers' parameters);
    Evgeniou & Pontil (2004), mean-regularised MTL; Ruder (2017), ``mtl-overview.txt``
    section 3.2 (soft parameter sharing).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..regularizers import REGULARIZERS
from ..regularizers.base import Regularizer
from . import SHARING
from .base import EncoderFactory, TaskSpec
from .single_task import TaskColumns

#: the default penalty weight: a starting point, NOT tuned yet (the FDU-MTL config reports it;
#: choose it on dev for a new benchmark)
DEFAULT_WEIGHT = 0.01


@SHARING.register("soft")
class SoftSharing(TaskColumns):
    """K task networks trained jointly, tied by penalties on their aligned layers.

    Args:
        regularizers: penalties over the aligned task parameter matrices (K x P), e.g.
            ``[{name: l2_to_mean, weight: 0.01, parameters: [encoders]}]``; None means
            ``l2_to_mean`` with weight 0.01 on every layer all tasks own (the heads too when
            the label spaces agree).
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
        split_heads: hold each task's output weights as ``shared_part + specific_part``
            (:class:`~textmtl.sharing.heads.SplitLinear`), the two parts the ``dirty_model``
            regulariser penalises; the same function as unsplit heads.
        shared_stages: the first this many encoder stages are ONE copy shared by all tasks
            (hard sharing below, task layers above: "the MLP with task-specific layers" of
            the matrix-regulariser benchmark, and Deep Relationship Networks' shared lower
            layers); 0 (default): every layer is per task. The shared stages are not aligned
            task parameters, so no regulariser sees them.
        equal_init: start every task's copy of each layer as a copy of task 0's (encoders, and
            heads of the same shape), so the tying penalty is 0 at the start and the copies
            drift apart only as far as their tasks pull them. False (default): each copy has
            its own random initialisation, as K single-task networks would; with a penalty
            weight chosen for converged networks that can start the penalty far above the
            task losses (the NCMTL table's SoftShare: 127 against 0.69, docs/ncmtl.md).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 regularizers: list[Regularizer] | None = None, head_hidden: int = 0,
                 split_heads: bool = False, shared_stages: int = 0,
                 equal_init: bool = False) -> None:
        for key, value in (("split_heads", split_heads), ("equal_init", equal_init)):
            if not isinstance(value, bool):
                raise ValueError(f"'{key}' of SoftSharing must be true or false, got {value!r}")
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden, split_heads=split_heads)
        stages = self.encoders[0].num_stages
        if isinstance(shared_stages, bool) or not isinstance(shared_stages, int) \
                or not 0 <= shared_stages <= stages:
            raise ValueError(f"'shared_stages' of SoftSharing must be an integer in [0, {stages}] "
                             f"(the encoder has {stages} stages), got {shared_stages!r}")
        self.shared_stages = shared_stages
        self._shared = self._tie_lower_stages(shared_stages)
        self.equal_init = equal_init
        if equal_init:
            self._copy_first_task_everywhere()
        if regularizers is None:
            regularizers = [REGULARIZERS.build("l2_to_mean", params={"weight": DEFAULT_WEIGHT})]
        self.regularizers = list(regularizers)

    def _tie_lower_stages(self, count: int) -> list[nn.Parameter]:
        """Make every task column's stages ``< count`` use task 0's parameters (the same
        ``nn.Parameter`` objects, so gradients of all tasks accumulate in one copy)."""
        first = self.encoders[0]
        shared = [p for s in range(count) for p in first.stage_parameters(s)]
        ids = {id(p) for p in shared}
        paths = [name for name, p in first.named_parameters() if id(p) in ids]
        for encoder in self.encoders[1:]:
            for path in paths:
                owner_path, _, leaf = path.rpartition(".")
                owner = encoder.get_submodule(owner_path) if owner_path else encoder
                setattr(owner, leaf, first.get_parameter(path))
        return shared

    @torch.no_grad()
    def _copy_first_task_everywhere(self) -> None:
        """Every task's encoder, and every head shaped like task 0's, := task 0's values.

        Tied lower stages are the same tensors, so copying them onto themselves is harmless."""
        encoder_state = self.encoders[0].state_dict()
        for encoder in self.encoders[1:]:
            encoder.load_state_dict(encoder_state)
        first_head = self.heads.heads[0].state_dict()
        for head in self.heads.heads[1:]:
            state = head.state_dict()
            if state.keys() == first_head.keys() \
                    and all(state[k].shape == v.shape for k, v in first_head.items()):
                head.load_state_dict(first_head)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self._shared)

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        shared = {id(p) for p in self._shared}
        return [p for p in super().task_parameters(task) if id(p) not in shared]
