"""LogWriter: the append side of the write-ahead log — appends, group commit, segment rolls.

:class:`~wal_db.WriteAheadLog` extends it with opening (recovery), replay, truncation and
closing; the state declared on :class:`LogWriter` is set up by its constructor.

Theory of operation
-------------------
State and locks. ``_lock`` guards the append side: the next LSN, the in-process buffer of
encoded frames, the active segment and where its bytes end. The durable side (the durable
LSN and who is syncing) belongs to :class:`~wal_db._commit.GroupCommit`; the lock order is
``_lock`` first, never the reverse.

Append. A frame is encoded and queued in the buffer under ``_lock``; the buffer is written
to the file when it passes ``_BUFFER_LIMIT`` bytes, or when a sync needs it. Each frame
records the durable LSN known when it was written (the reader's proof of what was synced,
see ``_codec``). ``sync="always"`` then waits in the group commit, whose leader calls
:meth:`WriteAheadLog._flush_and_sync`.

Rolling to a new segment happens under ``_lock`` when a frame would overflow the active
segment: the active segment is written out and fsynced in full, then the next one is
created (see ``_segments``). Only the last segment can hold unsynced frames.

Poisoning. A failed write or fsync stores the error; every later append, sync and
truncation raises :class:`~wal_db.errors.LogPoisonedError` (from the original error) until
the log is reopened. An fsync is never retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import NoReturn

from crc32c import crc32c

from ._codec import SegmentHeader, encode_frame
from ._commit import GroupCommit, IntervalSyncer
from ._fs import FileSystem, LogFile
from ._layout import CRC_PREFIX, FRAME_HEADER, SEGMENT_HEADER_SIZE
from ._options import LogOptions, LogStats, check_payload
from ._segments import create_segment
from .errors import (
    LogClosedError,
    LogPoisonedError,
    LsnOutOfRangeError,
    ReadOnlyLogError,
    RecordTooLargeError,
)

__all__ = ["LogWriter"]

_BUFFER_LIMIT = 64 * 1024
_CRC_PREFIX = CRC_PREFIX.pack
_FRAME_HEADER = FRAME_HEADER.pack
_monotonic = time.monotonic
_Payload = bytes | bytearray | memoryview


class LogWriter:
    """Appending, syncing and rolling segments; the base of :class:`~wal_db.WriteAheadLog`."""

    # Set up by WriteAheadLog.__init__; see "State and locks" above for what _lock guards.
    _fs: FileSystem
    _opts: LogOptions
    _stats: LogStats
    _lock: threading.Lock
    _closed: bool
    _poison: BaseException | None
    _blocked: bool
    _always: bool  # sync == "always"
    _payload_bytes: int
    _buffer: list[bytes]  # encoded frames not yet handed to the OS
    _buffered: int
    _handoff: float | None
    _handoff_due: float
    _retired: list[LogFile]  # sealed segments the next sync leader closes
    _file: LogFile | None  # the active segment
    _headers: list[SegmentHeader]
    _log_id: bytes
    _next_lsn: int
    _end: int  # where the active segment's bytes end, buffered frames included
    _written: int
    _flushed_lsn: int
    _commit: GroupCommit
    _flusher: IntervalSyncer | None

    # -- appending -------------------------------------------------------------------

    def append(self, payload: _Payload) -> int:
        """Append one record and return its LSN.

        With ``sync="always"`` this returns only once the record is durable.

        Args:
            payload: the record's bytes (bytes, bytearray or memoryview; may be empty).

        Returns:
            The record's LSN: the previous LSN + 1, never 0.

        Raises:
            RecordTooLargeError: ``len(payload) > max_record_size``.
            LogPoisonedError: an earlier write or fsync failed, or this one did.
            LogClosedError, ReadOnlyLogError: the log cannot take appends.
            TypeError: ``payload`` is not bytes-like.
        """
        if type(payload) is not bytes:
            payload = check_payload(payload, self._opts.max_record_size)
        elif len(payload) > self._opts.max_record_size:
            raise RecordTooLargeError(len(payload), self._opts.max_record_size)
        # The hot path: encode_frame and _queue inlined (this runs 300,000+ times a second).
        with self._lock:
            if self._blocked:
                self._check_writable()
            lsn = self._next_lsn
            durable = self._commit.durable_lsn
            size = len(payload)
            crc = crc32c(payload, crc32c(_CRC_PREFIX(size, lsn, durable)))
            frame = _FRAME_HEADER(size, crc, lsn, durable) + payload
            if self._end + len(frame) > self._opts.segment_size and self._end > SEGMENT_HEADER_SIZE:
                self._roll()
            self._buffer.append(frame)
            self._buffered += len(frame)
            self._end += len(frame)
            self._next_lsn = lsn + 1
            self._payload_bytes += size
            if self._buffered >= _BUFFER_LIMIT:
                self._flush()
            elif self._handoff is not None:
                if len(self._buffer) == 1:
                    self._handoff_due = _monotonic() + self._handoff
                elif _monotonic() >= self._handoff_due:
                    self._flush()
        if self._always:
            self._commit.wait_durable(lsn)
        elif self._flusher is not None and lsn - self._commit.durable_lsn >= self._opts.sync_every:
            self._flusher.kick()
        return lsn

    def append_many(self, payloads: Iterable[_Payload]) -> range:
        """Append several records with one write and (``sync="always"``) one fsync.

        The records get consecutive LSNs and always land in one segment. The batch is not
        atomic across a crash: recovery may keep a prefix of it (never a gap).

        Args:
            payloads: the records' bytes, in order.

        Returns:
            The LSNs assigned, in order (empty if ``payloads`` is empty).

        Raises:
            Same as :meth:`append`; nothing is appended if any payload is invalid.
        """
        items = [check_payload(payload, self._opts.max_record_size) for payload in payloads]
        if not items:
            with self._lock:
                self._check_writable()
                return range(self._next_lsn, self._next_lsn)
        with self._lock:
            self._check_writable()
            first = self._next_lsn
            synced = self._commit.durable_lsn
            frames = b"".join(encode_frame(p, first + i, synced) for i, p in enumerate(items))
            self._queue(frames, len(items), sum(len(p) for p in items))
        last = first + len(items) - 1
        if self._always:
            self._commit.wait_durable(last)
        elif self._flusher is not None and last - self._commit.durable_lsn >= self._opts.sync_every:
            self._flusher.kick()
        return range(first, last + 1)

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosedError("the log is closed")
        if self._opts.read_only:
            raise ReadOnlyLogError("the log was opened read-only")
        if self._poison is not None:
            self._raise_poisoned()

    def _set_poison(self, exc: OSError) -> NoReturn:
        self._poison = exc
        self._blocked = True
        self._raise_poisoned()

    def _raise_poisoned(self) -> NoReturn:
        raise LogPoisonedError(
            f"an earlier write or fsync failed ({self._poison}); reopen the log"
        ) from self._poison

    def _queue(self, frames: bytes, count: int, payload_bytes: int) -> None:
        """Queue encoded frames (under ``_lock``), rolling the segment first if needed."""
        if self._end + len(frames) > self._opts.segment_size and self._end > SEGMENT_HEADER_SIZE:
            self._roll()
        self._buffer.append(frames)
        self._buffered += len(frames)
        self._end += len(frames)
        self._next_lsn += count
        self._payload_bytes += payload_bytes
        if self._buffered >= _BUFFER_LIMIT:
            self._flush()
        elif self._handoff is not None:
            if len(self._buffer) == 1:
                self._handoff_due = _monotonic() + self._handoff
            elif _monotonic() >= self._handoff_due:
                self._flush()

    def _flush(self) -> None:
        """Hand the buffer to the OS (under ``_lock``); a failed write poisons."""
        if not self._buffer:
            return
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        assert self._file is not None
        try:
            self._file.pwrite(data, self._written)
        except OSError as exc:
            self._set_poison(exc)
        self._written += len(data)
        self._buffer.clear()
        self._buffered = 0
        self._flushed_lsn = self._next_lsn - 1

    def roll(self) -> bool:
        """Seal the active segment and start the next one, if the active segment has records.

        ``truncate_before`` never deletes the active segment, so records below its LSN can
        stay on disk until the segment fills. Call ``roll()`` first when every record below
        an LSN should go (say, after a final checkpoint). Crash-safe: the sealed segment is
        fsynced before the new one is created and named (with a directory fsync).

        Returns:
            True if a new segment was started; False if the active segment held no record.

        Raises:
            LogPoisonedError: a failed write or fsync (then or earlier).
            LogClosedError, ReadOnlyLogError: the log cannot be changed.
        """
        with self._lock:
            self._check_writable()
            if self._end <= SEGMENT_HEADER_SIZE:
                return False
            self._roll()
            return True

    def _roll(self) -> None:
        """Seal the active segment (write out, fsync) and start the next (under ``_lock``)."""
        assert self._file is not None
        self._flush()
        try:
            self._file.fsync()
        except OSError as exc:
            self._set_poison(exc)
        self._stats.fsyncs += 1
        self._commit.publish(self._flushed_lsn)
        number = self._headers[-1].segment + 1
        try:
            new_file = create_segment(self._fs, number, self._next_lsn, self._log_id)
        except OSError as exc:
            self._set_poison(exc)
        self._retired.append(self._file)
        self._file = new_file
        self._headers = [*self._headers, SegmentHeader(number, self._next_lsn, self._log_id)]
        self._end = self._written = SEGMENT_HEADER_SIZE
        self._stats.segments_created += 1

    # -- durability -------------------------------------------------------------------

    def sync(self, lsn: int | None = None) -> None:
        """Return once every record up to ``lsn`` (default: the last appended) is durable.

        Concurrent callers share fsyncs (group commit). Returns at once if already durable.

        Args:
            lsn: the LSN that must be durable, 1 <= lsn <= :attr:`last_lsn`.

        Raises:
            LsnOutOfRangeError: ``lsn`` was never appended.
            LogPoisonedError: this or an earlier write or fsync failed.
            LogClosedError, ReadOnlyLogError: the log cannot sync.
        """
        with self._lock:
            self._check_writable()
            last = self._next_lsn - 1
        if lsn is None:
            lsn = last
        elif isinstance(lsn, bool) or not isinstance(lsn, int):
            raise TypeError(f"lsn must be int, not {type(lsn).__name__}")
        elif lsn > last:
            raise LsnOutOfRangeError(f"LSN {lsn} was not appended (last LSN is {last})")
        self._commit.wait_durable(lsn)

    def _flush_and_sync(self) -> int:
        """The group-commit leader's work: write out the queue, fsync it, return its LSN."""
        with self._lock:
            if self._poison is not None:
                self._raise_poisoned()
            self._flush()
            upto, file = self._flushed_lsn, self._file
            retired, self._retired = self._retired, []
        for old in retired:  # sealed (fsynced) by _roll; no other leader is running
            old.close()
        if upto > self._commit.durable_lsn:
            assert file is not None
            try:
                file.fsync()
            except OSError as exc:
                self._set_poison(exc)
            self._stats.fsyncs += 1
        return upto

    def _check_poison(self) -> None:
        if self._poison is not None:
            self._raise_poisoned()

    def _background_sync(self) -> bool:
        if self._closed or self._poison is not None:
            return False
        target = self._next_lsn - 1
        if target > self._commit.durable_lsn:
            try:
                self._commit.wait_durable(target)
            except (LogPoisonedError, LogClosedError):
                return False
        return True
