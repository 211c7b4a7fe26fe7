"""Deep Relationship Networks: a matrix-normal prior on the task layers, its task covariance
learned in closed form.

Long & Wang put a matrix-normal prior ``W ~ MN(0, I_P, Omega)`` on each task-specific fully
connected layer (one column of W per task), whose K x K covariance between the columns,
``Omega``, says how the tasks relate. Its negative log density, up to constants, is the penalty. With our (K, P)
matrices A (row k = task k's copy of a layer, see
:func:`~textmtl.regularizers.base.aligned_task_parameters`; A is the literature's W transposed):

    penalty(A) = tr(A^T Omega^-1 A) = sum_ij (Omega^-1)_ij <a_i, a_j>

Omega is not trained by the gradient: training alternates, as in the paper, between gradient
steps on the weights with Omega fixed and the closed-form minimiser of the penalty over Omega
with the weights fixed. Under the constraint ``Omega > 0, tr(Omega) = 1`` (Zhang & Yeung 2010,
MTRL; the constraint that keeps Omega from growing without bound), setting the derivative of
``tr(Omega^-1 G) + lambda (tr(Omega) - 1)`` to zero gives ``Omega^-1 G Omega^-1 = lambda I``,
so ``Omega = G^(1/2) / tr(G^(1/2))`` with ``G = A A^T`` (K x K, the Gram matrix of the task
copies). At that minimiser the penalty equals ``tr(G^(1/2))^2 = ||A||_*^2``, the squared trace
norm: the prior ties the tasks like a trace norm, but through a covariance one can read.

Regularisation (``epsilon``). G is singular when the task copies are linearly dependent (two
identical tasks, more tasks than parameters), and Omega^-1 would then be infinite along the null
space. The update uses ``G + epsilon * (tr(G) / K) * I``: the ridge is relative to the mean
squared norm of a task copy, so Omega does not change when the layer is rescaled, and its
smallest eigenvalue is at least ``sqrt(epsilon * tr(G) / K) / tr((G + ...)^(1/2))``. With the
default 1e-3 two identical tasks get a correlation of 0.956 in Omega and the stiffest direction
of the penalty is about 46 x its weight, not infinite.

One Omega per layer: the aligned matrices of a layer's weight and bias (names that differ only
in their last component, ``...hidden_layers.1.weight`` and ``.bias``) are joined column-wise
into one (K, P_weight + P_bias) matrix, as the paper has one prior per task-specific layer.

When Omega is updated (``update_every``): after every ``update_every`` optimiser steps (the
regulariser's ``on_step_end`` hook, which the sharing method forwards; see
:class:`~textmtl.sharing.base.SharingMethod`), or, with 0, at the end of every epoch. Until the
first update ``Omega = I / K`` (independent tasks: the penalty is K times weight decay).
The learned covariance is reported by :meth:`TaskCovariance.task_covariance` (the experiment
writes it as ``task_covariance.json`` and draws ``task_covariance.png``, see
:mod:`textmtl.report.task_covariance`); it is the Omega in force at the end of training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from . import REGULARIZERS
from .base import Regularizer, correlation, matrices_by_layer

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod
    from ..training.state import TrainState


def closed_form_covariance(matrix: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``Omega = (G + eps tr(G)/K I)^(1/2) / tr(...)`` with ``G = A A^T``, in float64.

    Args:
        matrix: A, (K, P), row k = task k's copy of a layer.
        epsilon: the relative ridge (> 0).
    Returns:
        (K, K) symmetric positive definite, trace 1.
    References:
        Zhang & Yeung (2010), "A Convex Formulation for Learning Task Relationships in Multi-Task
        Learning" (MTRL); Long & Wang (2015), "Learning Multiple Tasks with Deep Relationship
        Networks".
    """
    a = matrix.detach().double()  # (K, P)
    gram = a @ a.T  # (K, K)
    k = gram.shape[0]
    scale = torch.trace(gram) / k
    # an all-zero layer has no relation to learn: the ridge alone gives I / K
    ridge = epsilon * (scale if scale > 0 else gram.new_ones(()))
    values, vectors = torch.linalg.eigh(gram + ridge * torch.eye(k, dtype=gram.dtype, device=gram.device))
    root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T  # (K, K) the PSD square root
    root = (root + root.T) / 2  # exact symmetry despite rounding
    return root / torch.trace(root)


@REGULARIZERS.register("task_covariance")
class TaskCovariance(Regularizer):
    """``weight * sum_layers tr(A^T Omega^-1 A)``, Omega (K x K) learned per layer in closed form.

    Deep Relationship Networks: task-specific layers under a matrix-normal prior whose task
    covariance is learned (see the module docstring for the update and its regularisation).

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise (the task-specific
            fully connected layers, e.g. ``[encoders.hidden_layers.1]``); empty means all.
        update_every: update Omega after every this many optimiser steps; 0: at the end of
            every epoch only.
        epsilon: the ridge added to ``A A^T`` before the square root, relative to its mean
            diagonal (> 0).
    Returns:
        ``penalty(model)``: a scalar tensor (Omega fixed, no gradient through it);
        ``task_covariance()``: the learned Omega of each layer, with the task names.
    References:
        Long & Wang (2015), "Learning Multiple Tasks with Deep Relationship Networks"
        (arXiv:1506.02117; later "Learning Multiple Tasks with Multilinear Relationship
        Networks", NIPS 2017); Zhang & Yeung (2010), MTRL (the closed-form update);
        Ruder (2017), An Overview of Multi-Task Learning, "Deep Relationship Networks".
    """

    #: the sharing method forwards its ``on_step_end`` / ``on_epoch_end`` hooks to it
    uses_hooks: ClassVar[bool] = True

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [], update_every: int = 10,
                 epsilon: float = 1e-3) -> None:
        super().__init__(weight=weight, parameters=parameters)
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 0:
            raise ValueError(f"'update_every' of TaskCovariance must be an integer >= 0 (0: at each "
                             f"epoch end), got {update_every!r}")
        if not epsilon > 0:
            raise ValueError(f"'epsilon' of TaskCovariance must be > 0, got {epsilon}")
        self.update_every = update_every
        self.epsilon = float(epsilon)
        self.task_names: list[str] = []
        self.updates = 0
        self.covariances: dict[str, torch.Tensor] = {}  # layer -> (K, K) float64 Omega
        self._inverses: dict[str, torch.Tensor] = {}  # layer -> (K, K) Omega^-1, model dtype

    def layer_matrices(self, model: "SharingMethod") -> dict[str, torch.Tensor]:
        """Layer -> (K, P) matrix: the aligned matrices of one layer joined column-wise."""
        return matrices_by_layer(self.matrices(model))

    def _inverse(self, layer: str, matrix: torch.Tensor) -> torch.Tensor:
        inverse = self._inverses.get(layer)
        if inverse is None or inverse.shape[0] != matrix.shape[0]:  # before the first update
            k = matrix.shape[0]
            inverse = k * torch.eye(k, dtype=matrix.dtype, device=matrix.device)  # Omega = I / K
        return inverse.to(matrix.device, matrix.dtype)

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for layer, matrix in self.layer_matrices(model).items():  # (K, P)
            total = total + (matrix * (self._inverse(layer, matrix) @ matrix)).sum()  # tr(A^T O^-1 A)
        return self.weight * total

    @torch.no_grad()
    def update(self, model: "SharingMethod") -> None:
        """The closed-form step: Omega of every layer from the current weights."""
        self.task_names = list(model.task_names)
        for layer, matrix in self.layer_matrices(model).items():
            omega = closed_form_covariance(matrix, self.epsilon)  # (K, K) float64
            self.covariances[layer] = omega
            self._inverses[layer] = torch.linalg.inv(omega).to(matrix.dtype)
        self.updates += 1

    def on_step_end(self, model: "SharingMethod", state: "TrainState") -> None:
        if self.update_every and state.step % self.update_every == 0:
            self.update(model)

    def on_epoch_end(self, model: "SharingMethod", state: "TrainState") -> None:
        if not self.update_every:
            self.update(model)

    def task_covariance(self) -> dict:
        """The learned task covariances as plain values.

        Returns:
            ``tasks``; ``updates`` (closed-form steps taken); ``epsilon``; ``layers``: per
            layer its ``name``, ``covariance`` (Omega, K x K, trace 1) and ``correlation``
            (``Omega_ij / sqrt(Omega_ii Omega_jj)``). Empty ``layers`` before the first update.
        """
        layers = []
        for layer, omega in self.covariances.items():
            layers.append({"name": layer, "covariance": omega.cpu().tolist(),
                           "correlation": correlation(omega).cpu().tolist()})
        return {"tasks": list(self.task_names), "updates": self.updates, "epsilon": self.epsilon,
                "layers": layers}

    def __repr__(self) -> str:
        return (f"TaskCovariance(weight={self.weight}, parameters={self.parameters}, "
                f"update_every={self.update_every}, epsilon={self.epsilon})")
