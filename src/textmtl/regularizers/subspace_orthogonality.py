"""Subspace orthogonality: the weights of a layer's subspaces should read orthogonal directions.

Sluice networks split every layer of every task network into subspaces and add

    Omega = sum_m sum_k || G_(m,k,1)^T G_(m,k,2) ||_F^2

(m the task network, k the layer, G_(m,k,s) the weights of subspace s), "to enforce a division
of labor and discourage redundancy between shared and task-specific subspaces". Here G_s holds
the weight vectors of the units of subspace s as its columns (input width x units), so
G_1^T G_2 is the (units_1 x units_2) matrix of inner products between every unit of one
subspace and every unit of the other: zero exactly when the two subspaces read orthogonal
directions of the layer's input. With more than two subspaces every pair is penalised.

The model gives the blocks through ``model.subspace_weights(kinds)`` (a sharing method with
subspaces, e.g. ``sluice``; the encoder says which rows of which matrix produce which
subspace). ``weights`` chooses the matrices: the paper found the constraint works best on "the
weights associated with the LSTM inputs", our default ``[input]`` (each LSTM's ``weight_ih``).

References:
    Ruder, Bingel, Augenstein & Søgaard (2019), "Latent Multi-task Architecture Learning"
    (``sluice-networks.txt``, "Adding Inductive Bias"); Bousmalis et al. (2016), "Domain
    Separation Networks" (the soft orthogonality constraint); Salzmann et al. (2010).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch

from . import REGULARIZERS
from .base import Regularizer

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod

WeightKind = Literal["input", "recurrent", "input_gate"]
WEIGHT_KINDS = ("input", "recurrent", "input_gate")


@REGULARIZERS.register("subspace_orthogonality")
class SubspaceOrthogonality(Regularizer):
    """``weight * sum ||G_s^T G_t||_F^2`` over the subspace pairs of every task's layers.

    Args:
        weight: multiplier of the penalty (>= 0).
        weights: which weight matrices of each layer are penalised: ``input`` (the weights on
            the layer's input; an LSTM's ``weight_ih``, all four gates), ``recurrent`` (an
            LSTM's ``weight_hh``), ``input_gate`` (the input gate's rows of ``weight_hh``, the
            nearest PyTorch counterpart of the authors' default ``--constrain-matrices 1 2``,
            DyNet's W_ih and W_ic).
    Returns:
        ``penalty(model)``: a scalar tensor; 0 for exactly orthogonal subspace weights.
    References:
        Ruder et al. (2019), sluice networks; Bousmalis et al. (2016).
    """

    #: a method must give subspace weight blocks (``subspace_weights()``) for this penalty
    needs_subspace_weights = True

    def __init__(self, *, weight: float = 1.0, weights: list[WeightKind] = ["input"]) -> None:
        super().__init__(weight=weight)
        unknown = [w for w in weights if w not in WEIGHT_KINDS]
        if not weights or unknown:
            raise ValueError(f"'weights' of SubspaceOrthogonality must be a non-empty list of "
                             f"{', '.join(WEIGHT_KINDS)}, got {weights!r}")
        self.weights = list(weights)

    def penalty(self, model: "SharingMethod") -> torch.Tensor:
        provider = getattr(model, "subspace_weights", None)
        if provider is None:
            raise ValueError(f"regularizer 'subspace_orthogonality' needs a sharing method with "
                             f"subspaces (e.g. sluice); {type(model).__name__} has none")
        total = next(model.parameters()).new_zeros(())
        for entry in provider(self.weights):
            if entry.kind not in self.weights:
                continue
            blocks = entry.blocks  # S tensors (units_s, input width), one unit per row
            for s in range(len(blocks)):
                for t in range(s + 1, len(blocks)):
                    # G_s^T G_t with units as the columns of G: (units_s, units_t)
                    total = total + (blocks[s] @ blocks[t].transpose(0, 1)).pow(2).sum()
        return self.weight * total

    def __repr__(self) -> str:
        return f"SubspaceOrthogonality(weight={self.weight}, weights={self.weights})"
