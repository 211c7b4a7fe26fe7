"""The regulariser contract: a penalty over the task parameter matrices of a sharing method.

For every layer that each task owns a copy of (same aligned name, same shape), the K copies,
flattened, are the rows of one (K, P) matrix A: row k is task k's copy. Soft parameter sharing
penalises the distance between the rows (l2 to the mean), trace norm their rank, group lasso
their columns, and so on. A regulariser reads the model only through
``model.task_names`` and ``model.task_named_parameters(task)``, never private attributes.

Constructor: ``__init__(self, *, weight, parameters, ...)``; the keyword-only arguments are the
config schema. ``__init__`` validates and stores; it sees the model only in ``penalty``.

Proximal steps. A non-smooth penalty (group lasso, l1/l_inf, trace norm) has no gradient where
it matters most (a zero column, a repeated singular value), and a subgradient step never lands
exactly on zero, so its sparsity never appears. Such a regulariser declares ``proximal = True``
(a class flag) and implements ``proximal_operator(matrix, threshold)``: the proximal operator
of ``threshold * penalty`` on one (K, P) matrix. Its ``mode`` option chooses how it is applied:
``proximal`` (the default of every non-smooth regulariser; ``uses_proximal_step`` is True) or
``subgradient`` (the penalty joins the loss, as for a smooth one). In proximal mode the penalty
is NOT added to the loss: the sharing method's ``penalties()`` still reports its value (without
a graph) for the learning curves, and after every optimiser step ``train_step`` calls
``proximal_step(model, step_size)`` with ``step_size`` the learning rate of the optimiser group
that holds the penalised parameters (read from ``optimizer.param_groups``). ``proximal_step``
replaces the aligned (K, P) matrices in place, under ``torch.no_grad``, by the proximal operator
of ``step_size * weight * penalty``, writing row k back into task k's parameter. With plain SGD
this is the proximal gradient method (ISTA); with Adam it is the usual heuristic (the step
size is the group's learning rate, not Adam's per-coordinate one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Sequence

import torch

if TYPE_CHECKING:  # only for annotations: regularisers never import the sharing package
    from ..sharing.base import SharingMethod


def _matches(name: str, prefix: str) -> bool:
    # whole dotted components only: "encoders.layers.1" does not select "encoders.layers.10"
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


Mode = Literal["proximal", "subgradient"]
MODES = ("proximal", "subgradient")


def aligned_task_copies(model: "SharingMethod", names: Sequence[str] | None = None,
                        ) -> dict[str, list[torch.nn.Parameter]]:
    """The K parameters (one per task, in task order) behind each row of
    :func:`aligned_task_parameters`' matrices; same arguments, same names, same errors."""
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
    return {name: [params[name] for params in per_task] for name in aligned}


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
    return {name: torch.stack([copy.reshape(-1) for copy in copies])  # (K, P)
            for name, copies in aligned_task_copies(model, names).items()}


def layer_name(parameter_name: str) -> str:
    """The layer an aligned parameter belongs to: its name without the last component."""
    return parameter_name.rsplit(".", 1)[0] if "." in parameter_name else parameter_name


def matrices_by_layer(matrices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Layer -> (K, P): the aligned (K, P_i) matrices of one layer (its weight and bias, names
    differing only in their last component) joined column-wise, for regularisers that hold one
    task relation per layer (Deep Relationship Networks, the cluster norm)."""
    joined: dict[str, list[torch.Tensor]] = {}
    for name, matrix in matrices.items():
        joined.setdefault(layer_name(name), []).append(matrix)
    return {layer: torch.cat(parts, dim=1) for layer, parts in joined.items()}


def correlation(covariance: torch.Tensor) -> torch.Tensor:
    """``C_ij / sqrt(C_ii C_jj)`` of a (K, K) covariance (what the reports draw)."""
    scale = covariance.diagonal().sqrt()
    return covariance / scale[:, None] / scale[None, :]


def check_mode(mode: str, owner: str) -> str:
    """``mode`` if it is ``proximal`` or ``subgradient``, else a one-line ValueError."""
    if mode not in MODES:
        raise ValueError(f"'mode' of {owner} must be 'proximal' or 'subgradient', got {mode!r}")
    return mode


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

    #: the class implements ``proximal_operator`` (a non-smooth penalty with a closed-form prox)
    proximal: ClassVar[bool] = False
    #: how the penalty is applied; non-smooth regularisers take it as an option
    mode: str = "subgradient"

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

    @property
    def uses_proximal_step(self) -> bool:
        """True when the penalty is applied by ``proximal_step`` rather than added to the loss."""
        return self.proximal and self.mode == "proximal"

    def proximal_groups(self, model: "SharingMethod") -> list[list[torch.nn.Parameter]]:
        """The parameters each proximal operator acts on together, one list per (K, P) matrix
        (row r = the r-th parameter, flattened); default: the K task copies of each aligned
        parameter. A regulariser over other groupings (the dirty model's B and S) overrides it."""
        return list(aligned_task_copies(model, self.parameters or None).values())

    def penalised_parameters(self, model: "SharingMethod") -> list[torch.nn.Parameter]:
        """The task parameters behind :meth:`matrices` (what a proximal step rewrites)."""
        return [p for group in self.proximal_groups(model) for p in group]

    def proximal_operator(self, matrix: torch.Tensor, threshold: float) -> torch.Tensor:
        """``argmin_X 1/2 ||X - matrix||_F^2 + threshold * penalty(X)`` of one (K, P) matrix
        (the unweighted penalty); only for classes with ``proximal = True``."""
        raise NotImplementedError(f"{type(self).__name__} has no proximal operator")

    def proximal_step(self, model: "SharingMethod", step_size: float) -> None:
        """Replace the aligned task parameters by the prox of ``step_size * weight * penalty``.

        Args:
            model: the sharing method whose task parameters are rewritten in place.
            step_size: the learning rate of the step just taken (>= 0).
        """
        if step_size < 0:
            raise ValueError(f"'step_size' of {type(self).__name__}.proximal_step must be >= 0, "
                             f"got {step_size}")
        threshold = step_size * self.weight
        if threshold == 0:  # the prox of a zero penalty is the identity
            return
        with torch.no_grad():
            for copies in self.proximal_groups(model):
                matrix = torch.stack([copy.reshape(-1) for copy in copies])  # (K, P)
                updated = self.proximal_operator(matrix, threshold)  # (K, P)
                for k, copy in enumerate(copies):  # row k is copy k, flattened
                    copy.copy_(updated[k].reshape(copy.shape))

    def __repr__(self) -> str:
        mode = f", mode={self.mode!r}" if self.proximal else ""
        return f"{type(self).__name__}(weight={self.weight}, parameters={self.parameters}{mode})"
