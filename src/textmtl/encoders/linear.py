"""The identity over TF-IDF rows: with it, each task model is a logistic regression.

The classic multi-task literature (Evgeniou & Pontil 2004, Argyriou et al. 2007, Jalali et al.
2010, Jacob et al. 2009) couples *linear* task models: task t predicts from ``x @ a_t`` and the
penalties act on the matrix A of the task weight vectors. This encoder has no parameters: it
passes the (B, V) TF-IDF rows through unchanged, so a method's task heads (one
``nn.Linear(V, C_t)`` per task) are exactly those weight vectors, and the softmax cross-entropy
of the trainer makes each task a (multinomial) logistic regression. Under ``soft`` sharing the
configured regulariser on ``heads`` is then the classic penalty on A; ``single_task`` gives K
independent logistic regressions trained by the same optimiser (the like-for-like baseline of
the penalties; scikit-learn's ``logreg_per_task`` baseline is the tuned one).

The rows are densified per batch ((B, V) floats): at V = 10,000 and 512 rows that is 20 MB,
and a dense matmul with the heads is faster on CPU than a sparse one at this size.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.inputs import InputSpec, TfidfInput
from . import ENCODERS
from .base import Encoder, StageInfo


@ENCODERS.register("linear")
class Linear(Encoder):
    """Identity over sparse TF-IDF rows: one parameter-free stage of width V.

    Args:
        input_spec: a ``tfidf`` spec; ``size`` is the number of features V.
    """

    input_kind = "tfidf"

    def __init__(self, input_spec: InputSpec) -> None:
        super().__init__(input_spec)
        self.output_dim = input_spec.size

    def stage_info(self) -> list[StageInfo]:
        """One ``layer`` stage, ``features``: the TF-IDF row itself."""
        return [StageInfo(kind="layer", width=self.output_dim, level="sequence", name="features")]

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """None: the identity has no parameters."""
        self._check_stage(index)
        return []

    def run_stage(self, index: int, hidden: torch.Tensor | None, inputs: TfidfInput) -> torch.Tensor:
        """The dense (B, V) rows: ``dense[b, indices[j]] = weights[j]`` for j in row b."""
        self._check_stage(index)
        rows = torch.repeat_interleave(
            torch.arange(inputs.batch_size, device=inputs.offsets.device),
            torch.diff(inputs.offsets, append=inputs.offsets.new_tensor([inputs.indices.shape[0]])))
        dense = inputs.weights.new_zeros(inputs.batch_size, self.output_dim)  # (B, V)
        # index_put with accumulate: a feature listed twice in a row adds up, like the bag sum
        return dense.index_put((rows, inputs.indices), inputs.weights, accumulate=True)
