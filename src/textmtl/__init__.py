"""textmtl: multi-task learning for text.

Public API: load tasks, pick an encoder, a sharing method, a loss weighting and a task sampler,
train, compare with single-task training, and use a trained model:

    model = textmtl.load("runs/fdu_mtl_tfidf_mlp-.../hard/seed-1")
    model.predict("books", ["a gripping story", "fell apart after a week"])
"""

__version__ = "0.1.0"


def load(run_dir, method=None, seed=None, task=None, device="auto"):
    """Read a trained model from a run folder (see :func:`textmtl.model.load`)."""
    from .model import load as _load

    return _load(run_dir, method=method, seed=seed, task=task, device=device)


__all__ = ["__version__", "load"]
