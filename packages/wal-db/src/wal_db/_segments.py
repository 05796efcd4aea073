"""Segment files on a :class:`~wal_db._fs.FileSystem`: listing, creating, recovering.

Theory of operation
-------------------
**Creating** a segment never exposes a half-written header: the header is written to
``<n>.wal.tmp``, fsynced, renamed to ``<n>.wal``, and the directory is fsynced. A segment
name that exists therefore always has a complete header, and a leftover ``.tmp`` is junk a
writer deletes on open. Before a new segment is created the previous one is fsynced in
full, so only the *last* segment can ever hold unsynced frames: a bad frame in any other
segment is corruption.

**Deleting** (``truncate_before``) unlinks the oldest segments first and fsyncs the
directory once. Directory operations reach the disk in order (ext4, XFS and btrfs journal
metadata in order; the test kit models the same), so a crash leaves a suffix of the
segments: never a hole.

**Recovering** (:func:`recover`) lists the segments, checks every header (same log id,
consecutive numbers, increasing first LSNs), then scans the last segment frame by frame.
A bad frame there is classified by :func:`~wal_db._codec.classify_bad_frame`: a torn tail
is cut (writers only) and reported; corruption raises. In ``recovery="truncate"`` mode every
segment is scanned and the log is cut at the first bad frame wherever it is, with the cut
reported in full.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ._codec import (
    FrameScan,
    SegmentHeader,
    Tail,
    classify_bad_frame,
    decode_segment_header,
    encode_segment_header,
    frame_problem,
    iter_frames,
)
from ._fs import FileSystem, LogFile
from ._layout import (
    LOG_ID_SIZE,
    SEGMENT_HEADER_SIZE,
    is_temp_name,
    parse_segment_name,
    segment_name,
    temp_name,
)
from .errors import CorruptLogError

__all__ = [
    "RecoveryReport",
    "Recovered",
    "create_segment",
    "load_headers",
    "read_segment",
    "recover",
]


@dataclass(frozen=True)
class RecoveryReport:
    """What opening the log found and cut.

    Attributes:
        truncated_bytes: bytes cut from the end of the log (0 when nothing was cut).
        first_lost_lsn: the first LSN that was not recovered (the LSN the next append
            reuses), or None when nothing was cut.
        segment: the segment the cut is in, or None.
        offset: the byte offset of the cut in that segment, or None.
        dropped_records: complete, checksum-valid frames beyond the damage that were cut
            with it (written but never synced, so no sync had returned for them).
        removed_segments: segment numbers deleted whole (``recovery="truncate"`` only).
        lossy: True when ``recovery="truncate"`` cut data a crash cannot explain.
        reason: why the first cut frame was bad, or None.
    """

    truncated_bytes: int = 0
    first_lost_lsn: int | None = None
    segment: int | None = None
    offset: int | None = None
    dropped_records: int = 0
    removed_segments: tuple[int, ...] = ()
    lossy: bool = False
    reason: str | None = None

    @property
    def clean(self) -> bool:
        """True when the log opened exactly as it was written: nothing cut."""
        return self.truncated_bytes == 0 and not self.removed_segments


@dataclass
class Recovered:
    """The state :func:`recover` hands to the log."""

    log_id: bytes
    headers: list[SegmentHeader]
    next_lsn: int
    end_offset: int  # valid bytes in the last segment
    report: RecoveryReport = field(default_factory=RecoveryReport)


def read_segment(fs: FileSystem, number: int) -> bytes:
    """The whole content of segment ``number``."""
    file = fs.open(segment_name(number), create=False)
    try:
        return file.pread(file.size(), 0)
    finally:
        file.close()


def create_segment(fs: FileSystem, number: int, first_lsn: int, log_id: bytes) -> LogFile:
    """Create segment ``number`` atomically and return it open for appending."""
    tmp, final = temp_name(number), segment_name(number)
    file = fs.open(tmp, create=True)
    try:
        file.truncate(0)
        file.pwrite(encode_segment_header(number, first_lsn, log_id), 0)
        file.fsync()
        fs.rename(tmp, final)
        fs.fsync_dir()
    except BaseException:
        file.close()
        raise
    return file


def open_active(fs: FileSystem, recovered: Recovered) -> tuple[LogFile, bool]:
    """A writer's active segment: the last one, or a new segment 1 for a new log.

    Updates ``recovered`` (headers, log id) when it creates the segment.

    Returns:
        The open file and whether it was created.
    """
    if not recovered.headers:  # a new log (or lossy recovery dropped every segment)
        recovered.log_id = new_log_id()
        file = create_segment(fs, 1, recovered.next_lsn, recovered.log_id)
        recovered.headers = [SegmentHeader(1, recovered.next_lsn, recovered.log_id)]
        return file, True
    file = fs.open(segment_name(recovered.headers[-1].segment), create=False)
    # What recovery read may sit only in the OS cache (a process crash without power
    # loss); make it durable before new frames start claiming it is.
    file.fsync()
    return file, False


def delete_oldest_first(fs: FileSystem, headers: list[SegmentHeader]) -> None:
    """Unlink whole segments oldest first, then fsync the directory once (no holes)."""
    for header in headers:
        fs.unlink(segment_name(header.segment))
    fs.fsync_dir()


def load_headers(
    fs: FileSystem, *, lossy: bool = False
) -> tuple[list[SegmentHeader], list[str], list[int]]:
    """Every segment's validated header in order, leftover temporary files, bad segments.

    Args:
        fs: the log's directory.
        lossy: instead of raising, stop at the first segment whose header is bad or does
            not follow on; it and every later segment are returned as bad.

    Raises:
        CorruptLogError: (strict) a bad header, mixed log ids, a missing segment between
            two others, or first LSNs that do not increase.
    """
    names = fs.listdir()
    numbers = sorted(n for n in map(parse_segment_name, names) if n is not None)
    temps = [name for name in names if is_temp_name(name)]
    headers: list[SegmentHeader] = []
    for index, number in enumerate(numbers):
        try:
            headers.append(_checked_header(fs, number, headers[-1] if headers else None))
        except CorruptLogError:
            if not lossy:
                raise
            return headers, temps, numbers[index:]
    return headers, temps, []


def _checked_header(fs: FileSystem, number: int, previous: SegmentHeader | None) -> SegmentHeader:
    file = fs.open(segment_name(number), create=False)
    try:
        head = file.pread(SEGMENT_HEADER_SIZE, 0)
    finally:
        file.close()
    header = decode_segment_header(head, number)
    if previous is None:
        return header
    if header.log_id != previous.log_id:
        raise CorruptLogError(
            "segment belongs to another log (log id differs)", segment=number, offset=32
        )
    if number != previous.segment + 1:
        raise CorruptLogError(f"segment {previous.segment + 1} is missing", segment=number)
    if header.first_lsn <= previous.first_lsn:
        raise CorruptLogError(
            f"first LSN {header.first_lsn} does not follow segment "
            f"{previous.segment}'s {previous.first_lsn}",
            segment=number,
            offset=24,
        )
    return header


def _scan(data: bytes, header: SegmentHeader) -> FrameScan:
    scan = FrameScan(SEGMENT_HEADER_SIZE, header.first_lsn)
    for _ in iter_frames(data, SEGMENT_HEADER_SIZE, header.first_lsn, scan):
        pass  # only where the valid frames end matters here
    return scan


def check_complete(data: bytes, header: SegmentHeader, scan: FrameScan, next_first: int) -> None:
    """A segment before the last must be valid to its end and meet the next one's LSN."""
    if scan.offset != len(data):
        raise CorruptLogError(
            frame_problem(data, scan.offset, scan.next_lsn),
            segment=header.segment,
            offset=scan.offset,
        )
    if scan.next_lsn != next_first:
        raise CorruptLogError(
            f"segment ends at LSN {scan.next_lsn - 1} but the next starts at {next_first}",
            segment=header.segment,
            offset=scan.offset,
        )


def recover(fs: FileSystem, *, writable: bool, lossy: bool) -> Recovered | None:
    """Open-time recovery; None when the directory holds no segment yet.

    Args:
        fs: the log's directory.
        writable: cut torn tails and delete leftovers (a writer); a reader only reports.
        lossy: ``recovery="truncate"``: scan every segment and cut at the first bad frame.

    Raises:
        CorruptLogError: damage a crash cannot explain (strict mode).
    """
    headers, temps, bad = load_headers(fs, lossy=lossy)
    if writable and temps:
        for name in temps:
            fs.unlink(name)
        fs.fsync_dir()
    if lossy:
        return _recover_lossy(fs, headers, bad, writable=writable)
    if not headers:
        return None
    last = headers[-1]
    data = read_segment(fs, last.segment)
    scan = _scan(data, last)
    report = RecoveryReport()
    if scan.offset < len(data):
        tail = classify_bad_frame(data, scan.offset, scan.next_lsn, last.segment)
        report = _report(last.segment, tail)
        if writable:
            _cut(fs, last.segment, scan.offset)
    return Recovered(headers[0].log_id, headers, scan.next_lsn, scan.offset, report)


def _report(
    segment: int,
    tail: Tail,
    *,
    lossy: bool = False,
    removed: tuple[int, ...] = (),
    extra_bytes: int = 0,
) -> RecoveryReport:
    return RecoveryReport(
        truncated_bytes=tail.size + extra_bytes,
        first_lost_lsn=tail.lsn,
        segment=segment,
        offset=tail.offset,
        dropped_records=tail.dropped_frames,
        removed_segments=removed,
        lossy=lossy,
        reason=tail.reason,
    )


def _cut(fs: FileSystem, segment: int, offset: int) -> None:
    file = fs.open(segment_name(segment), create=False)
    try:
        file.truncate(offset)
        file.fsync()
    finally:
        file.close()


def _recover_lossy(
    fs: FileSystem, headers: list[SegmentHeader], bad: list[int], *, writable: bool
) -> Recovered | None:
    """Cut the log at the first bad header or frame, wherever it is, and report the cut."""
    for index, header in enumerate(headers):
        data = read_segment(fs, header.segment)
        scan = _scan(data, header)
        is_last = index == len(headers) - 1
        next_first = scan.next_lsn if is_last else headers[index + 1].first_lsn
        if scan.offset == len(data) and scan.next_lsn == next_first:
            if not is_last:
                continue
            if not bad:
                return Recovered(headers[0].log_id, headers, scan.next_lsn, scan.offset)
        later = [h.segment for h in headers[index + 1 :]] + bad
        try:
            tail = classify_bad_frame(data, scan.offset, scan.next_lsn, header.segment)
            lossy = bool(later)  # a torn tail of the last segment is what a crash leaves
        except CorruptLogError as exc:
            tail = Tail(scan.offset, scan.next_lsn, len(data) - scan.offset, 0, exc.reason)
            lossy = True
        removed_bytes = _remove(fs, later, writable=writable)
        if writable and scan.offset < len(data):
            _cut(fs, header.segment, scan.offset)
        report = _report(
            header.segment, tail, lossy=lossy, removed=tuple(later), extra_bytes=removed_bytes
        )
        return Recovered(
            headers[0].log_id, headers[: index + 1], scan.next_lsn, scan.offset, report
        )
    if not bad:
        return None
    removed_bytes = _remove(fs, bad, writable=writable)
    report = RecoveryReport(
        truncated_bytes=removed_bytes,
        removed_segments=tuple(bad),
        lossy=True,
        reason=f"segment {bad[0]} has a bad header",
    )
    return Recovered(b"", [], 1, SEGMENT_HEADER_SIZE, report)


def _remove(fs: FileSystem, numbers: list[int], *, writable: bool) -> int:
    """Delete whole segments newest first (a crash leaves a prefix, never a hole)."""
    removed = 0
    for number in reversed(numbers):
        removed += _size(fs, number)
        if writable:
            fs.unlink(segment_name(number))
    if writable and numbers:
        fs.fsync_dir()
    return removed


def _size(fs: FileSystem, number: int) -> int:
    file = fs.open(segment_name(number), create=False)
    try:
        return file.size()
    finally:
        file.close()


def new_log_id() -> bytes:
    """A fresh random log id."""
    return os.urandom(LOG_ID_SIZE)
