"""atheris target: segment and frame decoding, through open, recovery and replay.

The input is split into up to three segment files of one log. Half the inputs get a valid
header written over each piece (with the fuzzer's own segment fields), so the fuzzer gets
past the header checksum and into frame scanning, tail classification and the LSN chain.
Half the inputs get each frame's CRC32C recomputed, so it also reaches the LSN and
synced-LSN rules instead of stopping at the checksum.

Oracle: opening (strict, lossy and read-only) either succeeds or raises CorruptLogError;
when it succeeds, replay yields strictly consecutive LSNs or raises CorruptLogError. No
other exception, no hang, no allocation beyond the input's size.

    python fuzz/fuzz_segments.py -max_total_time=60 fuzz/fuzz_segments_corpus
"""

from __future__ import annotations

import struct
import sys

import atheris

with atheris.instrument_imports():
    from crc32c import crc32c

    from strata_testkit import MemoryFS
    from wal_db import CorruptLogError, WriteAheadLog
    from wal_db._codec import encode_segment_header
    from wal_db._layout import FRAME_HEADER_SIZE, SEGMENT_HEADER_SIZE, segment_name

LOG_ID = bytes(16)


def reseal_frames(body: bytearray) -> None:
    offset = SEGMENT_HEADER_SIZE
    while offset + FRAME_HEADER_SIZE <= len(body):
        (length,) = struct.unpack_from("<I", body, offset)
        stop = offset + FRAME_HEADER_SIZE + length
        if stop > len(body):
            return
        crc = crc32c(bytes(body[offset + 8 : stop]), crc32c(bytes(body[offset : offset + 4])))
        struct.pack_into("<I", body, offset + 4, crc)
        offset = stop


def build(data: bytes) -> dict[str, bytes]:
    flags, data = data[0], data[1:]
    pieces = [p for p in data.split(b"\xf0\x0d", 2)]
    files: dict[str, bytes] = {}
    for number, piece in enumerate(pieces, start=1):
        body = bytearray(piece)
        if flags & 1 and len(body) >= 8:
            first_lsn = 1 + int.from_bytes(body[:2], "little")
            body[:SEGMENT_HEADER_SIZE] = encode_segment_header(number, first_lsn, LOG_ID)
        if flags & 2:
            reseal_frames(body)
        files[segment_name(number)] = bytes(body)
    return files


def check(files: dict[str, bytes], **options: object) -> None:
    try:
        log = WriteAheadLog.open(MemoryFS(files), **options)  # type: ignore[arg-type]
    except CorruptLogError:
        return
    with log:
        try:
            lsns = [lsn for lsn, _ in log.replay()]
        except CorruptLogError:
            return
        assert lsns == list(range(log.first_lsn, log.first_lsn + len(lsns))), lsns[:5]
        if not log.read_only:
            assert log.append(b"fuzz") == log.first_lsn + len(lsns)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    files = build(data)
    check(files)
    check(files, read_only=True)
    check(files, recovery="truncate")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
