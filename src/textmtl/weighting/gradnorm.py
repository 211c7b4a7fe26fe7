"""GradNorm: learned task weights that balance the gradient norms of the tasks.

References:
    Chen, Badrinarayanan, Lee & Rabinovich (2018), "GradNorm: Gradient Normalization for
    Adaptive Loss Balancing in Deep Multitask Networks", ICML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from . import WEIGHTINGS
from .base import LossWeighting

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod
    from ..training.state import TrainState


@WEIGHTINGS.register("gradnorm")
class GradNorm(LossWeighting):
    """``sum_k w_k L_k`` with weights ``w`` trained to equalise the tasks' gradient norms.

    Each step, on the balanced shared parameter ``W``:

    - ``G_k = ||d(w_k L_k)/dW||_2``, the weighted gradient norm of task k;
    - ``r_k = (L_k / L_k(0)) / mean_j(L_j / L_j(0))``, the relative inverse training rate, with
      ``L_k(0)`` the first loss seen for task k (means over the tasks present in the step);
    - ``target_k = mean_j(G_j) * r_k ** alpha``, held constant;
    - ``L_grad = sum_k |G_k - target_k|``.

    The weights get ``dL_grad/dw`` only; the model gets the gradient of ``sum_k w_k L_k`` (w
    held constant) plus the extra loss. After each optimiser step the weights are renormalised
    to ``sum_k w_k = K``. Since ``G_k = |w_k| * ||dL_k/dW||`` exactly, ``||dL_k/dW||`` is taken
    as a constant: the gradient with respect to ``w`` is the one ``create_graph=True`` would
    give, without the second-order graph. A model without shared parameters trains with fixed
    weights 1 (the weights get a zero gradient).

    Args:
        alpha: the asymmetry ``alpha`` (>= 0): how strongly tasks that train slower are pushed;
            0 equalises the gradient norms. The paper uses 0.12 to 3; 1.5 for NYUv2.
        layer: the shared parameter ``W`` whose gradient norms are balanced: ``"last"`` for the
            last of ``model.shared_parameters()`` with at least 2 dimensions (the last shared
            weight matrix, as the paper uses the last shared layer; the last shared parameter if
            none has 2), or the name of a shared parameter in ``model.named_parameters()``.

    Returns:
        ``combine``: ``sum_k w_k L_k``; ``current_weights``: ``w_k`` per task.

    References:
        Chen et al. (2018), "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
        Deep Multitask Networks", Algorithm 1.
    """

    reads_task_gradients = True  # per-task gradients of the shared parameters

    def __init__(self, task_names: Sequence[str], *, alpha: float = 1.5, layer: str = "last") -> None:
        super().__init__(task_names)
        if not alpha >= 0:
            raise ValueError(f"'alpha' of GradNorm must be >= 0, got {alpha}")
        if not layer:
            raise ValueError(f"'layer' of GradNorm must be 'last' or a shared parameter name, got {layer!r}")
        self.alpha = float(alpha)
        self.layer = layer
        self.task_weights = nn.Parameter(torch.ones(len(self.task_names)))
        # L_k(0); NaN until task k is first seen (a buffer, so a checkpoint keeps it)
        self.register_buffer("initial_losses", torch.full((len(self.task_names),), float("nan")))

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.task_weights[self.task_names.index(name)] * loss
                   for name, loss in task_losses.items())

    def backward(self, task_losses: dict[str, torch.Tensor], extra_loss: torch.Tensor | None,
                 model: "SharingMethod") -> None:
        names = [name for name in self.task_names if name in task_losses]
        ids = torch.tensor([self.task_names.index(name) for name in names],
                           device=self.task_weights.device)
        losses = torch.stack([task_losses[name] for name in names])  # (k,)
        weights = self.task_weights[ids]  # (k,)
        balanced = self._balanced_parameter(model)
        weight_grad = torch.zeros_like(self.task_weights)
        if balanced is not None:
            with torch.no_grad():
                unseen = torch.isnan(self.initial_losses[ids])
                self.initial_losses[ids[unseen]] = losses.detach()[unseen].to(self.initial_losses)
            norms = torch.stack([_grad_norm(loss, balanced) for loss in losses])  # (k,)
            G = weights.abs() * norms  # (k,) = ||d(w_k L_k)/dW||, differentiable in w only
            ratios = losses.detach() / self.initial_losses[ids].clamp_min(1e-12)  # (k,)
            r = ratios / ratios.mean()
            target = (G.mean() * r ** self.alpha).detach()  # (k,) constant, as in the paper
            grad_loss = (G - target).abs().sum()
            (weight_grad,) = torch.autograd.grad(grad_loss, self.task_weights)
        if self.task_weights.grad is None:
            self.task_weights.grad = weight_grad.detach().clone()
        else:
            self.task_weights.grad += weight_grad.detach()
        total = (weights.detach() * losses).sum()
        if extra_loss is not None:
            total = total + extra_loss
        total.backward()

    def _balanced_parameter(self, model: "SharingMethod") -> nn.Parameter | None:
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        if not shared:
            return None
        if self.layer == "last":
            matrices = [p for p in shared if p.dim() >= 2]
            return (matrices or shared)[-1]
        shared_ids = {id(p) for p in shared}
        named = {name: p for name, p in model.named_parameters() if id(p) in shared_ids}
        if self.layer not in named:
            raise ValueError(f"'layer' of GradNorm must be 'last' or a shared parameter of the "
                             f"model ({', '.join(named)}), got {self.layer!r}")
        return named[self.layer]

    def on_step_end(self, state: "TrainState") -> None:
        with torch.no_grad():  # renormalise: sum_k w_k = K, so only the ratios are learned
            self.task_weights.mul_(len(self.task_names) / self.task_weights.sum())

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.task_names, self.task_weights.detach().cpu().tolist()))


def _grad_norm(loss: torch.Tensor, parameter: nn.Parameter) -> torch.Tensor:
    """``||dL/dW||_2`` as a constant; 0 when the loss does not reach ``W``."""
    (grad,) = torch.autograd.grad(loss, parameter, retain_graph=True, allow_unused=True)
    if grad is None:
        return torch.zeros((), device=loss.device, dtype=loss.dtype)
    return torch.linalg.vector_norm(grad)
