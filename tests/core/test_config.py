"""Experiment configs: dotted overrides, the to_dict/parse round trip, schema errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from textmtl.config import ComponentConfig, ExperimentConfig, apply_override, load_config, parse_config
from textmtl.data.samplers import SAMPLERS
from textmtl.encoders import ENCODERS
from textmtl.errors import ConfigError
from textmtl.sharing import SHARING
from textmtl.training.config import TrainingConfig
from textmtl.weighting import WEIGHTINGS

ROOT = Path(__file__).resolve().parents[2]
MAIN_CONFIG = ROOT / "configs" / "fdu_mtl_tfidf_mlp.yaml"


def base_raw() -> dict:
    return {
        "name": "demo",
        "data": {"user_files": {"path": "a.csv"}},
        "encoder": {"name": "mlp", "hidden_dims": [8]},
        "methods": ["single_task", "hard", {"name": "cross_stitch", "self_weight": 0.9}],
        "sampler": "every_task",
        "training": {"lr": 0.01},
    }


# ---------------------------------------------------------------- apply_override

def test_override_nested_key_keeps_siblings():
    raw = base_raw()
    apply_override(raw, "training.max_epochs=7")
    assert raw["training"] == {"lr": 0.01, "max_epochs": 7}
    assert parse_config(raw).training.max_epochs == 7


def test_override_creates_missing_sections():
    raw = base_raw()
    apply_override(raw, "features.max_features=500")
    apply_override(raw, "reference.source=paper")
    assert raw["features"] == {"max_features": 500}
    assert parse_config(raw).reference.source == "paper"


def test_override_list_index():
    raw = base_raw()
    apply_override(raw, "methods.2.self_weight=0.8")
    assert raw["methods"][2] == {"name": "cross_stitch", "self_weight": 0.8}
    assert parse_config(raw).methods[2].params == {"self_weight": 0.8}


def test_override_replaces_list_item_and_whole_list():
    raw = base_raw()
    apply_override(raw, "methods.0=cross_stitch")
    assert raw["methods"][0] == "cross_stitch"
    with pytest.raises(ConfigError, match="two entries named 'cross_stitch'; give one a 'label'"):
        parse_config(raw)  # two columns of one name would make an ambiguous table
    apply_override(raw, "methods.0.label=stitch_again")
    apply_override(raw, "seeds=[4, 5]")
    config = parse_config(raw)
    assert config.seeds == [4, 5] and [m.title for m in config.methods][0] == "stitch_again"


def test_override_component_given_by_name_gains_params():
    raw = base_raw()
    apply_override(raw, "sampler.temperature=3")  # 'sampler: every_task' is a plain name ...
    assert raw["sampler"] == {"name": "every_task", "temperature": 3}
    with pytest.raises(ConfigError, match="sampler.temperature"):
        parse_config(raw)  # ... every_task has no temperature: the schema still applies
    raw = base_raw()
    apply_override(raw, "sampler=temperature")
    apply_override(raw, "sampler.temperature=3")
    config = parse_config(raw)
    assert config.sampler == ComponentConfig("temperature", {"temperature": 3})


def test_override_list_item_given_by_name_gains_params():
    raw = base_raw()
    raw["methods"] = ["single_task", "cross_stitch"]
    apply_override(raw, "methods.1.self_weight=0.8")
    assert raw["methods"][1] == {"name": "cross_stitch", "self_weight": 0.8}
    method = parse_config(raw).methods[1]
    assert (method.name, method.params) == ("cross_stitch", {"self_weight": 0.8})


@pytest.mark.parametrize("text,expected", [
    ("0.5", 0.5), ("3", 3), ("true", True), ("null", None), ("[1, 2]", [1, 2]),
    ("{a: 1}", {"a": 1}), ("books", "books"), ("'3'", "3"), ("1e-3", "1e-3"), ("1.0e-3", 0.001),
    ("a=b", "a=b"),
])
def test_override_values_are_yaml(text, expected):
    raw = {}
    apply_override(raw, f"x={text}")
    assert raw["x"] == expected and type(raw["x"]) is type(expected)


def test_override_yaml_list_into_dataset_option():
    raw = base_raw()
    raw["data"] = {"fdu_mtl": {"dev_size": 200}}
    apply_override(raw, "data.fdu_mtl.domains=[books, dvd]")
    assert raw["data"]["fdu_mtl"] == {"dev_size": 200, "domains": ["books", "dvd"]}
    assert parse_config(raw).data["fdu_mtl"]["domains"] == ["books", "dvd"]


@pytest.mark.parametrize("assignment,match", [
    ("training", "key=value"),
    ("methods.3.self_weight=1", "list index below 3"),
    ("methods.x.self_weight=1", "list index below 3"),
    ("methods.9=hard", "list index below 3"),
    ("training.lr.value=1", "not a mapping or list"),
    ("training.lr=[1", "not valid YAML"),
])
def test_override_errors(assignment, match):
    raw = base_raw()
    before = copy.deepcopy(raw)
    with pytest.raises(ConfigError, match=match):
        apply_override(raw, assignment)
    if "YAML" in match or "key=value" in match:
        assert raw == before


def test_load_config_applies_overrides_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_raw()))
    config = load_config(path, ["training.lr=0.5", "training.lr=0.25", "methods.2.self_weight=1.0"])
    assert config.training.lr == 0.25
    assert config.methods[2].params == {"self_weight": 1.0}


# ---------------------------------------------------------------- round trip

def assert_round_trip(config: ExperimentConfig) -> None:
    again = parse_config(config.to_dict())
    assert again == config
    # and through YAML text, as the run folder stores it
    assert parse_config(yaml.safe_load(yaml.safe_dump(config.to_dict(), sort_keys=False))) == config


def test_round_trip_small():
    raw = base_raw()
    raw.update(weighting={"name": "uncertainty", "initial_log_variance": 0.5},
               sampler={"name": "temperature", "temperature": 2.5}, seeds=[3, 4],
               baselines=["logreg_per_task"], features={"max_features": 100, "min_df": 1},
               reference={"source": "x", "average": 80.0, "per_task": {"a": 81.0}})
    config = parse_config(raw)
    assert_round_trip(config)
    assert config.weighting == ComponentConfig("uncertainty", {"initial_log_variance": 0.5})
    assert config.training == TrainingConfig(lr=0.01)


def test_round_trip_main_config():
    config = load_config(MAIN_CONFIG)
    assert_round_trip(config)
    assert [m.name for m in config.methods] == ["single_task", "hard", "cross_stitch"]
    assert config.reference.average == 86.1 and len(config.reference.per_task) == 16


def test_defaults_fill_in():
    config = parse_config({k: v for k, v in base_raw().items() if k not in ("sampler", "training")})
    assert config.sampler == ComponentConfig("every_task")
    assert config.weighting == ComponentConfig("fixed")
    assert config.training == TrainingConfig()
    assert config.seeds == [1, 2, 3]
    assert config.reference is None


# ---------------------------------------------------------------- schema errors

@pytest.mark.parametrize("registry,section", [
    (ENCODERS, "encoder"), (SHARING, "methods"), (WEIGHTINGS, "weighting"), (SAMPLERS, "sampler"),
])
def test_registry_rejects_unknown_keys_listing_valid_keys(registry, section):
    for name in registry.names():
        valid = sorted(p.name for p in registry.parameters(name))
        with pytest.raises(ConfigError) as info:
            registry.validate(name, {"no_such_option": 1}, section)
        message = str(info.value)
        assert f"'{section}.no_such_option'" in message and repr(name) in message
        assert message.endswith("valid keys: " + (", ".join(valid) or "(none)")), message


def test_unknown_key_in_component_section_through_parse():
    raw = base_raw()
    raw["methods"][2]["selfweight"] = 0.5
    with pytest.raises(ConfigError, match=r"'methods\.2\.selfweight' for sharing 'cross_stitch'; "
                                          r"valid keys: alpha_lr_scale, head_hidden, self_weight, shared_embedding"):
        parse_config(raw)


@pytest.mark.parametrize("patch,match", [
    ({"training": {"lr": "fast"}}, r"'training\.lr' must be float, got 'fast' \(str\)"),
    ({"training": {"max_epochs": 2.5}}, r"'training\.max_epochs' must be int"),
    ({"training": {"progress": "yes"}}, r"'training\.progress' must be bool"),
    ({"training": {"optimizer": "rmsprop"}}, r"'training\.optimizer'"),
    ({"training": {"lr": -1.0}}, r"'training\.lr' must be > 0 and finite, got -1\.0"),
    ({"training": {"batch_size": 0}}, r"'training\.batch_size' must be >= 1"),
    ({"training": {"lr_decay": 1.5}}, r"'training\.lr_decay' must be in \(0, 1\]"),
    ({"seeds": "one"}, r"'seeds' must be list\[int\], got 'one'"),
    ({"seeds": [1, "2"]}, r"'seeds' must be list\[int\]"),
    ({"seeds": []}, r"'seeds' must list at least one seed"),
    ({"methods": []}, r"'methods' must be a non-empty list"),
    ({"data": {}}, r"'data' must name at least one dataset"),
    ({"data": {"imagenet": {}}}, r"unknown dataset 'imagenet'"),
    ({"data": {"user_files": {"path": "a.csv", "sep": ";"}}}, r"'data\.user_files\.sep'.*valid keys"),
    ({"data": {"user_files": {}}}, r"needs 'data\.user_files\.path'"),
    ({"encoder": {"name": "mlp", "hidden_dims": 8}}, r"'encoder\.hidden_dims' of encoder 'mlp' must be list\[int\], got 8"),
    ({"encoder": {"hidden_dims": [8]}}, r"'encoder' must be a name or a mapping with a 'name' key"),
    ({"baselines": ["svm"]}, r"unknown baseline 'svm'"),
    ({"features": {"max_vocab": 10}}, r"'features\.max_vocab' for featurizer 'tfidf'"),
    ({"reference": {"average": 80.0}}, r"'reference' needs key 'source'"),
    ({"reference": {"source": "x", "avg": 1}}, r"unknown key 'reference\.avg'"),
    ({"colour": "blue"}, r"unknown key 'colour'; valid keys: name, data, encoder, methods"),
])
def test_parse_errors_name_key_expected_and_found(patch, match):
    raw = base_raw()
    raw.update(patch)
    with pytest.raises(ConfigError, match=match):
        parse_config(raw)


@pytest.mark.parametrize("missing", ["name", "data", "encoder", "methods"])
def test_missing_required_key(missing):
    raw = base_raw()
    del raw[missing]
    with pytest.raises(ConfigError, match=f"missing key '{missing}'"):
        parse_config(raw)


def test_error_messages_are_one_line():
    raw = base_raw()
    raw["training"] = {"lr": "multi\nline"}
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert "\n" not in str(info.value)


def test_load_config_prefixes_path(tmp_path):
    path = tmp_path / "exp.yaml"
    raw = base_raw()
    raw["encoder"]["hidden"] = 3
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and str(info.value).count(str(path)) == 1
