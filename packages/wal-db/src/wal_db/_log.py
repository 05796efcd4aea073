"""WriteAheadLog: appends, group commit, sync policies, segment rolls, truncation.

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

import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Literal, NoReturn

from crc32c import crc32c

from ._codec import SegmentHeader, encode_frame
from ._commit import GroupCommit, IntervalSyncer
from ._fs import FileSystem, LogFile, OsFileSystem
from ._layout import (
    CRC_PREFIX,
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_SEGMENT_SIZE,
    FRAME_HEADER,
    LOCK_NAME,
    SEGMENT_HEADER_SIZE,
)
from ._options import LogOptions, LogStats, check_payload
from ._replay import replay_segments
from ._segments import (
    Recovered,
    RecoveryReport,
    create_segment,
    delete_oldest_first,
    load_headers,
    open_active,
    recover,
)
from .errors import (
    LogClosedError,
    LogPoisonedError,
    LsnOutOfRangeError,
    ReadOnlyLogError,
    RecordTooLargeError,
)

__all__ = ["WriteAheadLog"]

_BUFFER_LIMIT = 64 * 1024
_CRC_PREFIX = CRC_PREFIX.pack
_FRAME_HEADER = FRAME_HEADER.pack
_monotonic = time.monotonic
_Payload = bytes | bytearray | memoryview


class WriteAheadLog:
    """A segmented write-ahead log with CRC-framed records and group commit.

    Create one with :meth:`open`. Thread-safe: any number of threads may append, sync and
    replay at once. See ``docs/API.md`` for the full contract.
    """

    def __init__(self, fs: FileSystem, options: LogOptions, *, os_fs: OsFileSystem | None):
        self._fs = fs
        self._os_fs = os_fs
        self._opts = options
        self._lock = threading.Lock()
        self._truncate_lock = threading.Lock()
        self._closed = False
        self._poison: BaseException | None = None
        self._blocked = options.read_only  # closed, read-only or poisoned: the slow path
        self._always = options.sync == "always"
        self._payload_bytes = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        # "interval": the longest a record waits in the process buffer before an append
        # hands the buffer to the OS, even while a slow fsync holds the background syncer
        # (a process crash then loses at most this window); None for the other policies.
        self._handoff = options.sync_interval if options.sync == "interval" else None
        self._handoff_due = 0.0  # monotonic time the oldest buffered record is due
        self._retired: list[LogFile] = []
        self._file: LogFile | None = None
        self._stats = LogStats()
        self._flusher: IntervalSyncer | None = None
        recovered = recover(fs, writable=not options.read_only, lossy=options.lossy)
        if recovered is None:
            recovered = Recovered(b"", [], 1, SEGMENT_HEADER_SIZE)
        if not options.read_only:
            self._file, created = open_active(fs, recovered)
            self._stats.segments_created += created
        self.recovery: RecoveryReport = recovered.report
        self._headers = recovered.headers
        self._log_id = recovered.log_id
        self._next_lsn = recovered.next_lsn
        self._end = recovered.end_offset
        self._written = self._end  # bytes of the active segment handed to the OS
        self._flushed_lsn = self._next_lsn - 1
        # What recovery found is on disk (the writer fsynced it above).
        self._commit = GroupCommit(self._next_lsn - 1, self._flush_and_sync, self._check_poison)
        self._opened_at_lsn = self._next_lsn
        if options.sync == "interval" and not options.read_only:
            self._flusher = IntervalSyncer(options.sync_interval, self._background_sync)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str] | FileSystem,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        sync: Literal["always", "interval", "never"] = "always",
        sync_interval: float = 0.1,
        sync_every: int = 1000,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        read_only: bool = False,
        recovery: Literal["strict", "truncate"] = "strict",
    ) -> WriteAheadLog:
        """Open (or create) the log in ``directory``, recovering it.

        Args:
            directory: a path (created if missing, unless ``read_only``) or a
                :class:`FileSystem` object (tests pass a crash-simulating one).
            segment_size: roll to a new segment once a frame would pass this many bytes
                (>= 4096). A record larger than a segment gets a segment of its own.
            sync: ``"always"`` (append returns after its fsync, grouped across threads),
                ``"interval"`` (a background fsync every ``sync_interval`` seconds or
                ``sync_every`` records) or ``"never"`` (only :meth:`sync`, segment rolls
                and :meth:`close` fsync).
            sync_interval: seconds between background fsyncs (``"interval"``), > 0.
            sync_every: records that trigger an early background fsync, >= 1.
            max_record_size: the largest payload :meth:`append` accepts, 0 < n < 2**32.
            read_only: inspect the log beside a live writer: no lock, no writes, nothing
                cut; a torn tail is reported in :attr:`recovery` but left in place.
            recovery: ``"strict"`` raises :class:`CorruptLogError` on damage a crash
                cannot explain; ``"truncate"`` scans every segment, cuts the log at the
                first bad frame wherever it is and reports all it dropped in
                :attr:`recovery` (``lossy=True``).

        Returns:
            The open log; :attr:`recovery` says what recovery found and cut.

        Raises:
            LogLockedError: another writer holds the log.
            CorruptLogError: damage a crash cannot explain (strict recovery).
            ValueError, TypeError: bad arguments.
            OSError: the directory cannot be read or created.
        """
        options = LogOptions.make(
            segment_size=segment_size,
            sync=sync,
            sync_interval=sync_interval,
            sync_every=sync_every,
            max_record_size=max_record_size,
            read_only=read_only,
            recovery=recovery,
        )
        if isinstance(directory, (str, os.PathLike)):
            os_fs = OsFileSystem(directory, read_only=read_only)
            if not read_only:
                os_fs.lock(LOCK_NAME)
            try:
                return cls(os_fs, options, os_fs=os_fs)
            except BaseException:
                os_fs.unlock()
                raise
        if not isinstance(directory, FileSystem):
            raise TypeError(
                f"directory must be a path or a FileSystem, not {type(directory).__name__}"
            )
        return cls(directory, options, os_fs=None)

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

    # -- reading and truncating ---------------------------------------------------------

    def replay(self, from_lsn: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(lsn, payload)`` for every record from ``from_lsn`` on, in LSN order.

        A writer yields the records appended before the call (queued ones are written out
        first). A read-only log re-reads the directory, so it follows a live writer, and
        stops at the end of the valid log. Every frame's CRC32C is checked.

        Args:
            from_lsn: the first LSN wanted; None for the first retained record. An LSN past
                the end yields nothing.

        Raises:
            LsnOutOfRangeError: ``from_lsn`` was truncated away (below :attr:`first_lsn`).
            CorruptLogError: a bad frame a crash cannot explain.
            LogClosedError: the log is closed.
        """
        if from_lsn is not None and (isinstance(from_lsn, bool) or not isinstance(from_lsn, int)):
            raise TypeError(f"from_lsn must be int or None, not {type(from_lsn).__name__}")
        with self._lock:
            if self._closed:
                raise LogClosedError("the log is closed")
            if self._opts.read_only:
                headers, upto = None, None
            else:
                if self._poison is None:
                    self._flush()
                headers, upto = list(self._headers), self._flushed_lsn
        if headers is None:
            headers = load_headers(self._fs)[0]
        return replay_segments(self._fs, headers, from_lsn, upto)

    def truncate_before(self, lsn: int) -> int:
        """Delete the segments whose records all have LSNs below ``lsn``.

        Whole segments only, oldest first, then one directory fsync: a crash part-way
        leaves a contiguous suffix of the log, never a hole, and never loses a record at or
        above ``lsn``. The active (last) segment is never deleted.

        Args:
            lsn: the first LSN that must be kept.

        Returns:
            How many segments were deleted.

        Raises:
            LogPoisonedError: a failed fsync (then or earlier).
            LogClosedError, ReadOnlyLogError: the log cannot be changed.
        """
        if isinstance(lsn, bool) or not isinstance(lsn, int):
            raise TypeError(f"lsn must be int, not {type(lsn).__name__}")
        with self._truncate_lock:
            with self._lock:
                self._check_writable()
                headers = self._headers
                count = 0
                while count + 1 < len(headers) and headers[count + 1].first_lsn <= lsn:
                    count += 1
                victims, self._headers = headers[:count], headers[count:]
            if not victims:
                return 0
            try:
                delete_oldest_first(self._fs, victims)
            except OSError as exc:
                self._set_poison(exc)
            self._stats.segments_deleted += len(victims)
            return len(victims)

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

    # -- introspection and lifetime ----------------------------------------------------

    @property
    def durable_lsn(self) -> int:
        """The highest LSN known durable (0 when none is)."""
        return self._commit.durable_lsn

    @property
    def last_lsn(self) -> int:
        """The LSN of the last record appended (or recovered); 0 for an empty log."""
        return self._next_lsn - 1

    @property
    def first_lsn(self) -> int:
        """The first LSN still in the log (the next LSN if the log holds no record)."""
        return self._headers[0].first_lsn if self._headers else self._next_lsn

    @property
    def read_only(self) -> bool:
        """True if the log was opened with ``read_only=True``."""
        return self._opts.read_only

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def stats(self) -> LogStats:
        """A snapshot of the counters (see :class:`LogStats`)."""
        with self._lock:
            return self._stats.snapshot(
                appends=self._next_lsn - self._opened_at_lsn,
                payload_bytes=self._payload_bytes,
                segments=len(self._headers),
                first_lsn=self.first_lsn,
                last_lsn=self._next_lsn - 1,
                durable_lsn=self._commit.durable_lsn,
                poisoned=self._poison is not None,
            )

    def close(self) -> None:
        """Sync what was appended, stop the background thread and release the log.

        Idempotent. On a poisoned log nothing is synced; the files are just released.

        Raises:
            LogPoisonedError: the final fsync failed (the log is released anyway).
        """
        if self._closed:
            return
        try:
            if not self._opts.read_only and self._poison is None:
                self._commit.wait_durable(self._next_lsn - 1)
        finally:
            with self._lock:
                self._closed = self._blocked = True
                files = [*self._retired, *([self._file] if self._file else [])]
                self._retired, self._file = [], None
            if self._flusher is not None:
                self._flusher.stop()
            for file in files:
                file.close()
            if self._os_fs is not None:
                self._os_fs.unlock()

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "read-only" if self._opts.read_only else "open"
        return (
            f"<WriteAheadLog {state} lsn={self.last_lsn} durable={self._commit.durable_lsn} "
            f"segments={len(self._headers)}>"
        )
