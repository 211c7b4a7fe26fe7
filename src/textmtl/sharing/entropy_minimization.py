"""Hard sharing plus entropy minimisation on unlabelled text (semi-supervised MTL).

Rows from a task's unlabelled texts (``source == unlabelled``, drawn by a sampler with
``unlabelled_per_step > 0``) carry no label; the method adds the mean entropy of the model's
predictions on them as an extra loss ``entropy``, which pushes decision boundaries away from
the unlabelled data (the cluster assumption). It is the smallest real user of unlabelled rows;
ASP-MTL's adversarial discriminator reads the same rows.

References:
    Grandvalet & Bengio (2005), "Semi-supervised Learning by Entropy Minimization".
"""

from __future__ import annotations

import torch

from ..data.batching import Batch
from . import SHARING
from .hard import HardSharing


@SHARING.register("entropy_minimization")
class EntropyMinimization(HardSharing):
    """Shared encoder and task heads; extra loss ``entropy`` = mean prediction entropy of the
    batch's unlabelled rows (over each row's own task's classes; tokens for tagging)."""

    needs_unlabelled_rows = True
    extra_loss_names = ("entropy",)

    def forward(self, batch: Batch) -> torch.Tensor:
        logits = super().forward(batch)
        unlabelled = ~batch.labelled
        self._extra_losses = {}
        if bool(unlabelled.any()):
            rows = logits[unlabelled]  # (U, C) or (U, T, C); masked classes get ~0 probability
            log_p = torch.log_softmax(rows, dim=-1)
            entropy = -(log_p.exp() * log_p).sum(-1)  # (U,) or (U, T)
            if entropy.dim() == 2:  # tagging: real tokens only
                real = batch.inputs.select(unlabelled.nonzero(as_tuple=True)[0]).mask()
                entropy = entropy[:, : real.shape[1]][real]
            self._extra_losses["entropy"] = entropy.mean()
        return logits
