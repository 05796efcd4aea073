"""The pure codec: golden vectors, header validation, frame scanning, tail classification."""

from __future__ import annotations

import pytest

from wal_db import CorruptLogError
from wal_db._codec import (
    FrameScan,
    SegmentHeader,
    classify_bad_frame,
    decode_segment_header,
    encode_frame,
    encode_segment_header,
    iter_frames,
)
from wal_db._layout import SEGMENT_HEADER_SIZE

LOG_ID = bytes(range(16))

# The golden vectors of docs/FORMAT.md: any change to these bytes is a format change.
GOLDEN_HEADER = bytes.fromhex(
    "53545257414c0d0a01000000000000000100000000000000010000000000000000"
    "0102030405060708090a0b0c0d0e0f00000000000000000000000079cd478e"
)
GOLDEN_FRAME_HELLO = bytes.fromhex("05000000fdea5f590100000000000000000000000000000068656c6c6f")
GOLDEN_FRAME_EMPTY = bytes.fromhex("0000000014460d1402000000000000000100000000000000")


def test_golden_vectors() -> None:
    assert encode_segment_header(1, 1, LOG_ID) == GOLDEN_HEADER
    assert encode_frame(b"hello", 1, 0) == GOLDEN_FRAME_HELLO
    assert encode_frame(b"", 2, 1) == GOLDEN_FRAME_EMPTY
    assert decode_segment_header(GOLDEN_HEADER, 1) == SegmentHeader(1, 1, LOG_ID)


def segment(*payloads: bytes, first_lsn: int = 1, synced: list[int] | None = None) -> bytes:
    synced = synced or [0] * len(payloads)
    frames = b"".join(
        encode_frame(p, first_lsn + i, s)
        for i, (p, s) in enumerate(zip(payloads, synced, strict=True))
    )
    return encode_segment_header(1, first_lsn, LOG_ID) + frames


def scan_all(data: bytes, first_lsn: int = 1) -> tuple[list[tuple[int, bytes]], FrameScan]:
    scan = FrameScan(SEGMENT_HEADER_SIZE, first_lsn)
    return list(iter_frames(data, SEGMENT_HEADER_SIZE, first_lsn, scan)), scan


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0, b"X", "bad segment magic"),
        (60, b"\0\0\0\0", "checksum"),
        (17, b"\x07", "checksum"),  # any covered byte
    ],
)
def test_damaged_header_is_rejected(offset: int, value: bytes, reason: str) -> None:
    data = bytearray(GOLDEN_HEADER)
    data[offset : offset + len(value)] = value
    with pytest.raises(CorruptLogError, match=reason) as info:
        decode_segment_header(bytes(data), 1)
    assert info.value.segment == 1


def test_header_must_match_its_file_name_and_be_complete() -> None:
    with pytest.raises(CorruptLogError, match="header says segment 1"):
        decode_segment_header(GOLDEN_HEADER, 2)
    with pytest.raises(CorruptLogError, match="truncated"):
        decode_segment_header(GOLDEN_HEADER[:63], 1)


def test_frames_round_trip_in_order() -> None:
    payloads = [b"", b"a", b"\x00" * 300, bytes(range(256))]
    frames, scan = scan_all(segment(*payloads, first_lsn=5), first_lsn=5)
    assert frames == [(5 + i, p) for i, p in enumerate(payloads)]
    assert scan.next_lsn == 9


def test_scan_stops_at_a_frame_with_the_wrong_lsn_even_if_its_crc_is_valid() -> None:
    data = segment(b"one") + encode_frame(b"stale", 7, 0)
    frames, scan = scan_all(data)
    assert frames == [(1, b"one")]
    assert scan.next_lsn == 2 and scan.offset < len(data)


def test_every_single_byte_flip_in_a_frame_is_detected() -> None:
    data = segment(b"payload bytes", b"second")
    first_end = SEGMENT_HEADER_SIZE + 24 + len(b"payload bytes")
    for position in range(SEGMENT_HEADER_SIZE, first_end):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        frames, _ = scan_all(bytes(damaged))
        assert frames == [], f"flip at {position} went unnoticed"


def test_zero_tail_is_a_torn_tail() -> None:
    data = segment(b"a", b"b") + bytes(100)
    _, scan = scan_all(data)
    tail = classify_bad_frame(data, scan.offset, scan.next_lsn, 1)
    assert (tail.lsn, tail.size, tail.dropped_frames) == (3, 100, 0)


def test_unsynced_frames_after_a_hole_are_dropped_with_the_tail() -> None:
    # Frame 3 was lost (a hole of zeros) but 4 and 5 reached the disk: none was synced.
    head = segment(b"a", b"b")
    lost = bytes(len(encode_frame(b"c", 3, 0)))
    data = head + lost + encode_frame(b"d", 4, 2) + encode_frame(b"e", 5, 2)
    _, scan = scan_all(data)
    tail = classify_bad_frame(data, scan.offset, scan.next_lsn, 1)
    assert tail.offset == len(head) and tail.lsn == 3 and tail.dropped_frames == 2


def test_a_bad_frame_proven_durable_by_a_later_frame_is_corruption() -> None:
    # Frame 4 says LSN 3 was durable when it was written: damage to 3 is not a crash.
    head = segment(b"a", b"b")
    bad = bytearray(encode_frame(b"c", 3, 2))
    bad[-1] ^= 0xFF
    data = head + bytes(bad) + encode_frame(b"d", 4, 3)
    _, scan = scan_all(data)
    with pytest.raises(CorruptLogError, match="written after it was durable") as info:
        classify_bad_frame(data, scan.offset, scan.next_lsn, 9)
    assert (info.value.segment, info.value.offset) == (9, len(head))


def test_garbage_length_field_does_not_hide_later_durable_frames() -> None:
    head = segment(b"a")
    garbage = b"\xff\xff\xff\x7f" + bytes(40)  # length runs past the end
    data = head + garbage + encode_frame(b"x", 3, 2)
    _, scan = scan_all(data)
    with pytest.raises(CorruptLogError):
        classify_bad_frame(data, scan.offset, scan.next_lsn, 1)


def test_encode_header_rejects_a_bad_log_id() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        encode_segment_header(1, 1, b"short")
