"""Every config in configs/ parses (schema, registries, method entries): a typo in a shipped
config fails here, not an hour into its run."""

from __future__ import annotations

from pathlib import Path

import pytest

from textmtl.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_parses(path):
    config = load_config(path)
    assert config.name and config.methods and config.seeds
