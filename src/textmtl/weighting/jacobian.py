"""Jacobian descent: aggregate the per-task gradients of the shared parameters with TorchJD.

References:
    Quinton & Rey (2024), "Jacobian Descent for Multi-Objective Optimization"
    (arXiv:2406.16232), and the TorchJD library (``torchjd.aggregation``), whose aggregators
    implement PCGrad (Yu et al. 2020), MGDA (Sener & Koltun 2018), CAGrad (Liu et al. 2021),
    Nash-MTL (Navon et al. 2022), GradDrop (Chen et al. 2020), GradVac (Wang et al. 2021),
    IMTL-G (Liu et al. 2021), Aligned-MTL (Senushkin et al. 2023), ConFIG (Liu et al. 2024),
    FairGrad (Ban & Ji 2024), ExcessMTL (He et al. 2024) and PCD.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import torch

from . import WEIGHTINGS
from .base import LossWeighting

if TYPE_CHECKING:
    from ..sharing.base import SharingMethod

# config name -> (torchjd.aggregation class, constructor defaults). Left out: Constant (the
# `fixed` weighting does it), Krum and TrimmedMean (Byzantine-robust federated aggregators that
# need more rows than an MTL step has tasks).
_AGGREGATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "aligned_mtl": ("AlignedMTL", {}),
    "cagrad": ("CAGrad", {"c": 0.4}),  # c = 0.4: the CAGrad paper's value for NYUv2/Cityscapes
    "config": ("ConFIG", {}),
    "dualproj": ("DualProj", {}),
    "excess_mtl": ("ExcessMTL", {}),
    "fairgrad": ("FairGrad", {"alpha": 1.0}),  # alpha = 1: proportional fairness
    "graddrop": ("GradDrop", {}),
    "gradvac": ("GradVac", {}),
    "imtl_g": ("IMTLG", {}),
    "mean": ("Mean", {}),
    "mgda": ("MGDA", {}),
    "nash_mtl": ("NashMTL", {}),  # n_tasks: set from the tasks (and re-set per step, see below)
    "pcd": ("PCD", {}),
    "pcgrad": ("PCGrad", {}),
    "random": ("Random", {}),
    "sum": ("Sum", {}),
    "upgrad": ("UPGrad", {}),
}

_MISSING_TORCHJD = "weighting 'jacobian' needs the optional package torchjd: pip install 'textmtl[gradients]'"


@WEIGHTINGS.register("jacobian")
class JacobianWeighting(LossWeighting):
    """Jacobian descent on the shared parameters with any TorchJD aggregator.

    Each step, the Jacobian of the present task losses (one row per task, in the model's task
    order) with respect to ``model.shared_parameters()`` is computed with
    ``torchjd.autojac.backward`` and aggregated into their ``.grad`` by the aggregator
    (``torchjd.autojac.jac_to_grad``). Task and method parameters get the ordinary gradient of
    the sum of the task losses (only one task's loss reaches a task parameter, so there is
    nothing to aggregate). The sharing method's extra loss adds its ordinary gradient to every
    parameter. With one task in the step, or a model without shared parameters, the step is
    plain backpropagation of the summed loss: the aggregation of a single row is that row (true
    of every listed aggregator except FairGrad, which rescales it, and Nash-MTL, which clips it).

    ``"sum"`` is exactly the fixed weighting with all weights 1; ``"mean"`` averages the shared
    gradients (so it scales the shared step by 1/K, task steps unchanged).

    Stateful aggregators (Nash-MTL, GradVac, ExcessMTL, PCD) keep statistics per row; their
    state is reset whenever the set of tasks in the step changes, so they are meant for a sampler
    that trains every task each step. PCD treats the first task as the primary objective.

    Args:
        aggregator: the TorchJD aggregator: aligned_mtl, cagrad, config, dualproj, excess_mtl,
            fairgrad, graddrop, gradvac, imtl_g, mean, mgda, nash_mtl, pcd, pcgrad, random, sum,
            upgrad. cagrad and nash_mtl need cvxpy (``pip install 'torchjd[cagrad]'`` /
            ``'torchjd[nash_mtl]'``).
        aggregator_params: keyword arguments of the aggregator's constructor (e.g.
            ``{"c": 0.5}`` for cagrad, ``{"pref_vector": [0.5, 0.5]}`` for upgrad); lists become
            float tensors.
        parallel_chunk_size: rows of the Jacobian differentiated at once (``torch.vmap``);
            None: all. Set 1 for modules vmap cannot batch (cuDNN RNNs); a vmap failure also
            falls back to 1 by itself, with a warning.

    Returns:
        ``combine`` returns the plain sum of the task losses (for logging); ``backward`` fills
        the gradients; ``current_weights`` the aggregator's weights of the last step per task
        (empty for aggregators that do not combine rows linearly: graddrop, config).

    References:
        Quinton & Rey (2024), "Jacobian Descent for Multi-Objective Optimization"; the paper of
        each aggregator is cited in its TorchJD docstring.
    """

    reads_task_gradients = True  # per-task gradients of the shared parameters

    def __init__(self, task_names: Sequence[str], *, aggregator: str = "upgrad",
                 aggregator_params: dict[str, Any] = {},
                 parallel_chunk_size: int | None = None) -> None:
        super().__init__(task_names)
        try:
            import torchjd.aggregation as aggregation
            from torchjd import Stateful
        except ImportError as error:
            raise ValueError(_MISSING_TORCHJD) from error
        if aggregator not in _AGGREGATORS:
            raise ValueError(f"'aggregator' of JacobianWeighting must be one of: "
                             f"{', '.join(sorted(_AGGREGATORS))}, got {aggregator!r}")
        if parallel_chunk_size is not None and parallel_chunk_size < 1:
            raise ValueError(f"'parallel_chunk_size' of JacobianWeighting must be None or >= 1, "
                             f"got {parallel_chunk_size}")
        class_name, defaults = _AGGREGATORS[aggregator]
        cls = getattr(aggregation, class_name)
        params = dict(defaults)
        if aggregator == "nash_mtl":
            params["n_tasks"] = len(self.task_names)
        params.update({key: torch.tensor(value, dtype=torch.float32)
                       if isinstance(value, (list, tuple)) else value
                       for key, value in aggregator_params.items()})
        accepted = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
        unknown = sorted(set(aggregator_params) - set(accepted))
        if unknown:
            raise ValueError(f"'aggregator_params.{unknown[0]}' is not a parameter of aggregator "
                             f"{aggregator!r} ({class_name}); valid keys: {', '.join(accepted) or '(none)'}")
        try:
            self.aggregator = cls(**params)
        except TypeError as error:  # e.g. a required argument missing or of the wrong kind
            raise ValueError(f"'aggregator_params' of aggregator {aggregator!r} ({class_name}): "
                             f"{error}; given keys: {', '.join(sorted(aggregator_params)) or '(none)'}") from error
        except ImportError as error:  # the aggregator's own optional solvers
            raise ValueError(f"aggregator {aggregator!r} of weighting 'jacobian' needs optional "
                             f"packages: {error}") from error
        except ValueError as error:
            raise ValueError(f"'aggregator_params' of aggregator {aggregator!r}: {error}") from error
        self.aggregator_name = aggregator
        self.parallel_chunk_size = parallel_chunk_size
        self._weighted = isinstance(self.aggregator, aggregation.WeightedAggregator)
        self._stateful = isinstance(self.aggregator, Stateful)
        self._last_rows: list[str] | None = None
        self._last_weights: dict[str, float] = {}

    def combine(self, task_losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(task_losses.values())

    def backward(self, task_losses: dict[str, torch.Tensor], extra_loss: torch.Tensor | None,
                 model: "SharingMethod") -> None:
        from torchjd.autojac import jac_to_grad

        names = [name for name in model.task_names if name in task_losses]  # rows: model order
        losses = [task_losses[name] for name in names]
        total = torch.stack(losses).sum()
        has_extra = extra_loss is not None and extra_loss.requires_grad
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        if len(losses) == 1 or not shared:  # one row: its aggregation is the row itself
            (total + extra_loss if has_extra else total).backward()
            self._last_weights = {names[0]: 1.0} if self._weighted and len(names) == 1 else {}
            return

        shared_ids = {id(p) for p in shared}
        others = [p for p in model.parameters() if p.requires_grad and id(p) not in shared_ids]
        self._sync_state(names)
        try:
            self._jacobian(losses, shared)  # .jac of each shared parameter: (k, *shape)
            weights = jac_to_grad(shared, self.aggregator)  # .grad += aggregation; weights (k,)
        finally:
            _free_jacs(shared)  # never leave a .jac behind: the next step would add to it
        self._last_weights = ({name: float(w) for name, w in zip(names, weights.tolist())}
                              if weights is not None else {})
        if others:
            torch.autograd.backward(total, inputs=others, retain_graph=has_extra)
        if has_extra:
            extra_loss.backward()

    def _jacobian(self, losses: list[torch.Tensor], shared: list[torch.nn.Parameter]) -> None:
        from torchjd.autojac import backward

        try:
            backward(losses, inputs=shared, retain_graph=True,
                     parallel_chunk_size=self.parallel_chunk_size)
        except RuntimeError as error:
            if self.parallel_chunk_size == 1:
                raise
            # vmap cannot batch some backward kernels (cuDNN RNNs): one row at a time instead
            warnings.warn(f"weighting 'jacobian': batched Jacobian failed ({error}); "
                          "using parallel_chunk_size=1 from now on", RuntimeWarning, stacklevel=3)
            _free_jacs(shared)
            self.parallel_chunk_size = 1
            backward(losses, inputs=shared, retain_graph=True, parallel_chunk_size=1)

    def _sync_state(self, names: list[str]) -> None:
        """Reset a stateful aggregator when the tasks (rows) of the step change."""
        if self._stateful and names != self._last_rows:
            if hasattr(self.aggregator, "n_tasks"):  # Nash-MTL sizes its state by the rows
                self.aggregator.n_tasks = len(names)
            self.aggregator.reset()
        self._last_rows = names

    def current_weights(self) -> dict[str, float]:
        return dict(self._last_weights)


def _free_jacs(parameters: list[torch.nn.Parameter]) -> None:
    for p in parameters:
        if hasattr(p, "jac"):
            del p.jac
