"""Shared helpers for persist-db's tests."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import hypothesis
from crc32c import crc32c

import persist_db
from persist_db import _layout as L
from strata_testkit import MemoryFS

# No per-example deadline: on a loaded 2-core CI machine a slow example is not a failure
# (Hypothesis reports a deadline it cannot reproduce as Flaky).
hypothesis.settings.register_profile("ci", deadline=None, print_blob=True)
hypothesis.settings.load_profile("ci")

COMPRESSIONS = (None, "zstd", "lz4")


class CountingFS(MemoryFS):
    """A MemoryFS whose files record the largest read asked of them."""

    largest_read = 0

    def open(self, name: str, *, create: bool = True) -> Any:
        file = super().open(name, create=create)
        outer = self

        class Recording:
            def __getattr__(self, attr: str) -> Any:
                return getattr(file, attr)

            def pread(self, size: int, offset: int) -> bytes:
                outer.largest_read = max(outer.largest_read, size)
                return file.pread(size, offset)

        return Recording()


def snapshot_bytes(
    payload: bytes | list[bytes],
    *,
    compression: str | None = None,
    kind: str = "test",
    version: int = 1,
    meta: Any = None,
) -> bytes:
    """The bytes of a snapshot file, saved through a MemoryFS."""
    fs = MemoryFS()
    persist_db.save(
        "s.snap", payload, kind=kind, version=version, compression=compression, meta=meta, fs=fs
    )
    return fs.files()["s.snap"]


def load_bytes(data: bytes, **options: Any) -> persist_db.Snapshot:
    """Load a snapshot from raw file bytes."""
    return persist_db.load("s.snap", fs=MemoryFS({"s.snap": data}), **options)


def reseal(data: bytes, **fields: int) -> bytes:
    """Rewrite header fields (by name) and recompute the header CRC: a forged file."""
    names = [
        "magic", "major", "minor", "header_length", "flags", "compression", "kind_length",
        "kind", "version", "reserved", "meta_length", "meta_crc", "stored_length",
        "uncompressed_length", "created", "payload_crc", "header_crc",
    ]  # fmt: skip
    values = dict(zip(names, L.HEADER.unpack_from(data), strict=True))
    values.update(fields)
    head = bytearray(L.HEADER.pack(*(values[n] for n in names)))
    struct.pack_into("<I", head, 76, crc32c(bytes(head[:76])))
    return bytes(head) + data[L.HEADER_SIZE :]


class Journal:
    """A Persistable test object: the list of operations applied, in order.

    Its payload is length-prefixed records, produced in chunks (the streaming path).
    """

    kind = "journal"
    format_version = 2

    def __init__(self) -> None:
        self.ops: list[bytes] = []

    def to_snapshot(self) -> Iterator[bytes]:
        for op in self.ops:
            yield len(op).to_bytes(4, "little") + op

    def load_snapshot(self, payload: bytes, version: int) -> None:
        if version not in (1, 2):
            raise persist_db.UnsupportedFormatError(f"journal payload version {version}")
        assert not self.ops, "load_snapshot is given a fresh object"
        offset = 0
        while offset < len(payload):
            size = int.from_bytes(payload[offset : offset + 4], "little")
            self.ops.append(payload[offset + 4 : offset + 4 + size])
            offset += 4 + size

    def apply(self, op: bytes) -> None:
        if op == b"explode":
            raise RuntimeError("the object refuses this operation")
        self.ops.append(bytes(op))
