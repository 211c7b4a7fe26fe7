"""A generalized recurrent architecture for Type-III multi-task learning (Zhang et al. 2017).

Every training step reads *collections*: one text of every task together (Type-III input,
``batch.collection``; the ``task_oriented`` sampler draws them). Per collection, four kinds of
recurrent layers run over the K texts at once (section 3.2 of the paper):

- **Single Layers** (Eqs. 6-13): one LSTM per task as Graves (2013) writes it, with peepholes:
  ``i = σ(W_i x_t + U_i h_(t-1) + V_i c_(t-1) + b_i)`` (f and o alike, Eqs. 6-8),
  ``c~ = tanh(W_c x_t + U_c h_(t-1))`` (Eq. 9), ``c_t = f c_(t-1) + i c~`` (Eq. 10),
  ``h_t = o tanh(c_t)`` (Eq. 11). Task k's logits read its state at its text's last token,
  ``softmax(W h_T + b)`` (Eq. 13; a ``head_hidden`` MLP head when asked).
- **Coupling Layers** (Eqs. 14-15): task k's memory content reads every task j's previous
  state through a gate, ``c~(k) = tanh(W_c x(k) + sum_j g(j->k) U_c(j->k) h(j)_(t-1))`` with
  ``g(j->k) = σ(W_gc(k) x(k)_t + U_gc(j) h(j)_(t-1))``. The paper's sum runs over every j, k
  included: the own term ``U_c(k->k) = U_c(k)`` (the Single Layer's) is gated too
  (``gate_own_recurrence: false`` keeps it ungated, as in Eq. 12, and gates the others only).
- **Local Fusion Layers** (Eqs. 16-18): one bidirectional LSTM per pair {j, k}, shared by
  both, over ``x(j)_t (+) x(k)_t``; task k adds ``LF(k) = sum_(j != k) g(j,k) U_c(j,k) h(j,k)_t``
  with ``g(j,k) = σ(W_gf(k) x(k)_t + U_gf(j) h(j,k)_t)``. The pair's layer is one; the
  projection ``U_c(j,k)`` is the reader's (one per ordered pair).
- **Global Fusion Layer** (Eqs. 19-20): one bidirectional LSTM over ``x(1)_t (+) ... (+)
  x(K)_t``; task k adds ``GF(k) = σ(W_gg(k) x(k)_t + U_gg(k) h(g)_t) U_c(g) h(g)_t``, with one
  ``U_c(g)`` for all tasks (as written).

``coupling``, ``local_fusion`` and ``global_fusion`` switch the three interactions (all on: the
paper's full model; all off: K independent peephole LSTMs, a tested property). With the
coupling off, the coupling term C(k) of Eqs. 16 and 19 is Eq. 12's own ``U_c(k) h(k)_(t-1)``;
``removed_pairs`` drops the coupling (both ways) and the local fusion of pairs of unrelated
tasks ("couplings and fusions between some empirically unrelated tasks can be removed",
section 4.3). Weights are written ``x @ W`` here ((in, out) matrices, the paper's transposed).

Choices the paper leaves open (each an option, default first):

- **Gates** (``gate_width``): ``scalar``: each g is one number per row and step, as the
  notation says (the paper writes ⊙ for element-wise products in Eqs. 10-11 and none between
  g and ``U h``); ``vector``: one gate per hidden unit, element-wise.
- **Peepholes** (``peephole``): ``diagonal`` (Graves 2013: V_i, V_f, V_o are diagonal) or
  ``full`` matrices. ``output_peephole``: ``previous``: o reads ``c_(t-1)`` (Eq. 8 as
  printed); ``current``: ``c_t`` (Graves 2013). ``candidate_bias``: Eq. 9 has no bias (false);
  true adds Graves's ``b_c``. The fusion layers' LSTMs are the same cell.
- **Initialisation** (``init_std``, default 0.1, ours): every weight and bias (heads too) from
  a zero-mean normal truncated at 2 standard deviations; the paper gives the distribution, not
  its width.
- **Word vectors** (``share_embedding``): one lookup table for every task (true, the paper's
  single pre-trained table; a shared parameter), or one per task (task parameters). The table
  is built from the features' input spec (pre-trained vectors when the featurizer has them,
  e.g. ``features.embeddings``; else ``embedding_dim`` random ones). The configured encoder only
  picks the features: it must read ``tokens`` (e.g. ``bilstm``); none of its layers is used.

Padding never changes an encoding. Texts are right-padded, of different lengths within a
collection. A Single Layer's state stops updating after its text's last token, so the state
read by its head is the one at the text's true length. A fusion layer reads the concatenation
of texts of different lengths: each text is padded with zero vectors to the *longest text the
layer reads* (the pair's longest for a local fusion layer, the collection's longest for the
global one) and the layer runs over that length, its backward direction starting at that
longest text's last token. So a collection encodes the same in any batch: no length outside
the collection enters. Task k reads the fusion outputs at its own steps only. After task j's
text ended, the coupling term of the others reads j's final state (``ended_rows:
last_state``) or nothing (``zero``).

Speed: the recurrence is batched over tasks, not looped over them. The input projections of
all steps of all tasks (gates, candidates and the x-part of every interaction gate) are one
batched matmul before the loop; the fusion layers (which read inputs only) run first, all
pairs, the global layer and both directions in one recurrence of one ``bmm`` per step; their
gated terms for every step are computed at once; then each step of the K Single Layers is one
``bmm`` of the K previous states with a (K, H, 3H + G + K*H) tensor that holds the own gates,
the coupling gates' hidden part and every ``U_c(j->k)``. ``fused: false`` runs the naive
reference instead (a Python loop over steps, tasks and pairs, written for clarity, with the
same parameters: tested equal; ``benchmarks/generalized_recurrent_epoch.py`` times both).

Evaluation (the paper does not say how a test text of task k gets the companion texts of the
other tasks): each scored row is put into ``eval_companion_draws`` collections whose other
texts are training rows drawn at random, uniformly with replacement, by a generator seeded
with ``(eval_companion_seed, k, j)`` (row p's companions of task j are the p-th draws of that
stream: they depend on the row, not on its batch or the batch size). The prediction is the
mean of the class probabilities over the draws (``evaluate`` averages rows a plan scores more
than once). This needs the plan to reach training rows, which the contract gives it:
``evaluation_plan`` receives ``train_sizes``, and ``EvaluationChunk.companion_split`` says
where the companions come from.

Parameter groups: the shared table is shared; each task's Single Layer (and its own table)
and head are its task parameters; the coupling, local fusion and global fusion layers are the
method's (``method_parameters``): they exist for the interaction, and each serves several
tasks in its own way (a pair's layer only its two tasks).

Glossary for shape comments: K tasks, Q ordered pairs of tasks, P unordered pairs, F fusion
layers (P pairs and the global one), N collections, T steps, d word vector width, H hidden
units, G gate width (1 or H).

References:
    Zhang, Xiao, Wang & Jin (2017), "A Generalized Recurrent Neural Architecture for Text
    Classification with Multi-Task Learning" (IJCAI; ``generalized-recurrent-mtl.txt``);
    Graves (2013), "Generating Sequences With Recurrent Neural Networks" (the peephole LSTM);
    Liu, Qiu & Huang (2016), "Recurrent Neural Network for Text Classification with Multi-Task
    Learning" (the coupled and shared layers this generalises).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..data.batching import Batch, EvaluationChunk
from ..data.inputs import TokenInput
from ..encoders.layers import build_embedding, embed_tokens, reverse_padded
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import TaskHeads

GATE_WIDTHS = ("scalar", "vector")
PEEPHOLES = ("diagonal", "full")
OUTPUT_PEEPHOLES = ("previous", "current")
ENDED_ROWS = ("last_state", "zero")


class PeepholeLSTM(nn.Module):
    """The weights of one LSTM with peepholes (Graves 2013; Eqs. 6-11), gate order i, f, o, c~.

    Attributes:
        weight_input: (D, 4H), ``[W_i | W_f | W_o | W_c]``.
        weight_hidden: (H, 4H), ``[U_i | U_f | U_o | U_c]``.
        peephole: (3H,) ``[V_i | V_f | V_o]`` (diagonal) or (H, 3H) (full matrices).
        bias: (3H,) ``[b_i | b_f | b_o]``, or (4H,) with the candidate's ``b_c``.
    """

    def __init__(self, input_dim: int, hidden_dim: int, peephole: str, candidate_bias: bool) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.weight_input = nn.Parameter(torch.empty(input_dim, 4 * hidden_dim))
        self.weight_hidden = nn.Parameter(torch.empty(hidden_dim, 4 * hidden_dim))
        shape = (3 * hidden_dim,) if peephole == "diagonal" else (hidden_dim, 3 * hidden_dim)
        self.peephole = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty((4 if candidate_bias else 3) * hidden_dim))

    def full_bias(self) -> torch.Tensor:
        """(4H,) biases of i, f, o and c~ (zero for c~ without ``candidate_bias``)."""
        missing = 4 * self.hidden_dim - self.bias.shape[0]
        return nn.functional.pad(self.bias, (0, missing)) if missing else self.bias


class BiPeepholeLSTM(nn.Module):
    """A bidirectional layer of two :class:`PeepholeLSTM` (a fusion layer)."""

    def __init__(self, input_dim: int, hidden_dim: int, peephole: str, candidate_bias: bool) -> None:
        super().__init__()
        self.forward_lstm = PeepholeLSTM(input_dim, hidden_dim, peephole, candidate_bias)
        self.backward_lstm = PeepholeLSTM(input_dim, hidden_dim, peephole, candidate_bias)


def _peep(cell: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Peephole terms of L stacked LSTMs: (L, N, H) cells, (L, G*H) diagonal or (L, H, G*H)
    full weights -> (L, N, G*H)."""
    if weight.dim() == 3:
        return torch.bmm(cell, weight)
    return cell.repeat(1, 1, weight.shape[-1] // cell.shape[-1]) * weight[:, None, :]


def peephole_cell(gates: torch.Tensor, candidate: torch.Tensor, cell: torch.Tensor,
                  peephole: torch.Tensor, output_current: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of L stacked peephole LSTMs (Eqs. 6-11), from their pre-activations.

    Args:
        gates: (L, N, 3H) ``W x_t + U h_(t-1) + b`` of i, f, o (without the peepholes).
        candidate: (L, N, H) the memory content's pre-activation (Eq. 9, or 14 / 16 / 19).
        cell: (L, N, H) c_(t-1).
        peephole: (L, 3H) diagonal or (L, H, 3H) full peephole weights.
        output_current: o peeks at c_t (Graves 2013) instead of c_(t-1) (Eq. 8).
    Returns:
        (h_t, c_t), each (L, N, H).
    """
    hidden = cell.shape[-1]
    if output_current:
        input_forget = torch.sigmoid(gates[..., : 2 * hidden] + _peep(cell, peephole[..., : 2 * hidden]))
        input_gate, forget_gate = input_forget.chunk(2, dim=-1)  # (L, N, H) each
        new_cell = forget_gate * cell + input_gate * torch.tanh(candidate)
        output_gate = torch.sigmoid(gates[..., 2 * hidden:] + _peep(new_cell, peephole[..., 2 * hidden:]))
    else:
        input_gate, forget_gate, output_gate = torch.sigmoid(gates + _peep(cell, peephole)).chunk(3, dim=-1)
        new_cell = forget_gate * cell + input_gate * torch.tanh(candidate)
    return output_gate * torch.tanh(new_cell), new_cell


def run_lstm_layers(projected: torch.Tensor, active: torch.Tensor, weight_hidden: torch.Tensor,
                    peephole: torch.Tensor, output_current: bool) -> torch.Tensor:
    """L independent peephole LSTMs over time, batched: one ``bmm`` per step.

    Args:
        projected: (T, L, N, 4H) ``W x_t + b`` of every step.
        active: (T, L, N, 1) bool, True on real steps (a row's state stops after its last).
        weight_hidden: (L, H, 4H).
        peephole: (L, 3H) or (L, H, 3H).
        output_current: see :func:`peephole_cell`.
    Returns:
        (T, L, N, H) hidden states, zero on steps that are not real.
    """
    steps, layers, rows, width = projected.shape
    hidden_dim = width // 4
    hidden = projected.new_zeros(layers, rows, hidden_dim)
    cell = projected.new_zeros(layers, rows, hidden_dim)
    outputs = []
    # unbind once, not projected[t] per step: each indexing op's backward writes a zero tensor
    # of the WHOLE (T, L, N, 4H) input and adds it up, T times (quadratic in T; it was 65 % of
    # a training step), where unbind's backward stacks the T step gradients once
    for projected_t, active_t in zip(projected.unbind(0), active.unbind(0)):
        pre = projected_t + torch.bmm(hidden, weight_hidden)  # (L, N, 4H)
        new_hidden, new_cell = peephole_cell(pre[..., : 3 * hidden_dim], pre[..., 3 * hidden_dim:],
                                             cell, peephole, output_current)
        hidden = torch.where(active_t, new_hidden, hidden)
        cell = torch.where(active_t, new_cell, cell)
        outputs.append(new_hidden * active_t)
    return torch.stack(outputs)


def reverse_steps(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths`` steps of every time-major sequence; padding stays put.

    Args:
        x: (T, L, N, D).
        lengths: (L, N).
    Returns:
        (T, L, N, D); applied twice, the identity.
    """
    steps = torch.arange(x.shape[0], device=x.device)[:, None, None]  # (T, 1, 1)
    index = torch.where(steps < lengths[None], lengths[None] - 1 - steps, steps)  # (T, L, N)
    return x.gather(0, index[..., None].expand_as(x))


def _trunc_normal(parameters, std: float) -> None:
    for parameter in parameters:
        nn.init.trunc_normal_(parameter, std=std, a=-2 * std, b=2 * std)


@SHARING.register("generalized_recurrent")
class GeneralizedRecurrent(SharingMethod):
    """Per-task peephole LSTMs joined by coupling, local and global fusion layers (Zhang 2017).

    It reads collections of one text of every task (Type-III input).

    Args:
        coupling: Coupling Layers (Eqs. 14-15).
        local_fusion: Local Fusion Layers (Eqs. 16-18).
        global_fusion: the Global Fusion Layer (Eqs. 19-20).
        embedding_dim: d, width of the word vectors (the paper: 300); pre-trained vectors
            given by the featurizer set it instead.
        hidden_dim: n, units of every LSTM and of each direction of a fusion layer (100).
        share_embedding: one lookup table for all tasks (the paper's); false: one per task.
        freeze_embeddings: keep the lookup table(s) fixed.
        gate_width: ``scalar`` or ``vector`` interaction gates (see the module docstring).
        gate_own_recurrence: with coupling, the own term ``U_c(k) h(k)`` is gated by g(k->k)
            (Eq. 14, whose sum includes j = k); false: it stays ungated (Eq. 12).
        peephole: ``diagonal`` (Graves 2013) or ``full`` peephole weights.
        output_peephole: the output gate peeks at ``previous`` (Eq. 8) or ``current`` cell.
        candidate_bias: add a bias to the memory content (Graves 2013; Eq. 9 has none).
        ended_rows: what the coupling reads of a task whose text has ended: its
            ``last_state``, or ``zero``.
        removed_pairs: pairs ``[task_a, task_b]`` without coupling (both ways) or local fusion.
        init_std: standard deviation of the truncated normal initialisation.
        eval_companion_draws: companion collections per evaluated row (probabilities averaged).
        eval_companion_seed: seed of the evaluation companions.
        fused: the batched recurrence (true) or the naive per-task reference loop.
        head_hidden: 0: one linear output layer per task (Eq. 13); > 0: a per-task MLP head
            with this many hidden units (ReLU).

    References:
        Zhang, Xiao, Wang & Jin (2017); Graves (2013).
    """

    rows_interact = True
    needs_every_task_per_step = True
    needs_collections = True
    input_kinds = ("tokens",)

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 coupling: bool = True, local_fusion: bool = True, global_fusion: bool = True,
                 embedding_dim: int = 300, hidden_dim: int = 100, share_embedding: bool = True,
                 freeze_embeddings: bool = False,
                 gate_width: Literal["scalar", "vector"] = "scalar",
                 gate_own_recurrence: bool = True,
                 peephole: Literal["diagonal", "full"] = "diagonal",
                 output_peephole: Literal["previous", "current"] = "previous",
                 candidate_bias: bool = False,
                 ended_rows: Literal["last_state", "zero"] = "last_state",
                 removed_pairs: list[list[str]] = [], init_std: float = 0.1,
                 eval_companion_draws: int = 3, eval_companion_seed: int = 0,
                 fused: bool = True, head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        name = type(self).__name__
        for key, value in (("coupling", coupling), ("local_fusion", local_fusion),
                           ("global_fusion", global_fusion), ("share_embedding", share_embedding),
                           ("freeze_embeddings", freeze_embeddings),
                           ("gate_own_recurrence", gate_own_recurrence),
                           ("candidate_bias", candidate_bias), ("fused", fused)):
            if not isinstance(value, bool):
                raise ValueError(f"'{key}' of {name} must be true or false, got {value!r}")
        for key, value, choices in (("gate_width", gate_width, GATE_WIDTHS),
                                    ("peephole", peephole, PEEPHOLES),
                                    ("output_peephole", output_peephole, OUTPUT_PEEPHOLES),
                                    ("ended_rows", ended_rows, ENDED_ROWS)):
            if value not in choices:
                raise ValueError(f"'{key}' of {name} must be one of {', '.join(choices)}, "
                                 f"got {value!r}")
        for key, value, least in (("embedding_dim", embedding_dim, 1), ("hidden_dim", hidden_dim, 1),
                                  ("eval_companion_draws", eval_companion_draws, 1),
                                  ("eval_companion_seed", eval_companion_seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"'{key}' of {name} must be an integer >= {least}, got {value!r}")
        if isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or not init_std > 0:
            raise ValueError(f"'init_std' of {name} must be a number > 0, got {init_std!r}")
        tagging = [t.name for t in tasks if t.level != "sequence"]
        if tagging:
            raise ValueError(f"{name} classifies whole texts (Eq. 13 reads the last hidden state); "
                             f"task {tagging[0]!r} labels tokens")
        removed = self._removed_pairs(removed_pairs)
        spec = encoder_factory().input_spec  # the encoder only says what the features are
        if spec.kind not in self.input_kinds:
            raise ValueError(f"{name} embeds word ids itself and reads 'tokens' features; the "
                             f"encoder reads {spec.kind!r} (use e.g. encoder bilstm)")

        k_tasks, hidden = len(tasks), hidden_dim
        self.hidden_dim = hidden
        self.gate_dim = 1 if gate_width == "scalar" else hidden  # G
        self.full_peephole = peephole == "full"
        self.output_current = output_peephole == "current"
        self.gate_own_recurrence = gate_own_recurrence
        self.zero_ended_rows = ended_rows == "zero"
        self.eval_companion_draws = eval_companion_draws
        self.eval_companion_seed = eval_companion_seed
        self.fused = fused
        self.share_embedding = share_embedding
        self.embeddings = nn.ModuleList(
            build_embedding(spec, embedding_dim, freeze_embeddings)
            for _ in range(1 if share_embedding else k_tasks))
        width = self.embeddings[0].embedding_dim  # d
        self.single_layers = nn.ModuleList(PeepholeLSTM(width, hidden, peephole, candidate_bias)
                                           for _ in tasks)
        # the pairs that interact: (a, b) with a < b, and ordered (j -> k), j != k
        self.pairs = [(a, b) for a in range(k_tasks) for b in range(a + 1, k_tasks)
                      if (a, b) not in removed]
        self.ordered_pairs = [(j, k) for j in range(k_tasks) for k in range(k_tasks)
                              if j != k and (min(j, k), max(j, k)) not in removed]
        gate = self.gate_dim
        self.coupling = None
        if coupling and (self.ordered_pairs or gate_own_recurrence):
            self.coupling = nn.ParameterDict({
                "gate_input": nn.Parameter(torch.empty(k_tasks, width, gate)),  # W_gc(k)
                "gate_hidden": nn.Parameter(torch.empty(k_tasks, hidden, gate)),  # U_gc(j)
            })
            if self.ordered_pairs:  # U_c(j -> k), j != k (U_c(k -> k) is the Single Layer's)
                self.coupling["weight"] = nn.Parameter(torch.empty(len(self.ordered_pairs), hidden, hidden))
        self.local_fusion = None
        if local_fusion and self.pairs:
            self.local_fusion = nn.ModuleDict({
                "layers": nn.ModuleList(BiPeepholeLSTM(2 * width, hidden, peephole, candidate_bias)
                                        for _ in self.pairs),
                "weights": nn.ParameterDict({
                    "read": nn.Parameter(torch.empty(len(self.ordered_pairs), 2 * hidden, hidden)),  # U_c(j,k)
                    "gate_input": nn.Parameter(torch.empty(k_tasks, width, gate)),  # W_gf(k)
                    "gate_hidden": nn.Parameter(torch.empty(k_tasks, 2 * hidden, gate)),  # U_gf(j)
                })})
        self.global_fusion = None
        if global_fusion:
            self.global_fusion = nn.ModuleDict({
                "layer": BiPeepholeLSTM(k_tasks * width, hidden, peephole, candidate_bias),
                "weights": nn.ParameterDict({
                    "read": nn.Parameter(torch.empty(2 * hidden, hidden)),  # U_c(g)
                    "gate_input": nn.Parameter(torch.empty(k_tasks, width, gate)),  # W_gg(k)
                    "gate_hidden": nn.Parameter(torch.empty(k_tasks, 2 * hidden, gate)),  # U_gg(k)
                })})
        self.heads = TaskHeads(tasks, hidden, self.head_hidden)
        _trunc_normal([p for m in (self.single_layers, self.coupling, self.local_fusion,
                                   self.global_fusion, self.heads) if m is not None
                       for p in m.parameters()], float(init_std))

        # coupling_mask[j, k] = 0 cuts the coupling j -> k (removed pairs; tests may set it)
        mask = torch.ones(k_tasks, k_tasks)
        for a, b in removed:
            mask[a, b] = mask[b, a] = 0.0
        self.register_buffer("coupling_mask", mask, persistent=False)
        index = lambda pairs: torch.tensor([list(p) for p in pairs], dtype=torch.long).view(-1, 2)
        self.register_buffer("_ordered", index(self.ordered_pairs), persistent=False)  # (Q, 2)
        self.register_buffer("_unordered", index(self.pairs), persistent=False)  # (P, 2)
        position = {pair: p for p, pair in enumerate(self.pairs)}
        self.register_buffer("_pair_of", torch.tensor(
            [position[(min(j, k), max(j, k))] for j, k in self.ordered_pairs], dtype=torch.long),
            persistent=False)  # (Q,) the unordered pair of each ordered one

    def _removed_pairs(self, removed_pairs) -> set[tuple[int, int]]:
        name = type(self).__name__
        removed = set()
        for pair in removed_pairs:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or pair[0] == pair[1] \
                    or any(t not in self.task_names for t in pair):
                raise ValueError(f"'removed_pairs' of {name} must list pairs of two different "
                                 f"task names ({', '.join(self.task_names)}), got {pair!r}")
            a, b = sorted(self.task_names.index(t) for t in pair)
            removed.add((a, b))
        return removed

    # -- forward ----------------------------------------------------------------------------

    def forward(self, batch: Batch) -> torch.Tensor:
        tokens, lengths, task_of_row, collection_of_row = self.collection_inputs(batch)
        hidden = self.encode(self.embed(tokens, lengths), lengths)  # (K, N, H)
        return self.heads(hidden[task_of_row, collection_of_row], batch.task_index)  # (B, C)

    def collection_inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                        torch.Tensor]:
        """The batch's collections laid out by task.

        Returns:
            token ids (K, N, T) cut to the longest text, lengths (K, N), and each batch row's
            task (B,) and collection (B,) in that layout.
        Raises:
            ValueError: the batch has no collections, or one does not hold exactly one row of
                every task.
        """
        name, k_tasks = type(self).__name__, len(self.tasks)
        if batch.collection is None or not isinstance(batch.inputs, TokenInput):
            raise ValueError(f"{name} reads collections of token ids (one row of every task); "
                             "the batch has no collections (use the task_oriented sampler)")
        ids, collection = torch.unique(batch.collection, return_inverse=True)  # (N,), (B,)
        count = ids.shape[0]
        slot = batch.task_index * count + collection  # (B,) position in the (K, N) layout
        filled = torch.bincount(slot, minlength=k_tasks * count)
        if batch.size != k_tasks * count or bool((filled != 1).any()):
            raise ValueError(f"every collection must hold one row of each of the {k_tasks} tasks "
                             f"of {name}; got {batch.size} rows in {count} collections")
        row_of_slot = torch.empty_like(slot).index_copy_(
            0, slot, torch.arange(batch.size, device=slot.device)).view(k_tasks, count)  # (K, N)
        lengths = batch.inputs.lengths.to(slot.device)[row_of_slot]  # (K, N)
        steps = int(lengths.max())
        tokens = batch.inputs.token_ids[row_of_slot][..., :steps]  # (K, N, T)
        return tokens, lengths, batch.task_index, collection

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(K, N, T) ids -> (K, N, T, d) word vectors, zero on padding."""
        mask = torch.arange(tokens.shape[-1], device=tokens.device) < lengths[..., None]  # (K, N, T)
        if self.share_embedding:
            return embed_tokens(self.embeddings[0], tokens, mask)
        return torch.stack([embed_tokens(table, tokens[k], mask[k])
                            for k, table in enumerate(self.embeddings)])

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor,
               fused: bool | None = None) -> torch.Tensor:
        """The Single Layers' states at each text's last token, h(k)_(T_k) (Eq. 13's input).

        Args:
            inputs: (K, N, T, d) word vectors of N collections, zero past each text's end.
            lengths: (K, N) true lengths, all >= 1.
            fused: the batched recurrence or the naive reference (None: the method's ``fused``).
        Returns:
            (K, N, H).
        """
        fused = self.fused if fused is None else fused
        return self._encode_fused(inputs, lengths) if fused else self._encode_naive(inputs, lengths)

    # -- the batched recurrence -------------------------------------------------------------

    def _encode_fused(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        k_tasks, rows, steps, width = x.shape
        hidden_dim, gate = self.hidden_dim, self.gate_dim
        layers = list(self.single_layers)
        xt = x.transpose(1, 2)  # (K, T, N, d): time-major slices per step
        # every input projection of every step and task in one bmm: gates, memory content and
        # the x-part of each interaction gate (W_gc, W_gf, W_gg)
        blocks = [torch.stack([layer.weight_input for layer in layers])]  # (K, d, 4H)
        interactions = (self.coupling, self.local_fusion, self.global_fusion)  # None when off
        for module in interactions:
            if module is not None:
                weights = module if isinstance(module, nn.ParameterDict) else module["weights"]
                blocks.append(weights["gate_input"])  # (K, d, G)
        projected = torch.bmm(xt.reshape(k_tasks, steps * rows, width), torch.cat(blocks, dim=2))
        projected = projected.view(k_tasks, steps, rows, -1).transpose(0, 1)  # (T, K, N, 4H + nG)
        bias = torch.stack([layer.full_bias() for layer in layers])[None, :, None]  # (1, K, 1, 4H)
        gates_in = projected[..., : 3 * hidden_dim] + bias[..., : 3 * hidden_dim]  # (T, K, N, 3H)
        candidate_in = projected[..., 3 * hidden_dim: 4 * hidden_dim] + bias[..., 3 * hidden_dim:]
        x_gates, offset = [], 4 * hidden_dim
        for module in interactions:
            x_gates.append(None if module is None else projected[..., offset: offset + gate])
            offset += 0 if module is None else gate
        x_coupling, x_local, x_global = x_gates  # (T, K, N, G) each, or None

        # the fusion layers read inputs only: run them first, then add their gated terms
        if self.local_fusion is not None or self.global_fusion is not None:
            pair_states, global_states = self._fusion_states(xt, lengths)
            if pair_states is not None:
                candidate_in = candidate_in + self._local_term(pair_states, x_local)
            if global_states is not None:
                candidate_in = candidate_in + self._global_term(global_states, x_global)

        own_hidden = torch.stack([layer.weight_hidden for layer in layers])  # (K, H, 4H)
        if self.coupling is not None:
            # one matmul per step gives, from every h(j)_(t-1): j's own gates, U_gc(j) h(j) and
            # U_c(j -> k) h(j) for every k
            recurrent = torch.cat([own_hidden[..., : 3 * hidden_dim], self.coupling["gate_hidden"],
                                   self._coupling_blocks(own_hidden[..., 3 * hidden_dim:])], dim=2)
            scale, fixed = self._coupling_gate_scale()  # (K, 1, K, 1) each
        else:
            recurrent = own_hidden  # (K, H, 4H)
        peephole = torch.stack([layer.peephole for layer in layers])  # (K, 3H) or (K, H, 3H)
        # (T, K, N, 1): True on a text's real steps
        active = (torch.arange(steps, device=x.device)[:, None, None] < lengths[None])[..., None]

        hidden = x.new_zeros(k_tasks, rows, hidden_dim)
        cell = x.new_zeros(k_tasks, rows, hidden_dim)
        read = hidden  # what the others read of each task's h_(t-1)
        # per-step slices by one unbind each (see run_lstm_layers: indexing [t] in the loop
        # makes the backward quadratic in T)
        gates_steps, candidate_steps, active_steps = gates_in.unbind(0), candidate_in.unbind(0), active.unbind(0)
        coupling_steps = x_coupling.unbind(0) if x_coupling is not None else [None] * steps
        for t in range(steps):
            out = torch.bmm(read, recurrent)  # (K, N, 3H + ...)
            gates = gates_steps[t] + out[..., : 3 * hidden_dim]
            if self.coupling is not None:
                from_hidden = out[..., 3 * hidden_dim: 3 * hidden_dim + gate]  # (K_j, N, G)
                # g(j -> k) = σ(U_gc(j) h(j) + W_gc(k) x(k)): (K_j, N, K_k, G), Eq. 15
                g = torch.sigmoid(from_hidden[:, :, None, :] + coupling_steps[t].transpose(0, 1)[None])
                g = g * scale + fixed
                # U_c(j -> k) h(j): (K_j, N, K_k, H)
                messages = out[..., 3 * hidden_dim + gate:].unflatten(-1, (k_tasks, hidden_dim))
                coupled = (g * messages).sum(0).transpose(0, 1)  # (K_k, N, H): Eq. 14's sum
            else:
                coupled = out[..., 3 * hidden_dim:]  # U_c h_(t-1) (Eq. 12)
            new_hidden, new_cell = peephole_cell(gates, candidate_steps[t] + coupled, cell, peephole,
                                                 self.output_current)
            hidden = torch.where(active_steps[t], new_hidden, hidden)  # frozen after the text's end
            cell = torch.where(active_steps[t], new_cell, cell)
            read = hidden * active_steps[t] if self.zero_ended_rows else hidden
        return hidden

    def _coupling_blocks(self, own_candidate: torch.Tensor) -> torch.Tensor:
        """(K_j, H, K_k*H): block k of row j is U_c(j -> k) (the Single Layer's U_c for j = k;
        zero for a removed pair)."""
        k_tasks, hidden_dim = own_candidate.shape[0], self.hidden_dim
        blocks = own_candidate.new_zeros(k_tasks * k_tasks, hidden_dim, hidden_dim)
        diagonal = torch.arange(k_tasks, device=blocks.device) * (k_tasks + 1)
        blocks = blocks.index_copy(0, diagonal, own_candidate)
        if self.ordered_pairs:
            blocks = blocks.index_copy(0, self._ordered[:, 0] * k_tasks + self._ordered[:, 1],
                                       self.coupling["weight"])
        return blocks.view(k_tasks, k_tasks, hidden_dim, hidden_dim).transpose(1, 2).reshape(
            k_tasks, hidden_dim, k_tasks * hidden_dim)

    def _coupling_gate_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, fixed), each (K_j, 1, K_k, 1): a gate is ``g * scale + fixed`` (the mask; an
        ungated own term is g = 1)."""
        mask = self.coupling_mask
        if self.gate_own_recurrence:
            return mask[:, None, :, None], torch.zeros_like(mask)[:, None, :, None]
        eye = torch.eye(mask.shape[0], device=mask.device, dtype=mask.dtype)
        return (mask * (1 - eye))[:, None, :, None], (mask * eye)[:, None, :, None]

    def _fusion_states(self, xt: torch.Tensor, lengths: torch.Tensor
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Outputs of every fusion layer, both directions in one recurrence.

        Args:
            xt: (K, T, N, d) word vectors.
            lengths: (K, N).
        Returns:
            pair states (T, P, N, 2H) (None without local fusion) and global states
            (T, N, 2H) (None without global fusion), ``[forward | backward]``.
        """
        k_tasks, steps, rows, width = xt.shape
        hidden_dim = self.hidden_dim
        lstms, projections, layer_lengths = [], [], []
        if self.local_fusion is not None:
            first, second = self._unordered[:, 0], self._unordered[:, 1]
            pair_inputs = torch.cat([xt[first], xt[second]], dim=-1)  # (P, T, N, 2d): x(j) (+) x(k)
            weights = torch.stack([torch.cat([bi.forward_lstm.weight_input, bi.backward_lstm.weight_input], 1)
                                   for bi in self.local_fusion["layers"]])  # (P, 2d, 8H)
            pairs = len(self.pairs)
            projections.append(torch.bmm(pair_inputs.flatten(1, 2), weights).view(
                pairs, steps, rows, -1).transpose(0, 1))  # (T, P, N, 8H)
            # a pair's texts are padded to the longer of the two
            layer_lengths.append(torch.maximum(lengths[first], lengths[second]))  # (P, N)
            lstms += list(self.local_fusion["layers"])
        if self.global_fusion is not None:
            bi = self.global_fusion["layer"]
            global_inputs = xt.permute(1, 2, 0, 3).reshape(steps, rows, k_tasks * width)  # (T, N, Kd)
            weight = torch.cat([bi.forward_lstm.weight_input, bi.backward_lstm.weight_input], 1)  # (Kd, 8H)
            projections.append((global_inputs @ weight)[:, None])  # (T, 1, N, 8H)
            layer_lengths.append(lengths.max(0).values[None])  # (1, N): the collection's longest
            lstms.append(bi)
        projected = torch.cat(projections, dim=1)  # (T, F, N, 8H)
        fusion_lengths = torch.cat(layer_lengths)  # (F, N)
        directions = [bi.forward_lstm for bi in lstms] + [bi.backward_lstm for bi in lstms]
        bias = torch.stack([lstm.full_bias() for lstm in directions])[None, :, None]  # (1, 2F, 1, 4H)
        forward_in = projected[..., : 4 * hidden_dim]
        backward_in = reverse_steps(projected[..., 4 * hidden_dim:], fusion_lengths)
        both_lengths = torch.cat([fusion_lengths, fusion_lengths])  # (2F, N)
        active = (torch.arange(steps, device=xt.device)[:, None, None] < both_lengths[None])[..., None]
        out = run_lstm_layers(torch.cat([forward_in, backward_in], dim=1) + bias, active,
                              torch.stack([lstm.weight_hidden for lstm in directions]),
                              torch.stack([lstm.peephole for lstm in directions]),
                              self.output_current)  # (T, 2F, N, H)
        layers = len(lstms)
        backward = reverse_steps(out[:, layers:], fusion_lengths)  # (T, F, N, H), original order
        states = torch.cat([out[:, :layers], backward], dim=-1)  # (T, F, N, 2H)
        pair_states = states[:, : len(self.pairs)] if self.local_fusion is not None else None
        global_states = states[:, -1] if self.global_fusion is not None else None
        return pair_states, global_states

    def _local_term(self, pair_states: torch.Tensor, x_gate: torch.Tensor) -> torch.Tensor:
        """LF(k)_t of Eq. 17 for every task and step: (T, P, N, 2H), (T, K, N, G) -> (T, K, N, H)."""
        weights, hidden_dim = self.local_fusion["weights"], self.hidden_dim
        senders, readers = self._ordered[:, 0], self._ordered[:, 1]
        states = pair_states[:, self._pair_of].transpose(0, 1)  # (Q, T, N, 2H): h(j,k)
        steps, rows = states.shape[1], states.shape[2]
        # U_c(j,k) h(j,k) and U_gf(j) h(j,k) in one bmm
        both = torch.cat([weights["read"], weights["gate_hidden"][senders]], dim=2)  # (Q, 2H, H + G)
        out = torch.bmm(states.flatten(1, 2), both).view(len(self.ordered_pairs), steps, rows, -1)
        g = torch.sigmoid(out[..., hidden_dim:] + x_gate.transpose(0, 1)[readers])  # (Q, T, N, G): Eq. 18
        terms = g * out[..., :hidden_dim]  # (Q, T, N, H)
        total = terms.new_zeros(len(self.tasks), steps, rows, hidden_dim).index_add(0, readers, terms)
        return total.transpose(0, 1)  # (T, K, N, H)

    def _global_term(self, global_states: torch.Tensor, x_gate: torch.Tensor) -> torch.Tensor:
        """GF(k)_t of Eq. 20 for every task and step: (T, N, 2H), (T, K, N, G) -> (T, K, N, H)."""
        weights, hidden_dim, k_tasks = self.global_fusion["weights"], self.hidden_dim, len(self.tasks)
        gate_hidden = weights["gate_hidden"].permute(1, 0, 2).reshape(2 * hidden_dim, -1)  # (2H, K*G)
        out = global_states @ torch.cat([weights["read"], gate_hidden], dim=1)  # (T, N, H + K*G)
        from_states = out[..., hidden_dim:].unflatten(-1, (k_tasks, -1)).transpose(1, 2)  # (T, K, N, G)
        g = torch.sigmoid(from_states + x_gate)
        return g * out[:, None, :, :hidden_dim]  # (T, K, N, H)

    # -- the naive reference ----------------------------------------------------------------

    def _encode_naive(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same model as a plain loop over steps, tasks and pairs (the reference)."""
        k_tasks, rows, steps, _ = x.shape
        hidden_dim = self.hidden_dim
        pair_states, global_states = {}, None
        if self.local_fusion is not None:
            for p, (a, b) in enumerate(self.pairs):
                pair_states[(a, b)] = self._naive_bilstm(
                    self.local_fusion["layers"][p], torch.cat([x[a], x[b]], dim=-1),
                    torch.maximum(lengths[a], lengths[b]))  # (N, T, 2H)
        if self.global_fusion is not None:
            global_states = self._naive_bilstm(self.global_fusion["layer"], torch.cat(list(x), dim=-1),
                                               lengths.max(0).values)  # (N, T, 2H)
        ordered = {pair: q for q, pair in enumerate(self.ordered_pairs)}
        hidden = [x.new_zeros(rows, hidden_dim) for _ in range(k_tasks)]
        cell = [x.new_zeros(rows, hidden_dim) for _ in range(k_tasks)]
        for t in range(steps):
            # what task j's previous state gives the others
            read = [h * (t - 1 < lengths[j])[:, None] if self.zero_ended_rows else h
                    for j, h in enumerate(hidden)]
            new_hidden, new_cell = [], []
            for k, layer in enumerate(self.single_layers):
                x_t = x[k][:, t]  # (N, d)
                w_c = layer.weight_input[:, 3 * hidden_dim:]
                u_c = layer.weight_hidden[:, 3 * hidden_dim:]
                candidate = x_t @ w_c + layer.full_bias()[3 * hidden_dim:]
                if self.coupling is None:
                    candidate = candidate + hidden[k] @ u_c  # Eq. 12
                else:  # Eqs. 14-15
                    for j in range(k_tasks):
                        if self.coupling_mask[j, k] == 0:
                            continue
                        weight = u_c if j == k else self.coupling["weight"][ordered[(j, k)]]
                        if j == k and not self.gate_own_recurrence:
                            g = 1.0
                        else:
                            g = torch.sigmoid(x_t @ self.coupling["gate_input"][k]
                                              + read[j] @ self.coupling["gate_hidden"][j])
                        candidate = candidate + g * (read[j] @ weight)
                if self.local_fusion is not None:  # Eqs. 16-18
                    weights = self.local_fusion["weights"]
                    for j in range(k_tasks):
                        if (j, k) not in ordered:
                            continue
                        h_jk = pair_states[(min(j, k), max(j, k))][:, t]  # (N, 2H)
                        g = torch.sigmoid(x_t @ weights["gate_input"][k] + h_jk @ weights["gate_hidden"][j])
                        candidate = candidate + g * (h_jk @ weights["read"][ordered[(j, k)]])
                if global_states is not None:  # Eqs. 19-20
                    weights = self.global_fusion["weights"]
                    h_g = global_states[:, t]  # (N, 2H)
                    g = torch.sigmoid(x_t @ weights["gate_input"][k] + h_g @ weights["gate_hidden"][k])
                    candidate = candidate + g * (h_g @ weights["read"])
                h, c = self._naive_step(layer, x_t, hidden[k], cell[k], candidate)
                real = (t < lengths[k])[:, None]
                new_hidden.append(torch.where(real, h, hidden[k]))
                new_cell.append(torch.where(real, c, cell[k]))
            hidden, cell = new_hidden, new_cell
        return torch.stack(hidden)

    def _naive_step(self, layer: PeepholeLSTM, x_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                    candidate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 6-11 for one LSTM, given the memory content's pre-activation."""
        n = self.hidden_dim
        w, u, b, v = layer.weight_input, layer.weight_hidden, layer.full_bias(), layer.peephole

        def peep(gate: int, cell: torch.Tensor) -> torch.Tensor:
            part = slice(gate * n, (gate + 1) * n)
            return cell @ v[:, part] if self.full_peephole else cell * v[part]

        def pre(gate: int) -> torch.Tensor:
            part = slice(gate * n, (gate + 1) * n)
            return x_t @ w[:, part] + h @ u[:, part] + b[part]

        i = torch.sigmoid(pre(0) + peep(0, c))
        f = torch.sigmoid(pre(1) + peep(1, c))
        new_c = f * c + i * torch.tanh(candidate)
        o = torch.sigmoid(pre(2) + peep(2, new_c if self.output_current else c))
        return o * torch.tanh(new_c), new_c

    def _naive_lstm(self, layer: PeepholeLSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, T, D) -> (N, T, H), zero past each row's length."""
        n = self.hidden_dim
        h = x.new_zeros(x.shape[0], n)
        c = x.new_zeros(x.shape[0], n)
        outputs = []
        for t in range(x.shape[1]):
            candidate = x[:, t] @ layer.weight_input[:, 3 * n:] + h @ layer.weight_hidden[:, 3 * n:] \
                + layer.full_bias()[3 * n:]
            new_h, new_c = self._naive_step(layer, x[:, t], h, c, candidate)
            real = (t < lengths)[:, None]
            h, c = torch.where(real, new_h, h), torch.where(real, new_c, c)
            outputs.append(new_h * real)
        return torch.stack(outputs, dim=1)

    def _naive_bilstm(self, layer: BiPeepholeLSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, T, D) -> (N, T, 2H) ``[forward | backward]``."""
        forward = self._naive_lstm(layer.forward_lstm, x, lengths)
        backward = reverse_padded(self._naive_lstm(layer.backward_lstm, reverse_padded(x, lengths), lengths),
                                  lengths)
        return torch.cat([forward, backward], dim=-1)

    # -- parameters and evaluation -----------------------------------------------------------

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.embeddings[0].parameters()) if self.share_embedding else []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        own_table = [] if self.share_embedding else list(self.embeddings[k].parameters())
        # the head last: its output bias is the task's last parameter (the contract suite's)
        return own_table + list(self.single_layers[k].parameters()) + self.heads.task_parameters(k)

    def method_parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.coupling, self.local_fusion, self.global_fusion) if m is not None
                for p in m.parameters()]

    def companions(self, task: int, other: int, count: int, train_size: int) -> np.ndarray:
        """Training rows of task ``other`` that accompany the first ``count`` evaluated rows of
        task ``task``: (count, eval_companion_draws) positions; row p's do not depend on
        ``count`` (each is one uniform draw of a stream seeded by the seed and the two tasks)."""
        rng = np.random.default_rng([self.eval_companion_seed, task, other])
        uniform = rng.random((count, self.eval_companion_draws))  # row-major: a prefix per row
        return np.minimum((uniform * train_size).astype(np.int64), train_size - 1)

    def evaluation_plan(self, split_sizes: Sequence[int], batch_size: int,
                        train_sizes: Sequence[int] | None = None) -> list[EvaluationChunk]:
        """Each evaluated row of task k in ``eval_companion_draws`` collections, its companions
        training rows of the other tasks (see the module docstring); ``batch_size`` collections
        per chunk (at least one row's draws)."""
        name = type(self).__name__
        if train_sizes is None:
            raise ValueError(f"{name} draws evaluation companions from the training rows; "
                             "evaluation_plan needs 'train_sizes'")
        empty = [self.task_names[j] for j, size in enumerate(train_sizes) if size < 1]
        if len(split_sizes) > 1 and empty:
            raise ValueError(f"{name} needs training rows of every task as evaluation companions; "
                             f"task {empty[0]!r} has none")
        draws = self.eval_companion_draws
        per_chunk = max(1, batch_size // draws)
        chunks = []
        for k, size in enumerate(split_sizes):
            others = [j for j in range(len(split_sizes)) if j != k]
            table = {j: self.companions(k, j, size, train_sizes[j]) for j in others}
            for start in range(0, size, per_chunk):
                positions = np.arange(start, min(start + per_chunk, size))
                scored = np.repeat(positions, draws)  # row p's copies side by side
                parts = [(k, scored)] + [(j, table[j][positions].reshape(-1)) for j in others]
                chunks.append(EvaluationChunk(k, parts, collections=True, companion_split="train"))
        return chunks
