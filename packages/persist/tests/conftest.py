"""Shared helpers for persist-db's tests."""

from __future__ import annotations

import struct
from typing import Any

from crc32c import crc32c

import persist_db
from persist_db import _layout as L
from strata_testkit import MemoryFS

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
