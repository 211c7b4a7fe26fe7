"""Sharing methods: how tasks share parameters. One file per method, registered here."""

from ..registry import Registry
from .base import SharingMethod, TaskSpec

SHARING: Registry[SharingMethod] = Registry("sharing")

from . import (  # noqa: E402,F401  (registration side effects)
    asp_mtl,
    cluster_layers,
    cross_stitch,
    entropy_minimization,
    fully_adaptive,
    generalized_recurrent,
    hard,
    low_supervision,
    pooled,
    single_task,
    sluice,
    soft,
)

__all__ = ["SHARING", "SharingMethod", "TaskSpec"]
