"""The documented surface and the real one agree."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import page_db

API_DOC = (Path(__file__).resolve().parents[1] / "docs" / "API.md").read_text()


def test_every_public_name_is_documented() -> None:
    missing = [name for name in page_db.__all__ if name not in API_DOC]
    assert not missing, f"not in docs/API.md: {missing}"


def test_every_public_name_exists() -> None:
    for name in page_db.__all__:
        assert hasattr(page_db, name), name


def test_version_matches_distribution_metadata() -> None:
    assert page_db.__version__ == importlib.metadata.version("page-db") == "1.5.0"
