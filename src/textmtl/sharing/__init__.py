"""Sharing methods: how tasks share parameters. One file per method, registered here."""

from ..registry import Registry
from .base import SharingMethod, TaskSpec

SHARING: Registry[SharingMethod] = Registry("sharing")

from . import single_task, hard, cross_stitch  # noqa: E402,F401  (registration side effects)

__all__ = ["SHARING", "SharingMethod", "TaskSpec"]
