"""Pure encoding and decoding of segment headers and frames (sans-IO).

Theory of operation
-------------------
Nothing here touches a file: functions map bytes to values and back, so the format is
tested with tables of cases and fuzzed directly. The interesting part is what to do when a
frame is bad, which :func:`classify_bad_frame` decides:

* A frame is *valid* when its header fits, its payload fits inside the segment's bytes, its
  LSN is the one expected next, and its CRC32C matches.
* Frames are written strictly in LSN order, and each carries the *synced LSN*: how far the
  log was durable when the frame was written. So a valid frame that claims ``synced >= e``
  proves that frame ``e`` had already been fsynced before it was written.
* Power loss can only damage writes that had not been fsynced; they all lie after the
  durable point. Hence, at the first bad frame (expected LSN ``e``) the reader looks past
  it for valid frames (LSNs ``e+1 .. e+RESYNC_WINDOW`` found by searching for the LSN
  field, then walking on from each). If one of them claims ``synced >= e``, frame ``e``
  was durable and is now damaged: that is corruption, never a crash, and it raises
  :class:`~wal_db.errors.CorruptLogError`. Otherwise everything from the bad frame on was
  never synced: it is a torn tail, reported (bytes, first lost LSN, how many complete
  frames beyond the damage are dropped with it) and cut.

The CRC32C covers the length field, the LSN, the synced LSN and the payload.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from crc32c import crc32c

from ._layout import (
    CRC_PREFIX,
    FORMAT_VERSION,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_LENGTH,
    FRAME_TAIL,
    LOG_ID_SIZE,
    LSN_FIELD,
    LSN_OFFSET,
    MAGIC,
    MAX_U64,
    RESYNC_WINDOW,
    SEGMENT_HEADER,
    SEGMENT_HEADER_CRC_SPAN,
    SEGMENT_HEADER_SIZE,
)
from .errors import CorruptLogError

__all__ = [
    "FrameScan",
    "SegmentHeader",
    "Tail",
    "classify_bad_frame",
    "decode_segment_header",
    "encode_frame",
    "encode_segment_header",
    "iter_frames",
]

_RESERVED12 = bytes(12)


@dataclass(frozen=True)
class SegmentHeader:
    """The decoded 64-byte header of one segment file."""

    segment: int
    first_lsn: int
    log_id: bytes


@dataclass
class FrameScan:
    """Where :func:`iter_frames` stopped: the next offset and the next expected LSN."""

    offset: int
    next_lsn: int


@dataclass(frozen=True)
class Tail:
    """A torn tail found by :func:`classify_bad_frame`.

    Attributes:
        offset: where the first bad frame starts (the cut point).
        lsn: the LSN that frame should have had (the first LSN lost).
        size: bytes from ``offset`` to the end of the segment.
        dropped_frames: complete, valid frames found after the damage and cut with it
            (they were written but never synced).
        reason: why the frame at ``offset`` is not valid.
    """

    offset: int
    lsn: int
    size: int
    dropped_frames: int
    reason: str


def encode_segment_header(segment: int, first_lsn: int, log_id: bytes) -> bytes:
    """The 64-byte header of segment ``segment`` whose first frame will have ``first_lsn``."""
    if len(log_id) != LOG_ID_SIZE:
        raise ValueError(f"log id must be {LOG_ID_SIZE} bytes, got {len(log_id)}")
    body = SEGMENT_HEADER.pack(
        MAGIC, FORMAT_VERSION, 0, 0, segment, first_lsn, log_id, _RESERVED12, 0
    )
    return body[:SEGMENT_HEADER_CRC_SPAN] + crc32c(body[:SEGMENT_HEADER_CRC_SPAN]).to_bytes(
        4, "little"
    )


def decode_segment_header(data: bytes, segment: int) -> SegmentHeader:
    """Validate and decode the header at the start of ``data`` (the segment's bytes).

    Args:
        data: at least the first 64 bytes of the segment file.
        segment: the number its file name says; the header must agree.

    Raises:
        CorruptLogError: short, wrong magic or version, bad CRC, or fields that disagree
            with the file name or with the format's rules.
    """
    if len(data) < SEGMENT_HEADER_SIZE:
        raise CorruptLogError(
            f"segment header truncated ({len(data)} of 64 bytes)", segment=segment, offset=0
        )
    magic, version, flags, reserved, number, first_lsn, log_id, reserved12, crc = (
        SEGMENT_HEADER.unpack_from(data, 0)
    )
    if magic != MAGIC:
        raise CorruptLogError("bad segment magic", segment=segment, offset=0)
    if crc != crc32c(data[:SEGMENT_HEADER_CRC_SPAN]):
        raise CorruptLogError("segment header checksum mismatch", segment=segment, offset=0)
    if version != FORMAT_VERSION:
        raise CorruptLogError(f"unsupported format version {version}", segment=segment, offset=8)
    if flags or reserved or reserved12 != _RESERVED12:
        raise CorruptLogError("reserved header bits are set", segment=segment, offset=10)
    if number != segment:
        raise CorruptLogError(f"header says segment {number}", segment=segment, offset=16)
    if first_lsn < 1:
        raise CorruptLogError("first LSN is 0", segment=segment, offset=24)
    return SegmentHeader(segment=number, first_lsn=first_lsn, log_id=log_id)


def encode_frame(payload: bytes | bytearray | memoryview, lsn: int, synced_lsn: int) -> bytes:
    """One frame: the 24-byte header and the payload."""
    size = len(payload)
    crc = crc32c(payload, crc32c(CRC_PREFIX.pack(size, lsn, synced_lsn)))
    return FRAME_HEADER.pack(size, crc, lsn, synced_lsn) + payload


def iter_frames(
    data: bytes, offset: int, expected_lsn: int, scan: FrameScan, *, upto: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(lsn, payload)`` for each valid frame from ``offset`` on.

    Stops at the end of ``data``, at the first invalid frame, or after LSN ``upto``; then
    ``scan`` holds the offset and LSN where it stopped (a bad frame starts there unless the
    offset is ``len(data)``).
    """
    unpack = FRAME_HEADER.unpack_from
    view = memoryview(data)
    end = len(data)
    last = MAX_U64 if upto is None else upto
    seeds: dict[int, int] = {}  # CRC32C of each length field seen: lengths repeat
    try:
        while offset + FRAME_HEADER_SIZE <= end and expected_lsn <= last:
            length, crc, lsn, _synced = unpack(data, offset)
            stop = offset + FRAME_HEADER_SIZE + length
            seed = seeds.get(length)
            if seed is None:
                seed = seeds[length] = crc32c(view[offset : offset + 4])
            if stop > end or lsn != expected_lsn or crc32c(view[offset + 8 : stop], seed) != crc:
                break
            yield lsn, data[offset + FRAME_HEADER_SIZE : stop]
            offset = stop
            expected_lsn += 1
    finally:
        scan.offset = offset
        scan.next_lsn = expected_lsn
        view.release()


def frame_problem(data: bytes, offset: int, expected_lsn: int) -> str:
    """Why the frame at ``offset`` is not valid (for reports and errors)."""
    end = len(data)
    if offset + FRAME_HEADER_SIZE > end:
        return f"partial frame header ({end - offset} of {FRAME_HEADER_SIZE} bytes)"
    length, crc, lsn, _synced = FRAME_HEADER.unpack_from(data, offset)
    if offset + FRAME_HEADER_SIZE + length > end:
        return f"frame length {length} runs past the end of the segment"
    if (
        crc32c(
            data[offset + 8 : offset + FRAME_HEADER_SIZE + length],
            crc32c(data[offset : offset + 4]),
        )
        != crc
    ):
        return "frame checksum mismatch"
    return f"frame has LSN {lsn}, expected {expected_lsn}"


def _valid_frame_at(data: bytes, offset: int, lsn: int) -> int | None:
    """The synced LSN of the valid frame ``lsn`` at ``offset``, or None if it is not one."""
    if offset < 0 or offset + FRAME_HEADER_SIZE > len(data):
        return None
    scan = FrameScan(offset, lsn)
    if not any(True for _ in iter_frames(data, offset, lsn, scan, upto=lsn)):
        return None
    return int(FRAME_TAIL.unpack_from(data, offset + LSN_OFFSET)[1])


def _resync(data: bytes, start: int, expected_lsn: int) -> tuple[int, int] | None:
    """The first valid frame after ``start`` with an LSN in the resync window, if any."""
    for lsn in range(expected_lsn + 1, expected_lsn + 1 + RESYNC_WINDOW):
        pattern = LSN_FIELD.pack(lsn)
        pos = data.find(pattern, start + LSN_OFFSET)
        while pos != -1:
            if _valid_frame_at(data, pos - LSN_OFFSET, lsn) is not None:
                return pos - LSN_OFFSET, lsn
            pos = data.find(pattern, pos + 1)
    return None


def classify_bad_frame(data: bytes, offset: int, expected_lsn: int, segment: int) -> Tail:
    """Decide whether the bad frame at ``offset`` starts a torn tail or is corruption.

    Returns:
        The :class:`Tail` to cut when everything from ``offset`` on was never synced.

    Raises:
        CorruptLogError: a valid frame after ``offset`` proves frame ``expected_lsn`` was
            durable (its synced LSN is at least ``expected_lsn``).
    """
    reason = frame_problem(data, offset, expected_lsn)
    dropped = 0
    position, lsn = offset, expected_lsn
    while (found := _resync(data, position + 1, lsn)) is not None:
        position, lsn = found
        while (synced := _valid_frame_at(data, position, lsn)) is not None:
            if synced >= expected_lsn:
                raise CorruptLogError(
                    f"{reason}, but frame {lsn} written after it was durable is intact",
                    segment=segment,
                    offset=offset,
                )
            dropped += 1
            position += FRAME_HEADER_SIZE + FRAME_LENGTH.unpack_from(data, position)[0]
            lsn += 1
    return Tail(
        offset=offset,
        lsn=expected_lsn,
        size=len(data) - offset,
        dropped_frames=dropped,
        reason=reason,
    )
