"""l1/l_inf block sparsity: each feature costs its largest weight over the tasks.

The literature's ``d x T`` matrix has one feature across tasks per ROW; in our (K, P) matrices
(see :func:`~textmtl.regularizers.base.aligned_task_parameters`) that is a COLUMN, so

    Omega(A) = sum_f max_k |A[k, f]|.

Like group lasso it zeroes whole columns; unlike it, once a feature is used, the tasks may use
it up to the same magnitude at no extra cost.

Proximal operator, by the Moreau decomposition (the dual norm of l_inf is l1):
``prox_{tau ||.||_inf}(v) = v - tau * P_{B1}(v / tau) = v - P_{B1(tau)}(v)``, per column, with
``P_{B1(r)}`` the Euclidean projection onto the l1 ball of radius r (Duchi et al. 2008,
vectorised over columns in :func:`project_l1_ball`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from . import REGULARIZERS
from .base import Mode, Regularizer, check_mode

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod


def project_l1_ball(matrix: torch.Tensor, radius: float) -> torch.Tensor:
    """Euclidean projection of every column of ``matrix`` onto the l1 ball of ``radius``.

    Args:
        matrix: (K, P); each column is projected on its own.
        radius: the ball's radius (>= 0).
    Returns:
        (K, P): a column already inside the ball is unchanged; one outside becomes
        ``sign(v) * max(|v| - theta, 0)`` with theta chosen so its l1 norm is ``radius``.
    References:
        Duchi, Shalev-Shwartz, Singer & Chandra (2008), Efficient projections onto the
        l1-ball for learning in high dimensions (ICML), Figure 1.
    """
    if radius < 0:
        raise ValueError(f"'radius' of project_l1_ball must be >= 0, got {radius}")
    if radius == 0:
        return torch.zeros_like(matrix)
    magnitudes = matrix.abs()  # (K, P)
    inside = magnitudes.sum(dim=0, keepdim=True) <= radius  # (1, P)
    u = magnitudes.sort(dim=0, descending=True).values  # (K, P), each column sorted
    cumulative = u.cumsum(dim=0)  # (K, P)
    j = torch.arange(1, matrix.shape[0] + 1, device=matrix.device, dtype=matrix.dtype)[:, None]
    # rho = the largest j with u_j - (sum_{i<=j} u_i - radius) / j > 0 (j = 1 always qualifies
    # for a column outside the ball; inside columns are masked below)
    candidates = (u - (cumulative - radius) / j) > 0  # (K, P)
    rho = (candidates * j).amax(dim=0, keepdim=True).clamp_min(1)  # (1, P)
    theta = (cumulative.gather(0, rho.long() - 1) - radius) / rho  # (1, P)
    projected = matrix.sign() * (magnitudes - theta).clamp_min(0)  # (K, P)
    return torch.where(inside, matrix, projected)


@REGULARIZERS.register("l1_linf")
class L1Linf(Regularizer):
    """``weight * sum_A sum_f max_k |A[k, f]|`` over the aligned (K, P) matrices A.

    Args:
        weight: multiplier of the penalty (>= 0).
        parameters: prefixes of the aligned parameter names to penalise; empty means all.
        mode: ``proximal`` (the l_inf prox on each column after each optimiser step; the
            penalty is only logged) or ``subgradient`` (the penalty joins the loss).
    Returns:
        ``penalty(model)``: a scalar tensor; ``proximal_operator(matrix, tau)``: the (K, P)
        matrix with the prox of ``tau * ||.||_inf`` applied to each column.
    References:
        Liu, Palatucci & Zhang (2009), Blockwise coordinate descent procedures for the
        multi-task lasso, with applications to neural semantic basis discovery (ICML);
        Duchi et al. (2008) (the l1-ball projection);
        Ruder (2017), An Overview of Multi-Task Learning, "Block-sparse regularization".
    """

    proximal = True

    def __init__(self, *, weight: float = 1.0, parameters: list[str] = [],
                 mode: Mode = "proximal") -> None:
        super().__init__(weight=weight, parameters=parameters)
        self.mode = check_mode(mode, "L1Linf")

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        total = next(model.parameters()).new_zeros(())
        for matrix in self.matrices(model).values():  # (K, P)
            total = total + matrix.abs().amax(dim=0).sum()  # (P,) column maxima
        return self.weight * total

    def proximal_operator(self, matrix: torch.Tensor, threshold: float) -> torch.Tensor:
        # Moreau: prox_{tau f}(v) + tau * prox_{f*/tau}(v / tau) = v, f* the indicator of the
        # unit l1 ball, whose prox is the projection; tau * P_B1(v / tau) = P_B1(tau)(v)
        return matrix - project_l1_ball(matrix, threshold)
