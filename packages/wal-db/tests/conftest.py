"""Shared helpers for wal-db's tests."""

from __future__ import annotations

import os
from pathlib import Path

import hypothesis
import pytest

from wal_db import WriteAheadLog

# No per-example deadline: on a loaded 2-core CI machine a slow example is not a failure
# (Hypothesis reports a deadline it cannot reproduce as Flaky).
hypothesis.settings.register_profile("ci", deadline=None, print_blob=True)
hypothesis.settings.load_profile("ci")


def payload(lsn: int, size: int | None = None) -> bytes:
    """A deterministic payload that names its LSN (so a misplaced record is caught)."""
    size = (lsn * 7) % 50 if size is None else size
    body = f"record-{lsn}:".encode()
    return (body * (size // len(body) + 1))[: max(size, len(body))]


def records(log: WriteAheadLog, from_lsn: int | None = None) -> list[tuple[int, bytes]]:
    return list(log.replay(from_lsn))


def segment_files(path: Path) -> list[str]:
    return sorted(name for name in os.listdir(path) if name.endswith(".wal"))


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    return tmp_path / "log"
