"""The sharing-method contract: how K tasks share parameters.

A sharing method is an ``nn.Module`` built from the task specs and an encoder factory. One
``forward(batch)`` receives the rows of *every* task trained in the step as one combined
:class:`~textmtl.data.batching.Batch` (``batch.task_index`` says which task each row belongs to;
the batch also says which rows are labelled, where they came from and, for Type-III methods,
which collection they belong to) and returns logits over each row's own label space. Methods
that need inputs from all tasks at once (adversarial shared-private, cluster layers, recurrent
fusion) plug in without trainer changes.

What the trainer, the weightings, the regularisers and the analysis may rely on (they ask about
capabilities, never names):

- three parameter groups: ``shared_parameters()`` (trained by several tasks),
  ``task_parameters(task)`` (one task's), ``method_parameters()`` (mixers, adversaries,
  memories, cluster centres); disjoint, and together all parameters;
- ``param_groups()``: optimiser groups, each ``{"params": [...], "name": str}`` with an
  optional ``"lr_scale"`` (e.g. a larger learning rate for cross-stitch α);
- ``extra_losses()``: named scalar losses of the last ``forward`` (adversarial loss,
  orthogonality, entropy on unlabelled rows; named in ``extra_loss_names``), weighted by the
  method entry's ``loss_weights`` (names it leaves out: ``default_loss_weights``, else 1) and
  added to the weighted task loss;
- ``penalties()``: named penalties on the parameters (the regularisers'), once per step;
- ``on_step_end(state)`` / ``on_epoch_end(state)``: hooks with a
  :class:`~textmtl.training.state.TrainState`; the base class forwards them to the
  regularisers that declare ``uses_hooks`` (as ``on_step_end(model, state)``: e.g. the task
  covariance of Deep Relationship Networks, updated in closed form), so a method that owns
  regularisers and overrides a hook calls ``super()``;
- ``evaluation_plan(split_sizes, batch_size, train_sizes=...)``: which rows go into each
  evaluation batch (``train_sizes``, the training rows per task, lets a plan put training
  rows beside the scored ones: the companions of a Type-III method);
- ``export_state()`` / ``load_exported_state(state)``: what a saved model keeps;
- capability flags (class attributes): ``trains_tasks_separately`` (the experiment trains each
  task alone, with its own early stopping: single-task learning), ``rows_interact`` (a row's
  output depends on the other rows of its collection), ``needs_every_task_per_step``,
  ``needs_collections``, ``needs_unlabelled_rows``, ``changes_parameters`` (the hooks may
  add or replace parameters, e.g. Fully-Adaptive Feature Sharing's branches: after
  ``on_epoch_end`` the trainer asks ``parameters_changed()`` and, when True, rebuilds the
  optimiser, keeping the state of the parameters that remain); ``input_kinds`` (the encoder input kinds
  the method can read; None: any encoder, as for every method that runs the encoders it is
  given; a method that embeds word ids itself names ``("tokens",)``).

Constructor contract: ``__init__(self, tasks, encoder_factory, *, ...config...)``. Every
method takes ``head_hidden`` (0: one linear output layer per task; > 0: a per-task MLP head
with that many hidden units, ReLU) and passes it here; its heads read ``self.head_hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Literal, Sequence

import torch
from torch import nn

from ..data.batching import Batch, EvaluationChunk, per_task_plan
from ..encoders.base import Encoder

if TYPE_CHECKING:
    from ..training.state import TrainState


@dataclass(frozen=True)
class TaskSpec:
    """What a sharing method needs to know about a task.

    Attributes:
        name: the task name.
        num_classes: size of its label space.
        level: ``sequence`` (one label per text) or ``token`` (one label per token: tagging).
    """

    name: str
    num_classes: int
    level: Literal["sequence", "token"] = "sequence"


EncoderFactory = Callable[[], Encoder]


class SharingMethod(nn.Module):
    """Base class of sharing methods."""

    trains_tasks_separately: ClassVar[bool] = False
    rows_interact: ClassVar[bool] = False
    needs_every_task_per_step: ClassVar[bool] = False
    needs_collections: ClassVar[bool] = False
    needs_unlabelled_rows: ClassVar[bool] = False
    #: the hooks may add or replace parameters (the trainer then asks ``parameters_changed()``)
    changes_parameters: ClassVar[bool] = False
    #: encoder input kinds the method reads (None: any; the contract suite skips the others)
    input_kinds: ClassVar[tuple[str, ...] | None] = None
    extra_loss_names: ClassVar[tuple[str, ...]] = ()
    #: weight of an extra loss that the method entry's ``loss_weights`` does not name (absent: 1)
    default_loss_weights: ClassVar[dict[str, float]] = {}

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 head_hidden: int = 0) -> None:
        super().__init__()
        from .heads import check_head_hidden  # heads imports this module

        check_head_hidden(head_hidden, type(self).__name__)
        self.head_hidden = head_hidden
        if not tasks:
            raise ValueError("a sharing method needs at least one task")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        self.tasks = list(tasks)
        self.task_names = names
        self.regularizers: list = []
        self._extra_losses: dict[str, torch.Tensor] = {}

    def task_id(self, name: str) -> int:
        return self.task_names.index(name)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Logits (B, C_max) or (B, T, C_max); classes beyond a row's task are masked."""
        raise NotImplementedError

    # -- parameter groups -------------------------------------------------------------------

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that more than one task trains."""
        raise NotImplementedError

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that only ``task`` trains."""
        raise NotImplementedError

    def method_parameters(self) -> list[nn.Parameter]:
        """Parameters of the method itself, neither one encoder's nor one task's: mixing
        matrices, adversaries, memories, cluster centres (empty for most methods)."""
        return []

    def task_named_parameters(self, task: str) -> dict[str, nn.Parameter]:
        """The parameters of ``task`` under names that are the same for every task.

        The name of a parameter inside a per-task container (``encoders.3.hidden_layers.0.weight``,
        ``heads.heads.3.weight``) loses its task index, its first index component
        (``encoders.hidden_layers.0.weight``, ``heads.heads.weight``), so regularisers can stack
        the same layer of every task into one (K, P) matrix.
        """
        k = self.task_id(task)
        own = {id(p) for p in self.task_parameters(task)}
        named = {}
        for name, parameter in self.named_parameters():
            if id(parameter) in own:
                parts = name.split(".")
                if str(k) in parts:  # the first index component is the per-task container's
                    parts.remove(str(k))
                named[".".join(parts)] = parameter
        return named

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups (trainable parameters only, in ``parameters()`` order)."""
        return [{"name": "model", "params": [p for p in self.parameters() if p.requires_grad]}]

    # -- losses and hooks -------------------------------------------------------------------

    def extra_losses(self) -> dict[str, torch.Tensor]:
        """Named auxiliary losses of the last ``forward`` (empty for most methods)."""
        return dict(self._extra_losses)

    def penalties(self) -> dict[str, torch.Tensor]:
        """Named parameter penalties (the configured regularisers), computed once per step.

        A regulariser in proximal mode (``uses_proximal_step``) is applied by its proximal
        step, not the loss: its value is computed without a graph, only to be logged."""
        values = {}
        for regularizer in self.regularizers:
            if getattr(regularizer, "uses_proximal_step", False):
                with torch.no_grad():
                    values[regularizer.name] = regularizer.penalty(self)
            else:
                values[regularizer.name] = regularizer.penalty(self)
        return values

    def on_step_end(self, state: "TrainState") -> None:
        """Called after every optimiser step (forwarded to the regularisers with hooks)."""
        for regularizer in self.regularizers:
            if getattr(regularizer, "uses_hooks", False):
                regularizer.on_step_end(self, state)

    def on_epoch_end(self, state: "TrainState") -> None:
        """Called after every epoch, before the dev evaluation (forwarded like ``on_step_end``)."""
        for regularizer in self.regularizers:
            if getattr(regularizer, "uses_hooks", False):
                regularizer.on_epoch_end(self, state)

    def parameters_changed(self) -> bool:
        """Only for ``changes_parameters`` methods: True once after the hooks replaced or added
        parameters (the trainer then rebuilds the optimiser); False otherwise."""
        return False

    # -- evaluation and saving --------------------------------------------------------------

    def evaluation_plan(self, split_sizes: Sequence[int], batch_size: int,
                        train_sizes: Sequence[int] | None = None) -> list[EvaluationChunk]:
        """Which rows each evaluation batch holds and which it scores (default: each task's
        rows alone). Methods whose rows interact override it with a documented rule.

        Args:
            split_sizes: rows per task of the evaluated split.
            batch_size: rows per evaluation batch (a plan may count them its own way).
            train_sizes: training rows per task, for a plan whose chunks read training rows
                beside the scored ones (``EvaluationChunk.companion_split``); None when the
                caller does not know them.
        """
        return per_task_plan(split_sizes, batch_size)

    def export_state(self) -> dict:
        """What a saved model keeps (default: the whole state dict)."""
        return self.state_dict()

    def load_exported_state(self, state: dict) -> None:
        """Restore what :meth:`export_state` returned."""
        self.load_state_dict(state)
