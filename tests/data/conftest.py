"""Fixtures of the dataset tests: the real data dir (or a skip) and parsed-once corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``$TEXTMTL_DATA_DIR``; tests that need the real data skip without it."""
    value = os.environ.get("TEXTMTL_DATA_DIR")
    if not value:
        pytest.skip("TEXTMTL_DATA_DIR not set: the built-in dataset checks need the real data "
                    "(e.g. TEXTMTL_DATA_DIR=../shared/data)")
    return Path(value)


@pytest.fixture(scope="session")
def newsgroups_documents(real_data_dir):
    """The 20NG archive parsed once per session (the slow part of this folder)."""
    from textmtl.data.corpora.newsgroups import load_newsgroup_documents

    return load_newsgroup_documents(real_data_dir / "20newsgroups")
