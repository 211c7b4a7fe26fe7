"""Reuters newswire topics, Keras version: 46 classes, text as decoded word indices.

``reuters.npz`` holds ``x`` (one list of word indices per article; index i is the word w with
``word_index[w] == i``) and ``y`` (0-45). The train/test split is the one of Keras
``reuters.load_data()`` with its defaults: shuffle with ``np.random.RandomState(113)``, then the
first 80% is train (8,982) and the rest test (2,246). Keras then prepends ``start_char=1`` and
adds ``index_from=3`` to each index; decoding those with ``word_index[w] + 3`` is the same as
decoding the raw indices with ``word_index[w]``, which is what is done here (no start marker
in the text). The original article text is not available; words are lower-cased without
punctuation. Dev is a seeded, stratified ``dev_fraction`` of train.

References:
    Lewis (1997), Reuters-21578; Chollet et al., Keras (``keras.datasets.reuters``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..datasets import DATASETS
from ..tasks import Split, Task
from . import check_fraction, read_bytes, seeded_split

#: ``keras.datasets.reuters.get_label_names()``, indices 0-45.
LABELS = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
)

_SEED = 113  # Keras load_data's default seed
_TEST_SPLIT = 0.2  # Keras load_data's default test_split


def keras_split(xs: np.ndarray, labels: np.ndarray) -> tuple[tuple, tuple]:
    """The (x_train, y_train), (x_test, y_test) order of Keras ``reuters.load_data()``.

    Keras seeds a fresh generator with 113 for xs and again for labels, so both receive the
    same permutation.

    Args:
        xs: the raw ``x`` array of ``reuters.npz``.
        labels: its ``y``.

    Returns:
        ((x_train, y_train), (x_test, y_test)).
    """
    xs, labels = xs.copy(), labels.copy()
    np.random.RandomState(_SEED).shuffle(xs)
    np.random.RandomState(_SEED).shuffle(labels)
    cut = int(len(xs) * (1 - _TEST_SPLIT))
    return (xs[:cut], labels[:cut]), (xs[cut:], labels[cut:])


@DATASETS.register("reuters")
def load_reuters(root: Path, *, dev_fraction: float = 0.1, seed: int = 0) -> list[Task]:
    """Reuters (Keras) as one 46-way topic task ``reuters``.

    Args:
        root: the ``reuters-keras`` folder.
        dev_fraction: share of the Keras train split held out as dev (stratified, seeded).
        seed: seed of the dev selection.

    Returns:
        One task; with the defaults 8,084 / 898 / 2,246 examples.
    """
    check_fraction(dev_fraction, "dev_fraction", "reuters")
    npz_path, index_path = root / "reuters.npz", root / "reuters_word_index.json"
    try:
        with np.load(npz_path, allow_pickle=True) as archive:  # x is an object array of lists
            xs, labels = archive["x"], archive["y"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(f"{npz_path}: expected a .npz with arrays 'x' and 'y' ({error})") from error
    try:
        word_index = json.loads(read_bytes(index_path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{index_path}: expected a JSON object word -> index ({error})") from error
    words = {index: word for word, index in word_index.items()}

    def decode(indices) -> str:
        return " ".join(words.get(int(i), "?") for i in indices)  # "?" as Keras examples do

    (x_train, y_train), (x_test, y_test) = keras_split(xs, labels)
    full = Split([decode(x) for x in x_train], [int(y) for y in y_train])
    test = Split([decode(x) for x in x_test], [int(y) for y in y_test])
    train, dev = seeded_split(full, dev_fraction, seed, str(npz_path))
    return [Task("reuters", LABELS, train, dev, test, source=str(root))]
