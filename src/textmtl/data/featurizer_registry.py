"""The featurizer registry, alone in a leaf module so its members can import each other.

Look featurizers up through :mod:`textmtl.data.features`, which also imports (registers) them.
"""

from ..registry import Registry

FEATURIZERS: Registry = Registry("featurizer")
