"""The golden vectors of docs/FORMAT.md: the writer produces them, the reader reads them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import load_bytes

from persist_db import _snapshot, save
from strata_testkit import MemoryFS

FORMAT_MD = Path(__file__).parent.parent / "docs" / "FORMAT.md"
CREATED_NS = 1_700_000_000_000_000_000


def vectors() -> list[bytes]:
    blocks = re.findall(r"```hex\n(.*?)```", FORMAT_MD.read_text(), flags=re.S)
    return [bytes.fromhex(block) for block in blocks]


def test_format_md_holds_four_vectors() -> None:
    assert [len(v) for v in vectors()] == [80, 100, 102, 116]


@pytest.mark.parametrize(
    ("index", "payload", "kind", "version", "meta", "compression"),
    [
        (0, b"", "test", 1, None, None),
        (1, b"hello, strata", "demo", 2, {"n": 1}, None),
        (2, b"hello, strata", "demo", 2, None, "zstd"),
        (3, b"hello, strata", "demo", 2, None, "lz4"),
    ],
)
def test_golden_vector(
    monkeypatch: pytest.MonkeyPatch,
    index: int,
    payload: bytes,
    kind: str,
    version: int,
    meta: object,
    compression: str | None,
) -> None:
    golden = vectors()[index]
    snap = load_bytes(golden)
    assert (snap.payload, snap.kind, snap.version, snap.meta) == (payload, kind, version, meta)
    assert snap.info.created_ns == CREATED_NS and snap.info.compression == compression
    if compression is None:  # byte-exact writer output
        monkeypatch.setattr(_snapshot.time, "time_ns", lambda: CREATED_NS)
        fs = MemoryFS()
        save("g", payload, kind=kind, version=version, meta=meta, fs=fs)
        assert fs.files()["g"] == golden
