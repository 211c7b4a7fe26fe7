"""Adversarial shared-private multi-task learning (ASP-MTL).

One shared encoder reads every row; each task also has a private encoder of its own. A task's
classifier reads the concatenation ``[s; h_k]`` of the shared and the private features. Two
extra losses keep the shared space task-invariant and the private spaces apart from it:

- ``adversarial``: a task discriminator reads the shared features through a gradient-reversal
  layer (GRL) and predicts which task each row came from (cross-entropy over the batch's rows,
  unlabelled ones too: the paper trains the adversary on unlabelled text as well). The
  discriminator descends this loss; the shared encoder, behind the GRL, ascends it, and learns
  features from which the task cannot be told (the paper's min-max game, ``L_Adv``).
- ``difference``: ``sum_k ||S_k^T H_k||_F^2`` between the shared features ``S_k`` and the
  private features ``H_k`` of task k's rows (one row per text), which pushes the private
  features to what the shared ones do not hold (the paper's ``L_diff``).

The paper weighs them 0.05 and 0.01 (``default_loss_weights``; a method entry's
``loss_weights`` overrides them). Features are the encoder's final output (pooled over the
real tokens, max, when that is token-level); a tagging task's head reads the concatenated
*token* features of its stage instead, while the two extra losses still read pooled vectors.

Unlabelled rows (``batch.labelled`` False, drawn by a sampler with ``unlabelled_per_step > 0``)
go through the shared encoder only, for the adversarial loss: no task loss reads their logits
(their labels are IGNORE_LABEL), so they get :data:`~textmtl.sharing.heads.MASKED_LOGIT` for
every class and the private encoders and heads never run on them; the difference loss reads
labelled rows, as in the paper.

References:
    Liu, Qiu & Huang (2017), "Adversarial Multi-task Learning for Text Classification" (ACL);
    Ganin & Lempitsky (2015), "Unsupervised Domain Adaptation by Backpropagation" (the GRL and
    its schedule); Bousmalis et al. (2016), "Domain Separation Networks" (the difference loss,
    and the row-normalised form of its re-implementations). Compared against in
    ``cluster-layers-ncmtl.txt`` (Table 1, ASP-MTL).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batching import Batch
from . import SHARING
from .base import EncoderFactory, SharingMethod, TaskSpec
from .heads import MASKED_LOGIT, MLPHead, TaskHeads
from .single_task import _fit_tokens
from .stages import HeadSource, head_sources, head_widths, reads_final_output, run_for_heads

if TYPE_CHECKING:
    from ..training.state import TrainState

GRL_SCHEDULES = ("constant", "ganin")
DIFFERENCE_FORMS = ("raw", "normalized")


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-strength``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)  # a new tensor object, so autograd records this node

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.strength * grad, None


def reverse_gradient(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; gradients flowing back through it are multiplied by ``-strength``.

    Args:
        x: any tensor.
        strength: the reversal strength lambda (>= 0).
    Returns:
        A tensor equal to ``x``.
    References:
        Ganin & Lempitsky (2015), the gradient reversal layer.
    """
    return GradientReversal.apply(x, strength)


def ganin_strength(progress: float) -> float:
    """Ganin & Lempitsky's reversal schedule ``2 / (1 + exp(-10 p)) - 1``: 0 at p = 0, ~1 at p = 1.

    Args:
        progress: p, the fraction of training done (clipped to [0, 1]).
    """
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def difference_loss(shared: torch.Tensor, private: torch.Tensor,
                    form: Literal["raw", "normalized"] = "raw") -> torch.Tensor:
    """``||S^T H||_F^2`` of one task's shared and private feature rows (zero when orthogonal).

    Args:
        shared: S, (R, Ds) shared features of R rows.
        private: H, (R, Dp) private features of the same rows.
        form: ``raw`` (the paper's) or ``normalized``: every row of S and of H scaled to unit
            L2 norm first (as Domain Separation Networks re-implementations do; no mean
            centring, which would make the loss of a single row 0 and depend on the batch mix).
            The normalised loss is at most R^2, whatever the feature scale; the raw one grows
            with the 4th power of it.
    Returns:
        The scalar loss.
    References:
        Liu, Qiu & Huang (2017), ``L_diff``; Bousmalis et al. (2016).
    """
    if form not in DIFFERENCE_FORMS:
        raise ValueError(f"'form' of difference_loss must be one of {', '.join(DIFFERENCE_FORMS)}, "
                         f"got {form!r}")
    if form == "normalized":
        # x / max(||x||, eps): an all-zero row (dead ReLUs) stays 0, never NaN
        shared, private = F.normalize(shared, dim=1), F.normalize(private, dim=1)
    return (shared.transpose(0, 1) @ private).pow(2).sum()  # (Ds, Dp) -> ()


@SHARING.register("asp_mtl")
class AdversarialSharedPrivate(SharingMethod):
    """A shared and a private encoder per task, an adversarial task discriminator on the
    shared features, and orthogonality between the shared and the private features.

    Args:
        grl_schedule: the reversal strength lambda of the GRL. ``constant`` (default): lambda
            = 1 throughout; the paper states no schedule (its adversarial loss weight 0.05 sets
            the strength) and a constant keeps a run's losses independent of its length.
            ``ganin``: lambda = 2 / (1 + exp(-10 p)) - 1, rising from 0 while the
            discriminator learns first; p = training progress in epochs (``on_step_end``:
            completed epochs plus the fraction of the current one) over ``grl_ramp_epochs``.
        grl_ramp_epochs: epochs over which p goes from 0 to 1 with ``ganin`` (the hooks'
            :class:`~textmtl.training.state.TrainState` knows the current epoch and its steps,
            not the run's epoch budget; set this to ``training.max_epochs`` for Ganin's
            schedule exactly; the default is that setting's default).
        difference_form: ``raw`` (default, the paper's ``||S_k^T H_k||_F^2``) or ``normalized``
            (each feature row scaled to unit L2 norm first; the raw loss grows with the
            feature scale). See :func:`difference_loss`.
        use_unlabelled: the adversarial loss also reads the batch's unlabelled rows (the
            paper's semi-supervised use). True makes the method need them: the sampler must
            set ``unlabelled_per_step > 0`` and the tasks must have unlabelled texts. False:
            labelled rows only (any unlabelled rows in a batch are ignored).
        discriminator_hidden: 0 (default): the discriminator is one linear layer over the
            shared vector (the paper's ``softmax(U s + b)``); > 0: an MLP with that many hidden
            units (ReLU).
        head_hidden: 0: one linear output layer per task; > 0: a per-task MLP head with this
            many hidden units (ReLU). Heads read ``[shared; private]`` (twice the encoder width).

    The discriminator is a method parameter (``method_parameters()``). ``export_state`` keeps
    the whole state, discriminator included: it is only needed for training, but it is small
    (H x K), keeping it lets a saved model be trained on, and loading stays strict.

    References:
        Liu, Qiu & Huang (2017), "Adversarial Multi-task Learning for Text Classification".
    """

    # the class flag says what experiments featurize (unlabelled texts); an instance with
    # use_unlabelled: false overrides it, so the trainer does not ask the sampler for them
    needs_unlabelled_rows = True
    extra_loss_names = ("adversarial", "difference")
    default_loss_weights = {"adversarial": 0.05, "difference": 0.01}  # the paper's

    def __init__(self, tasks: Sequence[TaskSpec], encoder_factory: EncoderFactory, *,
                 grl_schedule: Literal["constant", "ganin"] = "constant",
                 grl_ramp_epochs: float = 30.0,
                 difference_form: Literal["raw", "normalized"] = "raw",
                 use_unlabelled: bool = True, discriminator_hidden: int = 0,
                 head_hidden: int = 0) -> None:
        super().__init__(tasks, encoder_factory, head_hidden=head_hidden)
        name = type(self).__name__
        if grl_schedule not in GRL_SCHEDULES:
            raise ValueError(f"'grl_schedule' of {name} must be one of {', '.join(GRL_SCHEDULES)}, "
                             f"got {grl_schedule!r}")
        if isinstance(grl_ramp_epochs, bool) or not isinstance(grl_ramp_epochs, (int, float)) \
                or not grl_ramp_epochs > 0:
            raise ValueError(f"'grl_ramp_epochs' of {name} must be a number > 0, "
                             f"got {grl_ramp_epochs!r}")
        if difference_form not in DIFFERENCE_FORMS:
            raise ValueError(f"'difference_form' of {name} must be one of "
                             f"{', '.join(DIFFERENCE_FORMS)}, got {difference_form!r}")
        if not isinstance(use_unlabelled, bool):
            raise ValueError(f"'use_unlabelled' of {name} must be true or false, "
                             f"got {use_unlabelled!r}")
        if isinstance(discriminator_hidden, bool) or not isinstance(discriminator_hidden, int) \
                or discriminator_hidden < 0:
            raise ValueError(f"'discriminator_hidden' of {name} must be an integer >= 0 (0: one "
                             f"linear layer; > 0: an MLP with that many hidden units), got "
                             f"{discriminator_hidden!r}")
        self.grl_schedule = grl_schedule
        self.grl_ramp_epochs = float(grl_ramp_epochs)
        self.difference_form = difference_form
        self.use_unlabelled = use_unlabelled
        self.needs_unlabelled_rows = use_unlabelled  # type: ignore[misc]  (see the class flag)
        # ganin starts at 0: the discriminator learns before the encoder is pushed by it
        self.grl_strength = 1.0 if grl_schedule == "constant" else ganin_strength(0.0)

        self.shared_encoder = encoder_factory()
        self.private_encoders = nn.ModuleList(encoder_factory() for _ in tasks)
        self.sources = head_sources(self.shared_encoder, tasks)
        # what the discriminator and the difference loss read: the final output, one vector per
        # row (pooled over real tokens when the encoder ends at token level)
        info = self.shared_encoder.stage_info()
        last = info[-1]
        if last.level not in ("sequence", "token"):
            raise ValueError(f"{name} reads one vector per text from the encoder's last stage, but "
                             f"stage {len(info) - 1} ({last.name}) is {last.level}-level")
        self.feature_source = HeadSource(len(info) - 1, pool=last.level == "token")
        self._reads = [*self.sources, self.feature_source]
        self._fast = reads_final_output(self.shared_encoder, self._reads)
        # each head reads [shared; private]: both columns are alike, so twice the stage width
        widths = [2 * w for w in head_widths(self.shared_encoder, self.sources)]
        self.heads = TaskHeads(tasks, widths, self.head_hidden)
        width, num_tasks = last.width, len(tasks)
        self.discriminator = (MLPHead(width, discriminator_hidden, num_tasks) if discriminator_hidden
                              else nn.Linear(width, num_tasks))

    def _run(self, encoder, inputs, sources: Sequence[HeadSource]) -> list[torch.Tensor]:
        """The encoder output as each source reads it (one plain forward when all read it as is)."""
        if self._fast:
            hidden = encoder(inputs)
            return [hidden] * len(sources)
        return run_for_heads(encoder, inputs, sources)

    def forward(self, batch: Batch) -> torch.Tensor:
        inputs = batch.inputs
        shared = self._run(self.shared_encoder, inputs, self._reads)
        shared_vectors = shared[-1]  # (B, H): every row, unlabelled ones too
        outputs = None
        differences = []
        for k, encoder in enumerate(self.private_encoders):
            rows = ((batch.task_index == k) & batch.labelled).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            sub_inputs = inputs.select(rows)
            private, private_vectors = self._run(encoder, sub_inputs,
                                                 [self.sources[k], self.feature_source])
            own_shared = shared[k][rows]  # (R, D) or (R, T, D)
            if private.dim() == 3:  # the selected rows were trimmed to their own longest row
                own_shared = own_shared[:, : private.shape[1]]
            hidden = torch.cat([own_shared, private], dim=-1)  # (R, 2D) or (R, T', 2D)
            logits = self.heads(hidden, batch.task_index[rows])  # (R, C) or (R, T', C)
            if logits.dim() == 3:
                logits = _fit_tokens(logits, inputs.token_ids.shape[1])  # (R, T, C)
            if outputs is None:
                outputs = logits.new_full((batch.size, *logits.shape[1:]), MASKED_LOGIT)
            outputs = outputs.index_copy(0, rows, logits)
            if self.training:
                differences.append(difference_loss(shared_vectors[rows], private_vectors,
                                                   self.difference_form))
        if outputs is None:  # no labelled row (a step of unlabelled rows only)
            steps = (inputs.token_ids.shape[1],) if batch.level == "token" else ()
            outputs = shared_vectors.new_full((batch.size, *steps, self.heads.max_classes),
                                              MASKED_LOGIT)

        self._extra_losses = {}
        if self.training:  # the extra losses train; evaluation reads logits only
            # every row tells the discriminator its task; unlabelled ones too unless switched off
            adversary_rows = torch.ones_like(batch.labelled) if self.use_unlabelled else batch.labelled
            if bool(adversary_rows.any()):
                reversed_vectors = reverse_gradient(shared_vectors[adversary_rows], self.grl_strength)
                task_logits = self.discriminator(reversed_vectors)  # (A, K)
                self._extra_losses["adversarial"] = F.cross_entropy(
                    task_logits, batch.task_index[adversary_rows])
            if differences:
                # summed over the tasks, as in the paper
                self._extra_losses["difference"] = torch.stack(differences).sum()
        return outputs

    def on_step_end(self, state: "TrainState") -> None:
        if self.grl_schedule == "ganin":
            epochs_done = state.epoch - 1 + state.step_in_epoch / max(state.steps_per_epoch, 1)
            self.grl_strength = ganin_strength(epochs_done / self.grl_ramp_epochs)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared_encoder.parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        k = self.task_id(task)
        # the head last: its output bias is the task's last parameter (the contract suite's)
        return list(self.private_encoders[k].parameters()) + self.heads.task_parameters(k)

    def method_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())
