"""textmtl: multi-task learning for text.

Public API: load tasks, pick an encoder, a sharing method, a loss weighting and a task sampler,
train, and compare with single-task training.
"""

__version__ = "0.1.0"
