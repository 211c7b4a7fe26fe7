"""Small configs that make every registered encoder fast enough for property tests."""

from __future__ import annotations

import importlib.util

import numpy as np

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.data.tasks import Task
from textmtl.encoders import ENCODERS

# keep dropout at 0: the properties compare outputs exactly
TINY_ENCODER_PARAMS = {
    "mlp": {"hidden_dims": [8, 6]},
    # an even hidden_dim: sluice networks split each direction's units into two subspaces
    "bilstm": {"embedding_dim": 8, "hidden_dim": 6},
    "textcnn": {"embedding_dim": 8, "filter_widths": [2, 3], "num_filters": 4, "dropout": 0.0},
    "minilm": {"num_layers": 1},
    "vector_mlp": {"hidden_dims": [8, 6]},
    "han": {"embedding_dim": 8, "word_hidden_dim": 4, "sentence_hidden_dim": 4,
            "word_attention_dim": 6, "sentence_attention_dim": 6},
}
#: sharing methods that build layers of their own (not from the encoder) get small ones here
TINY_SHARING_PARAMS = {
    "generalized_recurrent": {"embedding_dim": 8, "hidden_dim": 6},
}
TINY_FEATURE_PARAMS = {"tfidf": {"max_features": 200, "min_df": 1}, "tokens": {}, "sentences": {},
                       "wordpiece": {"max_length": 64},
                       # one transformer layer keeps encoding quick; no cache files from tests
                       "vector": {"num_layers": 1, "max_length": 64, "cache": False}}


def encoder_available(name: str) -> bool:
    """False when the encoder needs an optional package that is not installed (e.g. minilm)."""
    package = getattr(ENCODERS.get(name), "optional_package", None)
    return package is None or importlib.util.find_spec(package) is not None


#: registered encoders whose optional packages are installed
ENCODER_NAMES = [name for name in ENCODERS.names() if encoder_available(name)]


def featurized(tasks, encoder_name: str) -> MultiTaskData:
    kind = ENCODERS.get(encoder_name).input_kind
    return MultiTaskData.build(tasks, FEATURIZERS.build(kind, params=TINY_FEATURE_PARAMS.get(kind, {})))


def with_unlabelled(task: Task, seed: int, count: int = 12) -> Task:
    """The task with ``count`` unlabelled texts (its own training texts shuffled, labels dropped)."""
    rng = np.random.default_rng(seed)
    texts = [task.train.texts[i] for i in rng.permutation(len(task.train.texts))[:count]]
    return Task(task.name, task.labels, task.train, task.dev, task.test, unlabeled=texts)


def load_script(name: str):
    """A script of ``scripts/`` (not a package) imported as a module, for its tests."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
