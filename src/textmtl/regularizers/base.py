"""The regulariser contract: a penalty over the task parameter matrices of a sharing method.

For every layer that each task owns a copy of (same aligned name, same shape), the K copies,
flattened, are the rows of one (K, P) matrix A: row k is task k's copy. Soft parameter sharing
penalises the distance between the rows (l2 to the mean), trace norm their rank, group lasso
their columns, and so on. A regulariser reads the model only through
``model.task_names`` and ``model.task_named_parameters(task)``, never private attributes.

Constructor: ``__init__(self, *, weight, parameters, ...)``; the keyword-only arguments are the
config schema. ``__init__`` validates and stores; it sees the model only in ``penalty``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:  # only for annotations: regularisers never import the sharing package
    from ..sharing.base import SharingMethod


def _matches(name: str, prefix: str) -> bool:
    # whole dotted components only: "encoders.layers.1" does not select "encoders.layers.10"
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


def aligned_task_parameters(model: "SharingMethod", names: Sequence[str] | None = None,
                            ) -> dict[str, torch.Tensor]:
    """The (K, P) matrix of every parameter that all K tasks own a copy of.

    Args:
        model: a sharing method (``task_names``, ``task_named_parameters(task)``).
        names: optional prefixes of aligned names (``"encoders"``,
            ``"encoders.hidden_layers.0"``), matched on whole dotted components; None or empty
            keeps every aligned parameter.
    Returns:
        aligned name -> ``torch.stack`` of the K flattened copies, (K, P), in task order and
        differentiable (gradients reach each task's parameter). A name is aligned when every
        task has it with the same shape (heads of unequal label spaces are not).
    Raises:
        ValueError: a prefix in ``names`` selects no aligned parameter.
    """
    per_task = [model.task_named_parameters(task) for task in model.task_names]
    first = per_task[0]
    aligned = [name for name, p in first.items()
               if all(name in other and other[name].shape == p.shape for other in per_task[1:])]
    if names:
        for prefix in names:
            if not any(_matches(name, prefix) for name in aligned):
                raise ValueError(
                    f"parameter prefix {prefix!r} matches no parameter aligned across tasks; "
                    f"aligned names: {', '.join(aligned) or '(none)'}")
        aligned = [name for name in aligned if any(_matches(name, p) for p in names)]
    return {name: torch.stack([params[name].reshape(-1) for params in per_task])  # (K, P)
            for name in aligned}


class Regularizer:
    """Base class of regularisers: a weighted penalty over aligned task parameter matrices.

    Args:
        weight: multiplier of the penalty (>= 0); 0 switches it off.
        parameters: prefixes of the aligned parameter names to penalise (see
            :func:`aligned_task_parameters`); empty means every aligned parameter.
    Returns:
        ``penalty(model)``: the weighted penalty, a differentiable scalar tensor.
    References:
        Ruder (2017), An Overview of Multi-Task Learning in Deep Neural Networks (soft
        parameter sharing and the regularisers on the task parameter matrix A).
    """

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = []) -> None:
        if weight < 0:
            raise ValueError(f"'weight' of {type(self).__name__} must be >= 0, got {weight}")
        if not all(isinstance(p, str) and p for p in parameters):
            raise ValueError(f"'parameters' of {type(self).__name__} must be non-empty name "
                             f"prefixes, got {parameters!r}")
        self.weight = float(weight)
        self.parameters = list(parameters)

    @property
    def name(self) -> str:
        """The registry key (``"l2_to_mean"``)."""
        return type(self).registry_name  # type: ignore[attr-defined]  (set by Registry.register)

    def matrices(self, model: "SharingMethod") -> dict[str, torch.Tensor]:
        """The (K, P) matrices this regulariser acts on."""
        return aligned_task_parameters(model, self.parameters or None)

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        """The weighted penalty of ``model`` (a scalar tensor on the model's device)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight}, parameters={self.parameters})"
