"""Reading records back: :func:`replay_segments`, shared by writers and readers.

Theory of operation
-------------------
Replay reads one segment at a time into memory (a segment is bounded by the file's size on
disk, never by a length field) and walks its frames with
:func:`~wal_db._codec.iter_frames`, validating every CRC32C on the way. Every segment but
the last must be valid to its last byte and end at the LSN before the next segment's first
LSN; anything else is corruption. In the last segment the walk stops at ``upto`` for a
writer (which cut any torn tail on open, so a bad frame before ``upto`` is new damage); a
reader stops at the first bad frame that :func:`~wal_db._codec.classify_bad_frame` calls a
tail, which is also how a reader sees the live end of a log a writer is appending to.
"""

from __future__ import annotations

from collections.abc import Iterator

from ._codec import (
    FrameScan,
    SegmentHeader,
    classify_bad_frame,
    decode_segment_header,
    frame_problem,
    iter_frames,
)
from ._fs import FileSystem
from ._layout import SEGMENT_HEADER_SIZE
from ._segments import check_complete, read_segment
from .errors import CorruptLogError, LsnOutOfRangeError

__all__ = ["replay_segments"]


def _start_index(headers: list[SegmentHeader], from_lsn: int) -> int:
    index = 0
    for i, header in enumerate(headers):
        if header.first_lsn <= from_lsn:
            index = i
        else:
            break
    return index


def replay_segments(
    fs: FileSystem, headers: list[SegmentHeader], from_lsn: int | None, upto: int | None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(lsn, payload)`` from ``from_lsn`` (or the first retained record) on.

    Args:
        fs: the log's directory.
        headers: the segments to read, in order (the caller's consistent snapshot).
        from_lsn: the first LSN wanted, or None for the first retained one.
        upto: the last LSN to yield (a writer's last appended LSN), or None to read to the
            end of the valid log (a reader).

    Raises:
        LsnOutOfRangeError: ``from_lsn`` is below the first retained LSN, or a segment was
            deleted by ``truncate_before`` while being replayed.
        CorruptLogError: a bad frame where a crash cannot explain it.
    """
    if not headers:
        return
    first = headers[0].first_lsn
    if from_lsn is None:
        from_lsn = first
    if from_lsn < first:
        raise LsnOutOfRangeError(
            f"LSN {from_lsn} was truncated away: the log starts at LSN {first}"
        )
    start = _start_index(headers, from_lsn)
    for index in range(start, len(headers)):
        header = headers[index]
        is_last = index == len(headers) - 1
        try:
            data = read_segment(fs, header.segment)
        except FileNotFoundError:
            raise LsnOutOfRangeError(
                f"segment {header.segment} was deleted (truncate_before) during replay"
            ) from None
        scan = FrameScan(SEGMENT_HEADER_SIZE, header.first_lsn)
        limit = upto if is_last else None
        if decode_segment_header(data, header.segment) != header:
            raise CorruptLogError(
                "segment header changed since the log was opened", segment=header.segment, offset=0
            )
        frames = iter_frames(data, SEGMENT_HEADER_SIZE, header.first_lsn, scan, upto=limit)
        if header.first_lsn < from_lsn:
            for lsn, _payload in frames:  # skip to from_lsn
                if lsn + 1 >= from_lsn:
                    break
        yield from frames
        if not is_last:
            check_complete(data, header, scan, headers[index + 1].first_lsn)
        elif upto is not None:
            if scan.next_lsn <= upto:
                raise CorruptLogError(
                    frame_problem(data, scan.offset, scan.next_lsn),
                    segment=header.segment,
                    offset=scan.offset,
                )
        elif scan.offset < len(data):
            classify_bad_frame(data, scan.offset, scan.next_lsn, header.segment)
