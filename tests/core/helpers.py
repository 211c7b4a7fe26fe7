"""Small configs that make every registered encoder fast enough for property tests."""

from __future__ import annotations

from textmtl.data.batching import MultiTaskData
from textmtl.data.features import FEATURIZERS
from textmtl.encoders import ENCODERS

# keep dropout at 0: the properties compare outputs exactly
TINY_ENCODER_PARAMS = {
    "mlp": {"hidden_dims": [8, 6]},
    "bilstm": {"embedding_dim": 8, "hidden_dim": 5},
    "textcnn": {"embedding_dim": 8, "filter_widths": [2, 3], "num_filters": 4, "dropout": 0.0},
    "han": {"embedding_dim": 8, "word_hidden_dim": 4, "sentence_hidden_dim": 4,
            "word_attention_dim": 6, "sentence_attention_dim": 6},
}
TINY_FEATURE_PARAMS = {"tfidf": {"max_features": 200, "min_df": 1}, "tokens": {}, "sentences": {}}


def featurized(tasks, encoder_name: str) -> MultiTaskData:
    kind = ENCODERS.get(encoder_name).input_kind
    return MultiTaskData.build(tasks, FEATURIZERS.build(kind, params=TINY_FEATURE_PARAMS.get(kind, {})))
