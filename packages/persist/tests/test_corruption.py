"""Damaged and forged snapshot files: a typed error, never wrong data, bounded memory.

Exhaustive: every single-byte flip (three patterns) and every truncation of small
snapshot files, for every compression, through ``load`` and the streaming reader. Forged:
files whose header checksum is valid but whose lengths, codes or frames lie.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest
from conftest import COMPRESSIONS, CountingFS, reseal, snapshot_bytes
from crc32c import crc32c

from persist_db import (
    CorruptSnapshotError,
    UnsupportedFormatError,
    load,
    open_snapshot,
)
from persist_db import _layout as L

PAYLOAD = bytes(range(40)) * 3 + b"tail" * 20
TYPED = (CorruptSnapshotError, UnsupportedFormatError)
# What a load of a file of at most ~600 bytes may allocate at its peak: the file, the
# 200-byte payload, a codec's fixed working memory (zstd's streaming decoder takes about
# 136 KiB whatever its input) and interpreter noise -- never a length read from a damaged
# header (those go up to 2^64 here).
PEAK_LIMIT = 256 * 1024


def via_load(data: bytes) -> bytes:
    fs = CountingFS({"s.snap": data})
    try:
        return load("s.snap", fs=fs).payload
    finally:
        assert fs.largest_read <= len(data), f"read {fs.largest_read} of a {len(data)}-byte file"


def via_stream(data: bytes) -> bytes:
    fs = CountingFS({"s.snap": data})
    try:
        with open_snapshot("s.snap", fs=fs, verify=False) as reader:
            return b"".join(reader.chunks())
    finally:
        assert fs.largest_read <= len(data), f"read {fs.largest_read} of a {len(data)}-byte file"


def outcome(read: Callable[[bytes], bytes], data: bytes) -> str:
    """'ok' (and then the payload is right) or the typed error's class name."""
    tracemalloc.start()
    try:
        got = read(data)
    except TYPED as exc:
        return type(exc).__name__
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < PEAK_LIMIT, f"peak allocation {peak} for a {len(data)}-byte file"
    assert got == PAYLOAD, "a damaged file returned wrong data"
    return "ok"


def damaged_files(data: bytes) -> list[tuple[str, bytes]]:
    cases = [(f"truncated to {n}", data[:n]) for n in range(len(data))]
    cases.append(("extended by one byte", data + b"\x00"))
    for offset in range(len(data)):
        for pattern in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[offset] ^= pattern
            cases.append((f"byte {offset} ^ {pattern:#x}", bytes(damaged)))
    return cases


@pytest.mark.parametrize("reader", [via_load, via_stream], ids=["load", "stream"])
@pytest.mark.parametrize("meta", [None, {"m": [1, "two"]}], ids=["no-meta", "meta"])
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_single_byte_flip_and_truncation_is_caught(
    compression: str | None, meta: object, reader: Callable[[bytes], bytes]
) -> None:
    data = snapshot_bytes(PAYLOAD, compression=compression, meta=meta)
    assert outcome(reader, data) == "ok"
    results: dict[str, int] = {}
    for description, damaged in damaged_files(data):
        try:
            result = outcome(reader, damaged)
        except AssertionError as exc:
            raise AssertionError(f"{compression}, {description}: {exc}") from exc
        assert result != "ok", f"{compression}, {description}: damage went unnoticed"
        results[result] = results.get(result, 0) + 1
    assert results.get("CorruptSnapshotError", 0) > 3 * len(data)


def forged_cases() -> list[tuple[str, bytes]]:
    raw = snapshot_bytes(PAYLOAD)
    zst = snapshot_bytes(PAYLOAD, compression="zstd")
    lz4 = snapshot_bytes(PAYLOAD, compression="lz4")
    size = len(PAYLOAD)

    def with_payload(data: bytes, stored: bytes, **fields: int) -> bytes:
        head = data[: L.HEADER_SIZE]
        body = head + stored
        return reseal(
            body,
            stored_length=len(stored),
            payload_crc=crc32c(stored),
            **fields,
        )

    zbody = zst[L.HEADER_SIZE :]
    lbody = lz4[L.HEADER_SIZE :]
    return [
        ("stored length past the file", reseal(raw, stored_length=1 << 62)),
        ("stored length short of the file", reseal(raw, stored_length=size - 1)),
        ("raw uncompressed length differs", reseal(raw, uncompressed_length=size + 1)),
        ("uncompressed 2^63 for zstd", reseal(zst, uncompressed_length=1 << 63)),
        ("uncompressed 2^63 for lz4", reseal(lz4, uncompressed_length=1 << 63)),
        ("zstd: uncompressed one more", reseal(zst, uncompressed_length=size + 1)),
        ("zstd: uncompressed one less", reseal(zst, uncompressed_length=size - 1)),
        ("lz4: uncompressed one more", reseal(lz4, uncompressed_length=size + 1)),
        ("lz4: uncompressed one less", reseal(lz4, uncompressed_length=size - 1)),
        ("zstd: bytes after the frame", with_payload(zst, zbody + b"xx")),
        ("zstd: two frames", with_payload(zst, zbody + zbody)),
        ("zstd: frame cut short", with_payload(zst, zbody[:-3])),
        ("lz4: bytes after the frame", with_payload(lz4, lbody + b"xx")),
        ("lz4: two frames", with_payload(lz4, lbody + lbody)),
        ("lz4: frame cut short", with_payload(lz4, lbody[:-3])),
        ("raw bytes labelled zstd", reseal(raw, compression=1)),
        ("raw bytes labelled lz4", reseal(raw, compression=2)),
        ("zstd labelled lz4", reseal(zst, compression=2)),
        ("unknown compression code", reseal(raw, compression=3)),
        # found by fuzz_snapshot.py: a frame declaring content size 0 whose RLE block
        # lacks its byte (zstandard's one-shot decompress returned b"" without looking)
        (
            "zstd: empty frame with a bad block",
            with_payload(zst, bytes.fromhex("28b52ffd2000fb0000"), uncompressed_length=0),
        ),
        ("kind length 0", reseal(raw, kind_length=0)),
        ("kind length 17", reseal(raw, kind_length=17)),
        ("version 0", reseal(raw, version=0)),
        ("flags set", reseal(raw, flags=1)),
        ("reserved set", reseal(raw, reserved=1)),
        ("meta length past the file", reseal(raw, meta_length=1 << 31)),
        ("header length 4 GiB", reseal(raw, header_length=0xFFFF_FFFF)),
        ("header length 96", reseal(raw, header_length=96)),
    ]


@pytest.mark.parametrize(("description", "data"), forged_cases(), ids=lambda x: str(x)[:40])
@pytest.mark.parametrize("reader", [via_load, via_stream], ids=["load", "stream"])
def test_forged_headers_with_valid_checksums_are_refused(
    reader: Callable[[bytes], bytes], description: str, data: bytes
) -> None:
    assert outcome(reader, data) != "ok", description
