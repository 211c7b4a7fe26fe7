"""Loss weightings: how task losses are combined. One file per method, registered here."""

from ..registry import Registry
from .base import LossWeighting

WEIGHTINGS: Registry[LossWeighting] = Registry("weighting")

from . import dwa, fixed, gradnorm, jacobian, uncertainty  # noqa: E402,F401  (registration side effects)

__all__ = ["WEIGHTINGS", "LossWeighting"]
