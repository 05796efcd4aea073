"""atheris target: the snapshot header, meta and payload reader (load and streaming).

The first input byte chooses what is repaired before reading, so the fuzzer gets past
the checksums and into the field checks and the decompressors: bit 0 recomputes the
header CRC32C, bit 1 the payload CRC32C, bit 2 the meta CRC32C. The rest is the file.

Oracle: ``load`` either returns or raises a ``PersistError`` (corrupt, unsupported
format, lz4 unavailable); when it returns, the payload has the length the header
declares, and the streaming reader returns the same bytes. No other exception, no hang,
no allocation beyond the file size times the codec's best ratio (libFuzzer's
``-rss_limit_mb`` enforces a ceiling).

    python fuzz/fuzz_snapshot.py -max_total_time=60 fuzz/fuzz_snapshot_corpus
"""

from __future__ import annotations

import struct
import sys

import atheris

with atheris.instrument_imports():
    from crc32c import crc32c

    from persist_db import PersistError, load, open_snapshot
    from persist_db import _layout as L
    from strata_testkit import MemoryFS


def repair(data: bytes, flags: int) -> bytes:
    if len(data) < L.HEADER_SIZE:
        return data
    body = bytearray(data)
    meta_length, _, stored = struct.unpack_from("<IIQ", body, 40)
    meta_end = L.HEADER_SIZE + meta_length
    if flags & 4 and meta_end <= len(body):
        struct.pack_into("<I", body, 44, crc32c(bytes(body[L.HEADER_SIZE : meta_end])))
    if flags & 2 and meta_end <= len(body):
        struct.pack_into("<I", body, 72, crc32c(bytes(body[meta_end : meta_end + stored])))
    if flags & 1:
        struct.pack_into("<I", body, 76, crc32c(bytes(body[:76])))
    return bytes(body)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    files = {"s.snap": repair(data[1:], data[0])}
    try:
        snap = load("s.snap", fs=MemoryFS(files))
    except PersistError:
        snap = None
    if snap is not None:
        assert len(snap.payload) == snap.info.payload_length
    try:
        with open_snapshot("s.snap", fs=MemoryFS(files), verify=data[0] & 8 == 0) as reader:
            streamed = b"".join(reader.chunks())
    except PersistError:
        assert snap is None, "the streaming reader refused what load accepted"
        return
    assert snap is not None and streamed == snap.payload, "load and stream disagree"


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
