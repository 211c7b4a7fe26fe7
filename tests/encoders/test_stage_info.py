"""Named stages over every registered encoder: ``stage_info`` describes what each stage really
outputs, ``stage_parameters`` partitions the parameters, ``pool`` pools token-level stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textmtl.encoders import ENCODERS
from textmtl.encoders.base import LEVEL_DIMS, StageInfo
from textmtl.encoders.layers import length_mask

from core.helpers import ENCODER_NAMES, TINY_ENCODER_PARAMS, featurized

#: every registered encoder with its tiny config, plus the token-level BiLSTM (tagging)
CONFIGS = [(name, TINY_ENCODER_PARAMS.get(name, {})) for name in ENCODER_NAMES] + [
    ("bilstm", {**TINY_ENCODER_PARAMS["bilstm"], "pooling": "none", "num_layers": 2}),
    ("bilstm", {**TINY_ENCODER_PARAMS["bilstm"], "pooling": "attention"}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CONFIGS)]


@pytest.fixture(scope="module")
def data_by_kind(synthetic_tasks):
    """Featurized synthetic tasks, one per input kind (encoders of a kind share them)."""
    data = {}
    for name in ENCODER_NAMES:
        kind = ENCODERS.get(name).input_kind
        if kind not in data:
            data[kind] = featurized(synthetic_tasks, name)
    return data


def _build(name: str, params: dict, data):
    torch.manual_seed(0)
    return ENCODERS.build(name, data.spec, params=dict(params)).eval()


def _inputs(data, rows=range(6)):
    return data.tables["train"].gather(np.asarray(list(rows)))


def _data(name, data_by_kind):
    return data_by_kind[ENCODERS.get(name).input_kind]


@pytest.mark.parametrize("name,params", CONFIGS, ids=IDS)
def test_stage_outputs_match_stage_info(name, params, data_by_kind):
    data = _data(name, data_by_kind)
    encoder = _build(name, params, data)
    inputs = _inputs(data)
    infos = encoder.stage_info()
    # at least one stage; the identity (`linear`) has exactly one, every other encoder several
    assert encoder.num_stages == len(infos) >= 1
    assert all(isinstance(info, StageInfo) for info in infos)
    assert len({info.name for info in infos}) == len(infos), "stage names are unique"
    hidden = None
    with torch.no_grad():
        for index, info in enumerate(infos):
            hidden = encoder.run_stage(index, hidden, inputs)
            assert hidden.shape[0] == inputs.batch_size, info  # batch first
            assert hidden.shape[-1] == info.width, info
            assert hidden.dim() == LEVEL_DIMS[info.level], info
            if info.level == "token":  # aligned with the input tokens
                assert tuple(hidden.shape[:2]) == tuple(inputs.token_ids.shape), info
    # an embedding only reads the inputs (stage 0; the MLP's first stage is a dense layer);
    # a pooling stage is one that changes the level, a layer keeps it
    assert all(info.kind != "embedding" for info in infos[1:])
    for before, info in zip(infos, infos[1:]):
        assert (info.kind == "pooling") == (info.level != before.level), info
    assert infos[-1].width == encoder.output_dim
    assert encoder.token_level == (infos[-1].level == "token")
    assert encoder.token_level == (params.get("pooling") == "none")


@pytest.mark.parametrize("name,params", CONFIGS, ids=IDS)
def test_stage_parameters_partition_the_parameters(name, params, data_by_kind):
    encoder = _build(name, params, _data(name, data_by_kind))
    seen: list[int] = []
    for index in range(encoder.num_stages):
        parameters = encoder.stage_parameters(index)
        assert all(isinstance(p, torch.nn.Parameter) for p in parameters)
        seen += [id(p) for p in parameters]
    assert len(seen) == len(set(seen)), "a parameter belongs to two stages"
    assert set(seen) == {id(p) for p in encoder.parameters()}
    with pytest.raises(IndexError):
        encoder.stage_parameters(encoder.num_stages)


def test_bilstm_stage_parameters_follow_the_layers(data_by_kind):
    encoder = _build("bilstm", {**TINY_ENCODER_PARAMS["bilstm"], "num_layers": 2},
                     data_by_kind["tokens"])
    assert [info.name for info in encoder.stage_info()] == [
        "embedding", "bilstm_1", "bilstm_2", "max_pooling"]
    assert encoder.stage_parameters(0) == [encoder.embedding.weight]
    assert {id(p) for p in encoder.stage_parameters(2)} == \
        {id(p) for p in encoder.layers[1].parameters()}
    assert encoder.stage_parameters(3) == []


def _masked_max(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reference: max over the first ``lengths[b]`` positions of each row, row by row."""
    return torch.stack([hidden[b, : int(n)].max(dim=0).values for b, n in enumerate(lengths)])


def test_pool_is_masked_max_and_padding_invariant(data_by_kind):
    data = data_by_kind["tokens"]
    encoder = _build("bilstm", {**TINY_ENCODER_PARAMS["bilstm"], "pooling": "none"}, data)
    lengths = data.tables["train"].lengths
    short, long = int(np.argmin(lengths)), int(np.argmax(lengths))
    assert lengths[short] < lengths[long]
    with torch.no_grad():
        for index in range(encoder.num_stages):
            inputs = _inputs(data, [short, long, 3, 4])
            hidden = None
            for i in range(index + 1):
                hidden = encoder.run_stage(i, hidden, inputs)  # (B, T, D)
            pooled = encoder.pool(hidden, inputs)  # (B, D)
            torch.testing.assert_close(pooled, _masked_max(hidden, inputs.lengths))
            # the short row alone (no padding) pools like it does padded to the long row
            alone = _inputs(data, [short])
            hidden_alone = None
            for i in range(index + 1):
                hidden_alone = encoder.run_stage(i, hidden_alone, alone)
            torch.testing.assert_close(encoder.pool(hidden_alone, alone)[0], pooled[0],
                                       atol=1e-6, rtol=1e-5)
            for pooling in ("mean", "last"):
                torch.testing.assert_close(encoder.pool(hidden_alone, alone, pooling)[0],
                                           encoder.pool(hidden, inputs, pooling)[0],
                                           atol=1e-6, rtol=1e-5)
    # mean over real tokens only
    mask = length_mask(inputs.lengths, hidden.shape[1])[:, :, None]
    torch.testing.assert_close(encoder.pool(hidden, inputs, "mean"),
                               (hidden * mask).sum(1) / inputs.lengths[:, None])


@pytest.mark.parametrize("name,params", CONFIGS, ids=IDS)
def test_pool_rejects_non_token_levels(name, params, data_by_kind):
    data = _data(name, data_by_kind)
    encoder = _build(name, params, data)
    inputs = _inputs(data)
    with torch.no_grad():
        output = encoder(inputs)
    if encoder.token_level:
        assert encoder.pool(output, inputs).shape == (inputs.batch_size, output.shape[-1])
    else:
        with pytest.raises(ValueError, match=type(encoder).__name__):
            encoder.pool(output, inputs)
    with pytest.raises(ValueError, match="'pooling'"):
        encoder.pool(output, inputs, pooling="attention")
