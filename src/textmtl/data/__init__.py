"""Data layer: tasks, dataset loaders, featurizers, samplers."""

from .tasks import Split, Task

__all__ = ["Split", "Task"]
