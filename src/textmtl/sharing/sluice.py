"""Sluice networks: K task networks whose layers' subspaces are mixed by learned α, and whose
layers' outputs are mixed by learned β for each task's prediction.

The networks share their embedding stage (word and character features, run once per batch).
Every later stage of network k has its own weights; its output h_k is split into S subspaces
h_(k,1), ..., h_(k,S) (the encoder says how: ``Encoder.subspace_features``; for a BiLSTM each
direction is cut in halves, so every subspace keeps a forward and a backward part). After every
stage one (K*S) x (K*S) matrix α mixes all subspaces of all tasks (the paper's equation 2):

    h~_(k,s) = sum_(j,t) α[(k,s), (j,t)] h_(j,t),   h~_k = [h~_(k,1), ..., h~_(k,S)]

and h~_k is the input of network k's next stage (row (k, s) is index k*S + s). Each task's
head reads a β-weighted mixture of its own network's (mixed) layer outputs (equation 3):

    h~_A = sum_l β_(A,l) h~_(A,l)

``layer_mix`` chooses how the layers reach the head: ``mixture`` (learned β), ``skip``
(β = 1 for every layer: skip connections), ``concat`` (the layers' outputs concatenated) or
``last`` (only the outer layer, as cross-stitch networks). The layers mixed are the contiguous
``layer`` stages of the head's stage width and level ending at the stage the head reads (for a
tagging BiLSTM: bilstm_1 ... bilstm_L; the embedding is not one of them).

``learn_alpha: false`` is the paper's "constant α (hard)": all α equal makes every network read
the same input, which is hard parameter sharing; it is built as one shared network (the
authors' code runs hard sharing so), so it costs what hard sharing costs.

The subspace orthogonality penalty ``||G_(m,k,1)^T G_(m,k,2)||_F^2`` is a regulariser
(``regularizers``, default ``subspace_orthogonality`` on the LSTM input weights when there are
subspaces); it reads the weight blocks through :meth:`SluiceNetwork.subspace_weights`.

Initial values (``docs/sluice.md``): α with a bias to each task's own subspaces, 0.9 on
α[(k,s),(k,s)] with one subspace and 0.95 with two (the authors' "imbalanced" scheme,
``predictors.py`` of sebastianruder/sluice-networks), the rest of each row spread evenly so
rows sum to 1; β 0.9 on the last layer and 0.1 spread over the others (the authors' default
layer-stitch scheme).

Speed (``docs/sluice.md``): the shared embedding runs once; per stage the K networks each run
once on the whole batch (K calls: their weights differ); the α mixing of all K*S subspaces is
one einsum over a view of the stacked outputs; a batch of one task's rows reads that task's
network as it is; β and the heads are batched over tasks.

References:
    Ruder, Bingel, Augenstein & Søgaard (2019), "Latent Multi-task Architecture Learning"
    (AAAI; ``sluice-networks.txt``); the authors' DyNet code, sebastianruder/sluice-networks;
    Misra et al. (2016), "Cross-stitch Networks for Multi-task Learning".
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from ..data.batching import Batch
from ..encoders.base import StageInfo, SubspaceWeights
from ..regularizers import REGULARIZERS
from ..regularizers.base import Regularizer
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .columns import mix_columns, subspace_layout, tie_stage
from .heads import TaskHeads
from .stages import head_sources, read_stage

LayerMix = Literal["mixture", "skip", "concat", "last"]
LAYER_MIXES = ("mixture", "skip", "concat", "last")
#: default weight of the subspace orthogonality penalty. The paper gives none (the authors'
#: README example uses 0.1 with token-summed losses and another product); on the CoNLL-2000
#: tagger (H = 100, 3 layers, 2 tasks) the penalty of the LSTM input weights is about 1,000 at
#: initialisation, so 0.001 starts it near 1, a third of the initial task loss. Tune it on dev.
DEFAULT_ORTHOGONALITY_WEIGHT = 1e-3


def initial_alpha(num_tasks: int, num_subspaces: int, scheme: str, self_weight: float) -> torch.Tensor:
    """(K*S, K*S) initial α: ``balanced`` = all 1/(K*S); ``own`` = ``self_weight`` on each
    (task, subspace)'s own entry and the rest of the row spread evenly (rows sum to 1)."""
    size = num_tasks * num_subspaces
    if scheme == "balanced" or size == 1:
        return torch.full((size, size), 1.0 / size)
    alpha = torch.full((size, size), (1.0 - self_weight) / (size - 1))
    return alpha.fill_diagonal_(self_weight)


def initial_beta(num_layers: int, last_weight: float) -> torch.Tensor:
    """(L,) initial β: ``last_weight`` on the last layer, the rest spread over the others."""
    if num_layers == 1:
        return torch.ones(1)
    beta = torch.full((num_layers,), (1.0 - last_weight) / (num_layers - 1))
    beta[-1] = last_weight
    return beta


def layer_run(info: Sequence[StageInfo], stage: int) -> list[int]:
    """The stages β mixes for a head on ``stage``: the contiguous ``layer`` stages of its kind,
    level and width that end at it (just ``[stage]`` when it is not a ``layer``)."""
    target = info[stage]
    run = [stage]
    while target.kind == "layer" and run[0] > 0:
        before = info[run[0] - 1]
        if (before.kind, before.level, before.width) != (target.kind, target.level, target.width):
            break
        run.insert(0, run[0] - 1)
    return run


@SHARING.register("sluice")
class SluiceNetwork(SharingMethod):
    """K task networks, subspaces mixed by learned α after every layer, layers by learned β.

    Args:
        subspaces: S, subspaces per layer output (1: α mixes whole layers, as cross-stitch).
        learn_alpha: learn α (default); false: the paper's constant α, i.e. hard sharing of
            every layer (one network for all tasks; needs ``subspaces: 1``).
        alpha_init: ``own``: a bias towards each task's own subspaces (``alpha_self_weight``
            on the diagonal, the rest of each row spread evenly); ``balanced``: all 1/(K*S)
            (the authors' code default; the paper's synthetic experiment uses 0.25).
        alpha_self_weight: α[(k,s),(k,s)] for ``own``; None: 0.9 with one subspace, 0.95 with
            more (the authors' "imbalanced" values).
        layer_mix: how a task's head reads the layers: ``mixture`` (learned β), ``skip``
            (β = 1), ``concat`` (concatenated layer outputs) or ``last`` (outer layer only).
        beta_last_weight: initial β of the last layer for ``mixture`` (the rest spread evenly
            over the other layers; the authors' 0.9).
        shared_embedding: the networks share the encoder's embedding stage (the paper); false
            gives every network its own and mixes after it too.
        mixing_lr_scale: the learning rate of α and β is the base rate times this (their own
            optimiser group, ``sluice_mixing``).
        regularizers: penalties, e.g. ``[{name: subspace_orthogonality, weight: 0.001}]``;
            None: ``subspace_orthogonality`` (weight 0.001, LSTM input weights) when
            ``subspaces`` > 1 and the encoder gives subspace weights, else none; [] for none.
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU; the paper's tagger uses 100).
    """

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 subspaces: int = 2, learn_alpha: bool = True,
                 alpha_init: Literal["own", "balanced"] = "own",
                 alpha_self_weight: float | None = None, layer_mix: LayerMix = "mixture",
                 beta_last_weight: float = 0.9, shared_embedding: bool = True,
                 mixing_lr_scale: float = 1.0, regularizers: list[Regularizer] | None = None,
                 head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        if isinstance(subspaces, bool) or not isinstance(subspaces, int) or subspaces < 1:
            raise ValueError(f"'subspaces' of SluiceNetwork must be an integer >= 1, got {subspaces!r}")
        if subspaces > 1 and not learn_alpha:
            raise ValueError(f"'subspaces' of SluiceNetwork must be 1 with learn_alpha: false "
                             f"(constant α mixes every subspace alike), got {subspaces}")
        if alpha_init not in ("own", "balanced"):
            raise ValueError(f"'alpha_init' of SluiceNetwork must be 'own' or 'balanced', got {alpha_init!r}")
        if alpha_self_weight is None:
            alpha_self_weight = 0.9 if subspaces == 1 else 0.95
        if not 0.0 <= alpha_self_weight <= 1.0:
            raise ValueError(f"'alpha_self_weight' of SluiceNetwork must be in [0, 1], got {alpha_self_weight}")
        if layer_mix not in LAYER_MIXES:
            raise ValueError(f"'layer_mix' of SluiceNetwork must be one of {', '.join(LAYER_MIXES)}, "
                             f"got {layer_mix!r}")
        if not 0.0 <= beta_last_weight <= 1.0:
            raise ValueError(f"'beta_last_weight' of SluiceNetwork must be in [0, 1], got {beta_last_weight}")
        if mixing_lr_scale <= 0:
            raise ValueError(f"'mixing_lr_scale' of SluiceNetwork must be > 0, got {mixing_lr_scale}")
        self.num_subspaces = subspaces
        self.layer_mix = layer_mix
        self.mixing_lr_scale = mixing_lr_scale
        num_tasks = len(tasks)
        num_columns = num_tasks if learn_alpha and num_tasks > 1 else 1
        self.encoders = nn.ModuleList(encoder_factory() for _ in range(num_columns))
        first = self.encoders[0]
        info = first.stage_info()
        self.stage_names = [s.name for s in info]
        self.sources = head_sources(first, tasks)
        # the embedding is computed once for all networks (the paper's shared input layer)
        self.shared_stages = int(shared_embedding and num_columns > 1 and info[0].kind == "embedding")
        if self.shared_stages:
            tie_stage(self.encoders, 0)
        self.last_stage = max(s.stage for s in self.sources)
        self.mixed_stages = list(range(self.shared_stages, self.last_stage + 1)) if num_columns > 1 else []
        self._groups = []
        for i, stage in enumerate(self.mixed_stages):
            groups, order, inverse = subspace_layout(first.subspace_features(stage, subspaces))
            self._groups.append(groups)
            # buffers (None for a strided layout): they move with the model (.to(device)); not
            # saved (rebuilt from the config)
            self.register_buffer(f"_order_{i}", order, persistent=False)
            self.register_buffer(f"_inverse_{i}", inverse, persistent=False)
        self.alphas: nn.Parameter | None = None
        if self.mixed_stages:
            init = initial_alpha(num_tasks, subspaces, alpha_init, alpha_self_weight)
            self.alphas = nn.Parameter(init.repeat(len(self.mixed_stages), 1, 1))  # (stages, KS, KS)
        self.layer_runs = [layer_run(info, s.stage) if layer_mix != "last" else [s.stage]
                           for s in self.sources]
        self.kept_stages = sorted({stage for run in self.layer_runs for stage in run})
        self.betas: nn.ParameterList | None = None
        if layer_mix == "mixture":
            self.betas = nn.ParameterList(nn.Parameter(initial_beta(len(run), beta_last_weight))
                                          for run in self.layer_runs)
        widths = [info[s.stage].width * (len(run) if layer_mix == "concat" else 1)
                  for s, run in zip(self.sources, self.layer_runs)]
        self.heads = TaskHeads(tasks, widths, self.head_hidden)
        # one tensor path when every head reads the same layers as they are (tagging)
        self._uniform = len({tuple(r) for r in self.layer_runs}) == 1 and not any(s.pool for s in self.sources)
        if regularizers is None:
            regularizers = []
            if subspaces > 1 and self.subspace_weights(["input"]):
                regularizers = [REGULARIZERS.build("subspace_orthogonality",
                                                   params={"weight": DEFAULT_ORTHOGONALITY_WEIGHT})]
        self.regularizers = list(regularizers)
        for regularizer in self.regularizers:
            kinds = getattr(regularizer, "weights", None)
            if getattr(regularizer, "needs_subspace_weights", False) and not self.subspace_weights(kinds):
                raise ValueError(f"regularizer {regularizer.name!r} needs subspace weights; this "
                                 f"sluice network has none (subspaces: {subspaces}, encoder "
                                 f"{type(first).__name__} gives none of {kinds} for its mixed stages)")

    # -- forward ----------------------------------------------------------------------------

    def forward(self, batch: Batch) -> torch.Tensor:
        inputs = batch.inputs
        columns = len(self.encoders)
        hidden: list[torch.Tensor | None] = [None] * columns
        kept: dict[int, torch.Tensor] = {}
        start = 0
        if self.shared_stages:
            shared = self.encoders[0].run_stage(0, None, inputs)  # (B, T, E), once for all networks
            hidden = [shared] * columns
            start = 1
        for stage in range(start, self.last_stage + 1):
            outputs = [encoder.run_stage(stage, hidden[c], inputs)
                       for c, encoder in enumerate(self.encoders)]  # K x (B, ..., D): own weights
            stacked = torch.stack(outputs) if columns > 1 else outputs[0][None]  # (K, B, ..., D)
            if self.alphas is not None:
                i = stage - self.shared_stages
                stacked = mix_columns(self.alphas[i], stacked, self.num_subspaces, self._groups[i],
                                      getattr(self, f"_order_{i}"), getattr(self, f"_inverse_{i}"))
            hidden = list(stacked.unbind(0))
            if stage in self.kept_stages:
                kept[stage] = stacked
        if self._uniform:
            run = self.layer_runs[0]
            task_index = batch.task_index
            if columns == 1:  # one network for all tasks
                own = torch.stack([kept[s][0] for s in run])  # (L, B, ..., D)
            elif bool((task_index == task_index[0]).all()):
                # the rows of one task (a sampler that draws one task per step): its network's
                # outputs as they are, no per-row gather
                own = torch.stack([kept[s][int(task_index[0])] for s in run])  # (L, B, ..., D)
            else:
                rows = torch.arange(batch.size, device=task_index.device)
                own = torch.stack([kept[s] for s in run])[:, task_index, rows]  # (L, B, ..., D): own networks
            beta = None if self.betas is None else torch.stack(list(self.betas))[task_index]  # (B, L)
            return self.heads(self._combine(own, beta), task_index)
        read = []  # one tensor per task (heads read different stages, or pool them)
        for k, (source, run) in enumerate(zip(self.sources, self.layer_runs)):
            c = k if columns > 1 else 0
            own = torch.stack([kept[s][c] for s in run])  # (L, B, ..., D)
            beta = None if self.betas is None else self.betas[k].expand(batch.size, -1)  # (B, L)
            read.append(read_stage(self.encoders[c], self._combine(own, beta), inputs, source))
        return self.heads(read, batch.task_index)

    def _combine(self, own: torch.Tensor, beta: torch.Tensor | None) -> torch.Tensor:
        """(L, B, ..., D) layer outputs of each row's own network -> what its head reads."""
        if self.layer_mix == "mixture":
            return torch.einsum("bl,lb...->b...", beta, own)  # (B, ..., D): sum_l β_l h_l
        if self.layer_mix == "skip":
            return own.sum(0)  # (B, ..., D)
        if self.layer_mix == "concat":
            return torch.cat(list(own.unbind(0)), dim=-1)  # (B, ..., L*D)
        return own[-1]  # last

    # -- parameter groups -------------------------------------------------------------------

    def shared_parameters(self) -> list[nn.Parameter]:
        if len(self.encoders) == 1:  # hard sharing: the whole network is shared
            return list(self.encoders[0].parameters())
        return list(self.encoders[0].stage_parameters(0)) if self.shared_stages else []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        if len(self.encoders) == 1:
            return self.heads.task_parameters(k)
        shared = {id(p) for p in self.shared_parameters()}
        own = [p for p in self.encoders[k].parameters() if id(p) not in shared]
        return own + self.heads.task_parameters(k)

    def method_parameters(self) -> list[nn.Parameter]:
        return ([self.alphas] if self.alphas is not None else []) + list(self.betas or [])

    def param_groups(self) -> list[dict]:
        mixing = self.method_parameters()
        ids = {id(p) for p in mixing}
        groups = [{"name": "networks",
                   "params": [p for p in self.parameters() if p.requires_grad and id(p) not in ids]}]
        if mixing:
            groups.append({"name": "sluice_mixing", "params": mixing, "lr_scale": self.mixing_lr_scale})
        return groups

    # -- subspaces and what was learned -----------------------------------------------------

    def subspace_weights(self, kinds: Sequence[str] | None = None) -> list[SubspaceWeights]:
        """The weight blocks of every task network's subspaces, per mixed stage and matrix
        (what ``subspace_orthogonality`` penalises; only the ``kinds`` of matrix asked for,
        None: all); empty with one subspace."""
        if self.num_subspaces < 2:
            return []
        return [entry._replace(task=self.task_names[c])
                for c, encoder in enumerate(self.encoders) for stage in self.mixed_stages
                for entry in encoder.subspace_weights(stage, self.num_subspaces, kinds)]

    def learned_mixing(self) -> dict:
        """α after every mixed stage and each task's β, as plain lists (``mixing.json``)."""
        labels = [name if self.num_subspaces == 1 else f"{name}:{s + 1}"
                  for name in self.task_names for s in range(self.num_subspaces)]
        alphas = [] if self.alphas is None else [
            {"after": self.stage_names[stage], "labels": labels,
             "values": self.alphas[i].detach().cpu().tolist()}
            for i, stage in enumerate(self.mixed_stages)]
        beta = None
        if self.betas is not None:
            beta = {name: {"layers": [self.stage_names[s] for s in run],
                           "values": self.betas[k].detach().cpu().tolist()}
                    for k, (name, run) in enumerate(zip(self.task_names, self.layer_runs))}
        return {"method": "sluice", "subspaces": self.num_subspaces, "layer_mix": self.layer_mix,
                "alpha": alphas, "beta": beta}
