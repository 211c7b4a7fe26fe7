"""The encoder contract: text features in, vectors (or token vectors) out, in named stages.

An encoder is a stack of *stages*. ``forward`` runs them in order; sharing methods that mix
tasks layer by layer (cross-stitch, sluice, cluster layers) run the stages of several encoders
side by side and mix their outputs between stages, so every encoder exposes them:

    hidden = None
    for i in range(encoder.num_stages):
        hidden = encoder.run_stage(i, hidden, inputs)

Stage 0 reads ``inputs``; later stages read ``hidden`` (and may read lengths/masks from
``inputs``). Every stage output has the batch as its first dimension, so element-wise mixing
between columns is always defined. The last stage returns (B, output_dim) for sequence-level
tasks, or (B, T, output_dim) when ``token_level`` is True (tagging).

Every stage is described by a :class:`StageInfo` (``stage_info()``: kind, width, level, name),
owns a disjoint set of parameters (``stage_parameters(i)``), and a token-level stage output can
be pooled to one vector per row without parameters (``pool``), so a method may put a head on
any stage (low supervision, sluice, Zhang et al. 2017).

Subspaces (sluice networks): ``subspace_features(i, S)`` says which features of stage i's
output form each of S subspaces (default: S contiguous blocks of the width; the BiLSTM splits
each direction in halves so that every subspace keeps both directions), and
``subspace_weights(i, S)`` returns the rows of the stage's weight matrices that produce each
subspace (for the subspace orthogonality penalty; default: none).

Constructor contract: ``__init__(self, input_spec, *, ...keyword-only config...)``; the
keyword-only arguments are the config schema (see :mod:`textmtl.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, Sequence

import torch
from torch import nn

from ..data.inputs import EncoderInput, InputKind, InputSpec, TokenInput
from .layers import masked_pool

StageKind = Literal["embedding", "layer", "pooling"]
StageLevel = Literal["token", "sequence", "sentence_token", "sentence"]

#: number of dimensions of a stage output at each level (batch first)
LEVEL_DIMS: dict[str, int] = {"token": 3, "sequence": 2, "sentence_token": 4, "sentence": 3}
#: the parameter-free poolings of :meth:`Encoder.pool`
POOLINGS = ("max", "mean", "last")


@dataclass(frozen=True)
class StageInfo:
    """What one encoder stage outputs.

    ``kind`` is ``embedding`` (looks up the inputs), ``layer`` (keeps the level of its input) or
    ``pooling`` (reduces the level: token -> sequence, sentence_token -> sentence,
    sentence -> sequence; it may have parameters, e.g. attention or TextCNN's convolutions).
    """

    kind: StageKind
    width: int          # size of the last dimension of the stage output
    level: StageLevel
    # token: (B, T, D) aligned with the input tokens; sequence: (B, D);
    # sentence_token: (B, S, T, D) (HAN word level); sentence: (B, S, D) (HAN sentence vectors)
    name: str           # e.g. "embedding", "bilstm_1", "max_pooling", "word_attention"


class SubspaceWeights(NamedTuple):
    """The rows of one weight matrix of a stage that produce each subspace of its output.

    ``blocks[s]`` is (rows_s, input width): the weight vectors of the units of subspace s, one
    per row, differentiable views of the parameter. ``kind`` names the matrix ("input": the
    weights on the stage's input, "recurrent": an RNN's hidden-to-hidden weights,
    "input_gate": an LSTM's recurrent weights of the input gate); ``stage`` is the stage name
    and ``task`` the task column it belongs to (set by the sharing method).
    """

    kind: str
    blocks: list[torch.Tensor]
    stage: str = ""
    task: str = ""


class Encoder(nn.Module):
    """Base class of all encoders.

    Subclasses set ``input_kind`` and ``output_dim`` and implement ``stage_info``,
    ``stage_parameters`` and ``run_stage``.
    """

    input_kind: ClassVar[InputKind]

    def __init__(self, input_spec: InputSpec) -> None:
        super().__init__()
        if input_spec.kind != self.input_kind:
            raise ValueError(
                f"{type(self).__name__} reads {self.input_kind!r} inputs, got {input_spec.kind!r}"
            )
        self.input_spec = input_spec
        self.output_dim: int = 0

    def stage_info(self) -> list[StageInfo]:
        """Describe every stage, in order.

        Returns:
            One :class:`StageInfo` per stage; ``stage_info()[-1].width == output_dim``.
        """
        raise NotImplementedError

    @property
    def num_stages(self) -> int:
        """Number of stages (``len(stage_info())``)."""
        return len(self.stage_info())

    @property
    def token_level(self) -> bool:
        """True when the encoder returns one vector per token (B, T, D) instead of (B, D)."""
        return self.stage_info()[-1].level == "token"

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """The parameters stage ``index`` uses (trainable and frozen).

        Every parameter of the encoder belongs to exactly one stage, so the stages partition
        ``parameters()``.

        Args:
            index: the stage, 0 <= index < num_stages.

        Returns:
            The stage's parameters (possibly none, e.g. max pooling).

        Raises:
            IndexError: no such stage.
        """
        raise NotImplementedError

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: EncoderInput) -> torch.Tensor:
        """Run stage ``index`` on the previous stage's output (None for stage 0)."""
        raise NotImplementedError

    def forward(self, inputs: EncoderInput) -> torch.Tensor:
        hidden = None
        for index in range(self.num_stages):
            hidden = self.run_stage(index, hidden, inputs)
        return hidden

    def pool(self, hidden: torch.Tensor, inputs: EncoderInput,
             pooling: Literal["max", "mean", "last"] = "max") -> torch.Tensor:
        """Pool a token-level stage output over the real tokens of each row (no parameters).

        Lets a head read any token-level stage (e.g. a lower bi-LSTM layer for low-level
        supervision). Padding-invariant: padded positions are never read.

        Args:
            hidden: (B, T, D) output of a stage whose level is ``token``.
            inputs: the batch the stages ran on (``inputs.lengths`` gives the real tokens).
            pooling: ``max`` or ``mean`` over real tokens, or ``last`` (forward half at the last
                token + backward half at the first: the final states of a bidirectional RNN).

        Returns:
            (B, D) pooled vectors.

        Raises:
            ValueError: the encoder has no token-level stages, ``hidden`` is not (B, T, D)
                aligned with the input tokens, or ``pooling`` is unknown.
        """
        owner = type(self).__name__
        if pooling not in POOLINGS:
            raise ValueError(f"'pooling' of {owner}.pool must be one of {', '.join(POOLINGS)}, "
                             f"got {pooling!r}")
        if not any(info.level == "token" for info in self.stage_info()) \
                or not isinstance(inputs, TokenInput):
            raise ValueError(f"{owner}.pool pools token-level stage outputs (B, T, D); "
                             f"{owner} has no token-level stage")
        if hidden.dim() != 3 or tuple(hidden.shape[:2]) != tuple(inputs.token_ids.shape):
            raise ValueError(
                f"{owner}.pool pools token-level stage outputs (B, T, D) aligned with the "
                f"input tokens {tuple(inputs.token_ids.shape)}, got shape {tuple(hidden.shape)}")
        return masked_pool(hidden, inputs.lengths, pooling)  # (B, D)

    def subspace_features(self, index: int, num_subspaces: int) -> torch.Tensor:
        """Which output features of stage ``index`` form each subspace.

        Default: ``num_subspaces`` contiguous equal blocks of the stage width. Encoders whose
        outputs have a layout (a BiLSTM's [forward | backward] halves) override it.

        Args:
            index: the stage.
            num_subspaces: S, the number of subspaces (1: the whole output).
        Returns:
            (S, W / S) long tensor: row s lists the feature positions of subspace s (every
            position exactly once).
        Raises:
            ValueError: S does not divide the stage width.
        """
        self._check_stage(index)
        width = self.stage_info()[index].width
        if num_subspaces < 1 or width % num_subspaces:
            raise ValueError(f"{num_subspaces} subspaces do not split stage "
                             f"{self.stage_info()[index].name} of {type(self).__name__} "
                             f"(width {width}) into equal parts")
        return torch.arange(width).reshape(num_subspaces, width // num_subspaces)

    def subspace_weights(self, index: int, num_subspaces: int,
                         kinds: Sequence[str] | None = None) -> list[SubspaceWeights]:
        """The weight rows of stage ``index`` that produce each subspace of its output (see
        :meth:`subspace_features`), per weight matrix (only the ``kinds`` asked for; None: all).
        Default: none (the encoder does not say; a subspace penalty then has nothing to act on)."""
        self._check_stage(index)
        return []

    def _check_stage(self, index: int) -> None:
        """Raise IndexError unless 0 <= index < num_stages."""
        if not 0 <= index < self.num_stages:
            raise IndexError(f"{type(self).__name__} has {self.num_stages} stages, "
                             f"got stage {index}")


__all__ = ["Encoder", "LEVEL_DIMS", "StageInfo", "StageKind", "StageLevel", "SubspaceWeights"]
