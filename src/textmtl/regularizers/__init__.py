"""Regularisers over the aligned task parameter matrices (K x P). One file per penalty.

A sharing method nests them in its config and adds ``penalty(model)`` to its extra losses;
non-smooth ones in ``mode: proximal`` are applied by a proximal step after each optimiser step
instead (see :mod:`textmtl.regularizers.base`).
"""

from ..registry import Registry
from .base import Regularizer, aligned_task_parameters

# base=Regularizer: arguments annotated Regularizer (e.g. a sharing method's `regularizers`)
# are built from their configs by this registry
REGULARIZERS: Registry[Regularizer] = Registry("regularizer", base=Regularizer)

from . import (cluster_norm, dirty_model, group_lasso, l1_linf, l2_to_mean,  # noqa: E402,F401
               mean_regularized, subspace_orthogonality, task_covariance,  # (registration
               tensor_trace_norm, trace_norm)  # side effects)

__all__ = ["REGULARIZERS", "Regularizer", "aligned_task_parameters"]
