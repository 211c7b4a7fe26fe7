"""Which encoder stage each task's output layer reads, and reading it.

A task's head reads one stage output of the encoder (by default the last). Its level must fit
the task: a token-level (tagging) task needs a token-level stage; a sequence-level task reads a
sequence-level stage, or a token-level one pooled over its real tokens (``Encoder.pool``). A
mismatch is a one-line error naming the task and the encoder, found when the model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..data.inputs import EncoderInput
from ..encoders.base import Encoder

#: pooling used when a sequence-level task reads a token-level stage
TASK_POOLING = "max"


@dataclass(frozen=True)
class HeadSource:
    """Stage ``stage`` of the encoder feeds the head; ``pool`` it over tokens first."""

    stage: int
    pool: bool = False


def _encoder_name(encoder: Encoder) -> str:
    return getattr(type(encoder), "registry_name", type(encoder).__name__)


def head_sources(encoder: Encoder, tasks: Sequence, task_stages: dict[str, int] | None = None
                 ) -> list[HeadSource]:
    """The stage each task's head reads.

    Args:
        encoder: one built encoder (all columns of a method are alike).
        tasks: the task specs (``name``, ``level``).
        task_stages: task name -> stage index (negative counts from the end); tasks not named
            read their default: the last token-level stage for tagging tasks, the last stage
            for the others.
    Returns:
        One :class:`HeadSource` per task.
    Raises:
        ValueError: a task's level does not fit the stage it would read.
    """
    info = encoder.stage_info()
    described = ", ".join(f"{i}: {s.name} ({s.level})" for i, s in enumerate(info))
    task_stages = task_stages or {}
    sources = []
    for task in tasks:
        if task.name in task_stages:
            stage = task_stages[task.name]
            if not -len(info) <= stage < len(info):
                raise ValueError(f"stage {stage} of task {task.name!r} is not a stage of encoder "
                                 f"{_encoder_name(encoder)!r}; its stages are {described}")
            stage %= len(info)
        elif task.level == "token":
            token_stages = [i for i, s in enumerate(info) if s.level == "token"]
            if not token_stages:
                raise ValueError(f"task {task.name!r} labels tokens (tagging), but encoder "
                                 f"{_encoder_name(encoder)!r} has no token-level stage (its stages: "
                                 f"{described}); use a sequence encoder without pooling, e.g. "
                                 "bilstm with pooling: none")
            stage = token_stages[-1]
        else:
            stage = len(info) - 1
        level = info[stage].level
        if task.level == "token" and level != "token":
            raise ValueError(f"task {task.name!r} labels tokens (tagging), but stage {stage} "
                             f"({info[stage].name}) of encoder {_encoder_name(encoder)!r} is "
                             f"{level}-level")
        if task.level == "sequence" and level not in ("sequence", "token"):
            raise ValueError(f"task {task.name!r} labels whole texts, but stage {stage} "
                             f"({info[stage].name}) of encoder {_encoder_name(encoder)!r} is "
                             f"{level}-level; it cannot be pooled to one vector per text")
        sources.append(HeadSource(stage, pool=task.level == "sequence" and level == "token"))
    return sources


def head_widths(encoder: Encoder, sources: Sequence[HeadSource]) -> list[int]:
    """Input width of each task's head."""
    info = encoder.stage_info()
    return [info[s.stage].width for s in sources]


def reads_final_output(encoder: Encoder, sources: Sequence[HeadSource]) -> bool:
    """True when every head reads the encoder's last stage as it is (the common fast path)."""
    last = encoder.num_stages - 1
    return all(s.stage == last and not s.pool for s in sources)


def read_stage(encoder: Encoder, hidden: torch.Tensor, inputs: EncoderInput,
               source: HeadSource) -> torch.Tensor:
    """A stage output as a head reads it (pooled over real tokens when ``source.pool``)."""
    return encoder.pool(hidden, inputs, TASK_POOLING) if source.pool else hidden


def run_for_heads(encoder: Encoder, inputs: EncoderInput, sources: Sequence[HeadSource]
                  ) -> list[torch.Tensor]:
    """Run the encoder as far as the heads need and return each source's input, in order.

    Stages past the last one any head reads are not run.
    """
    last_needed = max(s.stage for s in sources)
    outputs: list[torch.Tensor] = []
    hidden = None
    for index in range(last_needed + 1):
        hidden = encoder.run_stage(index, hidden, inputs)
        outputs.append(hidden)
    read: dict[HeadSource, torch.Tensor] = {}
    for source in sources:
        if source not in read:
            read[source] = read_stage(encoder, outputs[source.stage], inputs, source)
    return [read[s] for s in sources]
