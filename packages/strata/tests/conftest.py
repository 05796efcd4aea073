"""Shared fixtures for the strata tests: a memory database and a directory database,
each closed at teardown. Keep this file generic; test-specific fixtures live in the tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

import strata

# No per-example deadline: on a loaded 2-core CI machine a slow example is not a failure
# (Hypothesis reports a deadline it cannot reproduce as Flaky).
hypothesis.settings.register_profile("ci", deadline=None, print_blob=True)
hypothesis.settings.load_profile("ci")

# Test helpers (isolation_checker, ...) live beside the tests and are imported by name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def db() -> Iterator[strata.Database]:
    """A ``cache``-mode database (``strata.open_memory()``)."""
    database = strata.open_memory()
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def disk_db(tmp_path: Path) -> Iterator[strata.Database]:
    """A ``standard``-mode database in ``tmp_path / "db"``."""
    database = strata.open(tmp_path / "db")
    try:
        yield database
    finally:
        database.close()
