"""Low supervision: hard sharing where each task is supervised at its own encoder layer.

Søgaard & Goldberg (2016) train a stacked BiLSTM whose lower-level task (POS tagging) is
predicted from an inner layer and the higher-level task (chunking) from the outermost one: the
lower layers learn the low-level task, the upper ones build on it. Here the map from task to
encoder stage is the configuration (stage indices as in the encoder's ``stage_info()``;
for a BiLSTM stage 0 is the embedding and stage i the i-th layer).

References:
    Søgaard & Goldberg (2016), "Deep multi-task learning with low level tasks supervised at
    lower layers"; Ruder et al., "Latent Multi-task Architecture Learning"
    (``sluice-networks.txt``), which compares sluice networks with it.
"""

from __future__ import annotations

from typing import Sequence

from . import SHARING
from .base import EncoderFactory, TaskSpec
from .hard import HardSharing


@SHARING.register("low_supervision")
class LowSupervision(HardSharing):
    """One shared encoder; each task's head reads the stage ``task_stages`` names.

    Args:
        task_stages: task name -> encoder stage index (negative counts from the end); tasks
            not named read their default stage (the last token-level stage for tagging tasks,
            the last stage otherwise). E.g. ``{pos: 1}`` on a 3-layer BiLSTM predicts POS from
            the first layer and chunks from the third.
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
    """

    #: parameters whose keys are task names (checked against the experiment's tasks)
    task_references = ("task_stages",)

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 task_stages: dict[str, int] = {}, head_hidden: int = 0) -> None:
        unknown = sorted(set(task_stages) - {t.name for t in tasks})
        if unknown:
            raise ValueError(f"'task_stages' of LowSupervision names unknown task {unknown[0]!r}; "
                             f"tasks: {', '.join(t.name for t in tasks)}")
        self._task_stages = dict(task_stages)
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)

    def task_stages(self) -> dict[str, int]:
        return self._task_stages
