"""``Persisted[T]``: an in-memory object kept durable as snapshot + operation log.

Theory of operation
-------------------
One flat directory holds a wal-db log (``*.wal`` segments) and the object's snapshots,
``snapshot-<LSN, 20 digits>.snap``: the snapshot named ``S`` holds the object after the
operations with LSNs ``1..S``, and records ``{"lsn": S}`` in its meta block.

* ``apply(op)`` appends ``op`` to the log, then applies it to the object. With
  ``sync="always"`` it returns once the operation is durable.
* ``checkpoint()`` syncs the log (so every operation a snapshot holds is durable before
  the snapshot can be), saves the snapshot atomically, deletes all but the newest ``keep``
  snapshots (one directory fsync), then truncates the log before the oldest snapshot
  kept: every kept snapshot can still be brought up to date from the log.
* ``open`` recovers the log, then tries the snapshots newest first. A snapshot is used
  when it loads cleanly, its meta LSN matches its name, and the log holds every record
  after it (``first_lsn <= S + 1`` and ``S <= last_lsn``); otherwise it is skipped and
  the skip is reported (``recovery.fallbacks``) and logged. With no usable snapshot, a
  log that still starts at LSN 1 is replayed onto a fresh object; a log that does not is
  :class:`CorruptSnapshotError` (the state before it is gone).

Crash safety follows from the order: a crash leaves the log holding a prefix of the
applied operations that contains every synced one (wal-db's guarantee), and every
snapshot on disk is a durable state at an LSN the log reaches, so ``open`` rebuilds the
state of a prefix that contains every synced operation.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from wal_db import (
    FileSystem,
    LogLockedError,
    OsFileSystem,
    RecoveryReport,
    WalError,
    WriteAheadLog,
)

from ._layout import TEMP_SUFFIX
from ._protocol import Persistable
from ._snapshot import SnapshotInfo, load, save
from .errors import CorruptSnapshotError, PersistedLockedError, PersistedPoisonedError

__all__ = ["Fallback", "OpenReport", "Persisted", "snapshot_name"]

T = TypeVar("T", bound=Persistable)
_log = logging.getLogger("persist_db")
_NAME = re.compile(r"^snapshot-(\d{20})\.snap$")


def snapshot_name(lsn: int) -> str:
    """The file name of the snapshot taken after LSN ``lsn``."""
    return f"snapshot-{lsn:020d}.snap"


@dataclass(frozen=True)
class Fallback:
    """A snapshot that ``open`` skipped, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class OpenReport:
    """What ``Persisted.open`` found.

    Attributes:
        snapshot: the snapshot file used, or None (the log was replayed from LSN 1).
        snapshot_lsn: the LSN that snapshot holds (0 without one).
        fallbacks: the newer snapshots skipped, newest first, each with its reason.
        replayed: how many log records were applied after the snapshot.
        log: wal-db's report of the log's own recovery.
    """

    snapshot: str | None
    snapshot_lsn: int
    fallbacks: tuple[Fallback, ...]
    replayed: int
    log: RecoveryReport

    @property
    def fell_back(self) -> bool:
        """True when a newer snapshot was skipped."""
        return bool(self.fallbacks)


def _snapshots(fs: FileSystem) -> list[tuple[int, str]]:
    found = [(int(m.group(1)), name) for name in fs.listdir() if (m := _NAME.match(name))]
    return sorted(found, reverse=True)


class Persisted(Generic[T]):
    """An object (see :class:`~persist_db.Persistable`) kept as snapshot + operation log.

    Create with :meth:`open`. Thread-safe: ``apply`` and ``checkpoint`` are serialised.
    """

    def __init__(
        self,
        fs: FileSystem,
        log: WriteAheadLog,
        obj: T,
        report: OpenReport,
        *,
        keep: int,
        compression: str | None,
        level: int | None,
    ):
        self._fs = fs
        self._log = log
        self._obj = obj
        self.recovery = report
        self._keep = keep
        self._compression = compression
        self._level = level
        self._lock = threading.Lock()
        self._poisoned: BaseException | None = None
        self._snapshot_lsn = report.snapshot_lsn if report.snapshot else -1

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str] | FileSystem,
        factory: Callable[[], T],
        *,
        sync: str = "always",
        keep: int = 2,
        compression: str | None = None,
        level: int | None = None,
        segment_size: int | None = None,
        max_payload: int | None = None,
    ) -> Persisted[T]:
        """Open (or create) a persisted object in ``directory``.

        Args:
            directory: a directory path (created if missing, locked for this writer), or
                a file-system object (wal-db's ``FileSystem`` protocol, e.g. ``CrashFS``).
            factory: returns a fresh, empty object; the newest valid snapshot is given to
                it with ``load_snapshot(payload, version)``, then the log is replayed.
            sync: the log's policy: ``"always"`` (``apply`` returns once durable),
                ``"interval"`` or ``"never"`` (durable at ``sync()``/``checkpoint()``).
            keep: how many snapshots to keep (>= 1) for fallback; the log keeps every
                record after the oldest of them.
            compression, level: how ``checkpoint`` compresses snapshots (see ``save``).
            segment_size: the log's segment size (default: wal-db's).
            max_payload: refuse snapshots with a longer payload (as in ``load``).

        Returns:
            The opened :class:`Persisted`; ``.recovery`` says what was found.

        Raises:
            CorruptSnapshotError: no usable snapshot and the log no longer starts at 1.
            UnsupportedFormatError: from the object's ``load_snapshot``, or a snapshot
                file of a newer format (neither is skipped: the code needs upgrading).
            WrongKindError: a snapshot of another kind than ``factory()``'s.
            PersistedLockedError: another writer has the directory open.
            wal_db.CorruptLogError: the log is damaged beyond what a crash explains.
            ValueError, TypeError: bad arguments. OSError: I/O failures.
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an int >= 1, not {keep!r}")
        options = {} if segment_size is None else {"segment_size": segment_size}
        try:
            log = WriteAheadLog.open(directory, sync=sync, **options)  # type: ignore[arg-type]
        except LogLockedError as exc:
            raise PersistedLockedError(f"{directory} is open in another writer") from exc
        fs: FileSystem = directory if isinstance(directory, FileSystem) else OsFileSystem(directory)
        try:
            obj, report = _recover(fs, log, factory, max_payload)
            return cls(fs, log, obj, report, keep=keep, compression=compression, level=level)
        except BaseException:
            log.close()
            raise

    @property
    def obj(self) -> T:
        """The object itself (read it freely; change it only through :meth:`apply`)."""
        return self._obj

    @property
    def last_lsn(self) -> int:
        """The LSN of the last operation applied (0 if none)."""
        return self._log.last_lsn

    @property
    def durable_lsn(self) -> int:
        """The highest LSN known durable."""
        return self._log.durable_lsn

    def _check(self) -> None:
        if self._poisoned is not None:
            raise PersistedPoisonedError(
                "an earlier operation failed half-way; close and reopen"
            ) from self._poisoned

    def apply(self, op: bytes) -> int:
        """Log ``op``, then apply it to the object.

        Args:
            op: the operation, as bytes (any length up to wal-db's record limit).

        Returns:
            The operation's LSN. With ``sync="always"`` it is durable on return.

        Raises:
            PersistedPoisonedError: the log failed (the operation may or may not survive
                a crash), or an earlier call failed half-way.
            TypeError, ValueError: ``op`` is not bytes-like or is too long (nothing done).
            Anything the object's ``apply`` raises: the operation is logged but its
                effect is unknown, so the ``Persisted`` is poisoned: reopen to replay.
        """
        with self._lock:
            self._check()
            try:
                lsn = self._log.append(op)
            except (TypeError, ValueError):
                raise
            except WalError as exc:
                self._poisoned = exc
                raise PersistedPoisonedError(f"the log failed: {exc}") from exc
            try:
                self._obj.apply(op)
            except BaseException as exc:
                self._poisoned = exc
                raise
            return lsn

    def sync(self) -> None:
        """Make every applied operation durable (for ``sync="never"``/``"interval"``).

        Raises:
            PersistedPoisonedError: the log failed.
        """
        with self._lock:
            self._check()
            self._sync_log()

    def _sync_log(self) -> None:
        try:
            self._log.sync()
        except WalError as exc:
            self._poisoned = exc
            raise PersistedPoisonedError(f"the log failed: {exc}") from exc

    def checkpoint(self) -> SnapshotInfo | None:
        """Write a snapshot of the object atomically, then trim old snapshots and the log.

        Snapshots beyond the newest ``keep`` are deleted, and so is any snapshot named
        past the log's end (a leftover ``open`` could never use).

        Returns:
            The new snapshot's info, or None when nothing was applied since the last one.

        Raises:
            PersistedPoisonedError: the log failed.
            OSError: the snapshot could not be written (the previous state on disk is
                intact and the object stays usable).
            Anything the object's ``to_snapshot`` raises (nothing is changed).
        """
        with self._lock:
            self._check()
            lsn = self._log.last_lsn
            self._sync_log()
            if lsn == self._snapshot_lsn:
                return None
            obj = self._obj
            info = save(
                snapshot_name(lsn),
                obj.to_snapshot(),
                kind=obj.kind,
                version=obj.format_version,
                compression=self._compression,
                level=self._level,
                meta={"lsn": lsn},
                fs=self._fs,
            )
            self._snapshot_lsn = lsn
            self._prune(lsn)
            return info

    def _prune(self, lsn: int) -> None:
        # A snapshot named past the log's end can never be used (open skips it), so it
        # must not count among the kept ones either.
        found = _snapshots(self._fs)
        snapshots = [entry for entry in found if entry[0] <= lsn]
        doomed = [entry for entry in found if entry[0] > lsn] + snapshots[self._keep :]
        for _, name in doomed:
            self._fs.unlink(name)
        if doomed:
            self._fs.fsync_dir()
        kept = snapshots[: self._keep]
        try:
            self._log.truncate_before(kept[-1][0] + 1)
        except WalError as exc:
            self._poisoned = exc
            raise PersistedPoisonedError(f"the log failed: {exc}") from exc

    def snapshots(self) -> list[str]:
        """The snapshot files in the directory, newest first."""
        return [name for _, name in _snapshots(self._fs)]

    def close(self) -> None:
        """Close the log (syncing what was applied, unless poisoned). Idempotent."""
        with self._lock:
            self._log.close()

    def __enter__(self) -> Persisted[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recover(
    fs: FileSystem, log: WriteAheadLog, factory: Callable[[], T], max_payload: int | None
) -> tuple[T, OpenReport]:
    names = fs.listdir()
    leftovers = [n for n in names if n.endswith(TEMP_SUFFIX) and _NAME.match(n[:-4])]
    for name in leftovers:
        fs.unlink(name)
    if leftovers:
        fs.fsync_dir()
    obj = factory()
    kind = obj.kind
    fallbacks: list[Fallback] = []
    for lsn, name in _snapshots(fs):
        reason = _unusable(fs, log, name, lsn, kind, max_payload, obj)
        if reason is None:
            replayed = _replay(log, obj, lsn)
            report = OpenReport(name, lsn, tuple(fallbacks), replayed, log.recovery)
            return obj, report
        _log.warning("persist_db: skipping snapshot %s: %s", name, reason)
        fallbacks.append(Fallback(name, reason))
        obj = factory()
    if log.first_lsn != 1:
        raise CorruptSnapshotError(
            f"no usable snapshot, and the log starts at LSN {log.first_lsn}, not 1: "
            f"the state before it is lost (skipped: {[f.name for f in fallbacks]})"
        )
    replayed = _replay(log, obj, 0)
    return obj, OpenReport(None, 0, tuple(fallbacks), replayed, log.recovery)


def _unusable(
    fs: FileSystem,
    log: WriteAheadLog,
    name: str,
    lsn: int,
    kind: str,
    max_payload: int | None,
    obj: Persistable,
) -> str | None:
    """Why snapshot ``name`` cannot be used, or None after loading it into ``obj``."""
    if not log.first_lsn <= lsn + 1:
        return f"the log starts at LSN {log.first_lsn}, after the snapshot's {lsn} + 1"
    if lsn > log.last_lsn:
        return f"the snapshot holds LSN {lsn} but the log ends at {log.last_lsn}"
    try:
        snap = load(name, kind=kind, fs=fs, max_payload=max_payload)
    except CorruptSnapshotError as exc:
        return exc.reason if exc.offset is None else f"{exc.reason} at offset {exc.offset}"
    meta = snap.meta
    if not isinstance(meta, dict) or meta.get("lsn") != lsn:
        return f"its meta {meta!r} does not record LSN {lsn}"
    obj.load_snapshot(snap.payload, snap.version)
    return None


def _replay(log: WriteAheadLog, obj: Persistable, after: int) -> int:
    count = 0
    for _, op in log.replay(after + 1):
        obj.apply(op)
        count += 1
    return count
