"""The dataset registry: one loader per dataset, its options as its config schema.

A loader is ``load_x(root: Path, *, option=default, ...) -> list[Task]`` registered with
``@DATASETS.register("x")`` in ``corpora/x.py``; ``root`` is the dataset folder found by
:func:`textmtl.data.store.locate`. :func:`load_tasks` is what the config and the CLI call.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ..registry import Registry
from .store import Location, locate
from .tasks import SPLITS, Task

DATASETS: Registry = Registry("dataset")

# Explicit imports register the loaders (no folder scanning). They come after DATASETS exists
# because each corpora module imports it from here.
from .corpora import (  # noqa: E402,F401
    blitzer,
    conll2000,
    fdu_mtl,
    imdb,
    newsgroups,
    reuters,
    sst,
    trec,
    user_files,
)


def load_tasks(name: str, params: dict[str, Any] | None = None,
               data_dir: str | os.PathLike | None = None,
               on_found: Callable[[str, Location], None] | None = None) -> list[Task]:
    """Load the tasks of one dataset.

    Args:
        name: registry name (``"fdu_mtl"``, ``"trec"``, ...).
        params: the loader's options (config ``data.<name>``); validated against its signature.
        data_dir: explicit data dir (CLI ``--data-dir``), searched before ``TEXTMTL_DATA_DIR``
            and the cache.
        on_found: called with the name and the :class:`Location` once the data is found
            (``textmtl run`` logs where each dataset came from).

    Returns:
        The dataset's tasks, each with fixed train/dev/test splits.

    Raises:
        ConfigError: unknown dataset, unknown or mistyped option.
        DataError: data missing or malformed.
    """
    params = dict(params or {})
    loader = DATASETS.get(name)
    DATASETS.validate(name, params, where=f"data.{name}")
    location = locate(name, data_dir)
    if on_found is not None:
        on_found(name, location)
    return loader(location.path, **params)


def dataset_summary(name: str, data_dir: str | os.PathLike | None = None,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``textmtl datasets`` prints about one dataset.

    Args:
        name: registry name.
        data_dir: explicit data dir, as for :func:`load_tasks`.
        params: loader options (needed for ``user_files``: its ``path``).

    Returns:
        ``{"name", "path", "origin", "tasks": [{"name", "kind", "sizes": {split: n},
        "labels": [...], "label_counts": {split: {label: n}}, "unlabeled": n | None}]}``;
        ``origin`` says where the data was found (see :class:`textmtl.data.store.Location`).
    """
    params = dict(params or {})
    DATASETS.validate(name, params, where=f"data.{name}")
    location = locate(name, data_dir)
    tasks = DATASETS.get(name)(location.path, **params)
    return {
        "name": name,
        "path": str(location.path),
        "origin": location.origin,
        "tasks": [
            {
                "name": task.name,
                "kind": task.kind,
                "sizes": task.sizes(),
                "labels": list(task.labels),
                "label_counts": {s: task.label_counts(s) for s in SPLITS},
                "unlabeled": None if task.unlabeled is None else len(task.unlabeled),
            }
            for task in tasks
        ],
    }


__all__ = ["DATASETS", "dataset_summary", "load_tasks"]
