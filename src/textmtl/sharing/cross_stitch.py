"""Cross-stitch units between the stages of K per-task networks.

Every row runs through all K columns (one encoder per task). After each encoder stage the
column outputs are mixed: ``h'_k = sum_j alpha[k, j] * h_j``, with one learned K x K matrix
per stage. The row's own column feeds its task head. With ``alpha = I`` the columns never
interact, so cross-stitch is then exactly K independent single-task networks (a tested property).

``shared_embedding: true`` is cross-stitch as the sluice-networks paper uses it (its baseline
"cross-stitch nets"): the columns share the encoder's embedding stage (computed once), α mixes
after every later stage, and only the outer layer feeds the prediction. The default (false)
keeps every column's own embedding and mixes after it too, as in our FDU-MTL table.

References:
    Misra, Shrivastava, Gupta & Hebert (2016), "Cross-stitch Networks for Multi-task
    Learning"; Ruder et al., "Latent Multi-task Architecture Learning"
    (``sluice-networks.txt``), which generalises cross-stitch to sluice networks.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..data.batching import Batch
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .columns import tie_stage
from .heads import TaskHeads
from .stages import head_sources, head_widths, read_stage


@SHARING.register("cross_stitch")
class CrossStitch(SharingMethod):
    """K task columns mixed by learned cross-stitch matrices after every encoder stage.

    Args:
        self_weight: initial alpha[k, k]; the rest of each row, ``1 - self_weight``, is split
            evenly over the other tasks, so every row of alpha starts as a convex combination
            (Misra et al. found 0.9 / 0.1 works best).
        alpha_lr_scale: the learning rate of the α matrices is the base rate times this.
            Misra et al. train cross-stitch units with a learning rate 10^2-10^3 times the
            base network's (they are few parameters, and with the base rate they barely move);
            the default 1 keeps the base rate (our FDU-MTL table).
        shared_embedding: the columns share the encoder's embedding stage, run once, and α
            mixes only after the later stages (the sluice-networks paper's cross-stitch
            baseline); no effect for an encoder whose first stage is not an embedding.
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 self_weight: float = 0.9, alpha_lr_scale: float = 1.0,
                 shared_embedding: bool = False, head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"'self_weight' of CrossStitch must be in [0, 1], got {self_weight}")
        if alpha_lr_scale <= 0:
            raise ValueError(f"'alpha_lr_scale' of CrossStitch must be > 0, got {alpha_lr_scale}")
        self.alpha_lr_scale = alpha_lr_scale
        self.encoders = nn.ModuleList(encoder_factory() for _ in tasks)
        self.sources = head_sources(self.encoders[0], tasks)
        self.heads = TaskHeads(tasks, head_widths(self.encoders[0], self.sources), self.head_hidden)
        info = self.encoders[0].stage_info()
        self.stage_names = [s.name for s in info]
        self.shared_stages = int(shared_embedding and len(tasks) > 1 and info[0].kind == "embedding")
        if self.shared_stages:
            tie_stage(self.encoders, 0)
        k = len(tasks)
        other = (1.0 - self_weight) / (k - 1) if k > 1 else 0.0
        init = torch.full((k, k), other)
        init.fill_diagonal_(self_weight if k > 1 else 1.0)
        # mixing after every stage a head may read (all up to the deepest source)
        # (with a shared embedding: after every later one)
        num_stages = max(s.stage for s in self.sources) + 1 - self.shared_stages
        self.alphas = nn.Parameter(init.repeat(num_stages, 1, 1))  # (stages, K, K)

    def forward(self, batch: Batch) -> torch.Tensor:
        inputs = batch.inputs
        hidden: list[torch.Tensor | None] = [None] * len(self.encoders)
        if self.shared_stages:  # one embedding for every column, not mixed
            hidden = [self.encoders[0].run_stage(0, None, inputs)] * len(self.encoders)
        for i in range(self.alphas.shape[0]):
            stage = i + self.shared_stages
            outputs = torch.stack([
                encoder.run_stage(stage, hidden[k], inputs)
                for k, encoder in enumerate(self.encoders)
            ])  # (K, B, ...)
            mixed = torch.einsum("kj,j...->k...", self.alphas[i], outputs)  # (K, B, ...)
            hidden = list(mixed.unbind(0))
        if all(not s.pool for s in self.sources):
            columns = torch.stack(hidden)  # (K, B, D) or (K, B, T, D)
            rows = torch.arange(batch.size, device=batch.task_index.device)
            own = columns[batch.task_index, rows]  # (B, D): each row from its own task's column
            return self.heads(own, batch.task_index)
        # some tasks pool a token-level column: each task reads its own column, as it reads it
        read = [read_stage(self.encoders[k], hidden[k], inputs, self.sources[k])
                for k in range(len(self.encoders))]
        return self.heads(read, batch.task_index)

    def shared_parameters(self) -> list[nn.Parameter]:
        # each column is its task's (but a shared embedding); the α that couple them are the
        # method's own parameters
        return list(self.encoders[0].stage_parameters(0)) if self.shared_stages else []

    def method_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        shared = {id(p) for p in self.shared_parameters()}
        own = [p for p in self.encoders[k].parameters() if id(p) not in shared]
        return own + self.heads.task_parameters(k)

    def learned_mixing(self) -> dict:
        """The α matrix after every mixed stage, as plain lists (``mixing.json``)."""
        return {"method": "cross_stitch", "subspaces": 1, "layer_mix": "last",
                "alpha": [{"after": self.stage_names[i + self.shared_stages],
                           "labels": list(self.task_names), "values": alpha.detach().cpu().tolist()}
                          for i, alpha in enumerate(self.alphas)],
                "beta": None}

    def param_groups(self) -> list[dict]:
        others = [p for p in self.parameters() if p.requires_grad and p is not self.alphas]
        return [{"name": "columns", "params": others},
                {"name": "cross_stitch_alpha", "params": [self.alphas],
                 "lr_scale": self.alpha_lr_scale}]
