"""WriteAheadLog: opening (with recovery), replay, truncation, introspection and closing.

The append side — appends, group commit, sync policies and segment rolls, with its theory
of operation — is :class:`~wal_db._writer.LogWriter` in ``_writer``, which this class
extends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Literal

from ._commit import GroupCommit, IntervalSyncer
from ._fs import FileSystem, OsFileSystem
from ._layout import (
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_SEGMENT_SIZE,
    LOCK_NAME,
    SEGMENT_HEADER_SIZE,
)
from ._options import LogOptions, LogStats
from ._replay import replay_segments
from ._segments import (
    Recovered,
    RecoveryReport,
    delete_oldest_first,
    load_headers,
    open_active,
    recover,
)
from ._writer import LogWriter
from .errors import LogClosedError

__all__ = ["WriteAheadLog"]


class WriteAheadLog(LogWriter):
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
        self._poison = None
        self._blocked = options.read_only  # closed, read-only or poisoned: the slow path
        self._always = options.sync == "always"
        self._payload_bytes = 0
        self._buffer = []
        self._buffered = 0
        # "interval": the longest a record waits in the process buffer before an append
        # hands the buffer to the OS, even while a slow fsync holds the background syncer
        # (a process crash then loses at most this window); None for the other policies.
        self._handoff = options.sync_interval if options.sync == "interval" else None
        self._handoff_due = 0.0  # monotonic time the oldest buffered record is due
        self._retired = []
        self._file = None
        self._stats = LogStats()
        self._flusher = None
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
