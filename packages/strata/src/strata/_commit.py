"""``CommitPath``: state checks, reader snapshots and the commit path, the base of ``Engine``.

The data flow of a commit (docs/architecture.md, D16): under the commit lock, validate
(write-write conflicts, serializable read and range checks), take the next version and a
timestamp, append one WAL record, apply the versions to the in-memory index, and — except
in ``always`` mode — publish. ``always`` syncs the WAL after leaving the lock, so
committers share fsyncs (wal-db's group commit), then publishes. Readers see versions up
to the published one.

Commits that take no locks coexist with pessimistic transactions through
``pessimistic_active``: while one runs, autocommits take X locks on the keys they write.
:class:`~strata._db.Engine` extends this class with the wiring, checkpoints, GC, the
maintenance thread and closing; its constructor sets the state declared here.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lock_db import DeadlockError as LockDeadlockError
from lock_db import LockError, LockManager, LockMode
from lock_db import LockTimeoutError as LockWaitTimeoutError
from wal_db import RecordTooLargeError, WalError

from . import _records as R
from ._codec import decode_key
from ._durable import SYSTEM_RETENTION, Disk
from ._mvcc import VersionStore
from ._retention import RetentionPolicy, decode_policy
from .errors import (
    ConflictError,
    DatabaseClosedError,
    DatabasePoisonedError,
    DeadlockError,
    LockTimeoutError,
    ReadOnlyError,
    StrataError,
    TransactionAbortedError,
    ValueTooLargeError,
)

__all__ = ["CommitPath", "Op"]

Op = tuple[int, bytes, "bytes | None"]
_owners = itertools.count(1)


class _NeedLocksError(Exception):
    """An unlocked commit found a pessimistic transaction running (it must lock first)."""


class CommitPath:
    """Commits, snapshots and the closed/poisoned checks shared by every engine call."""

    durability: str
    read_only: bool
    published: int  # the newest version readers see
    counters: dict[str, int]
    locks: LockManager
    pessimistic_active: int
    _disk: Disk | None
    _versions: VersionStore
    _settings: dict[bytes, bytes]
    _retention: RetentionPolicy
    _commit_lock: threading.Lock
    _published_cv: threading.Condition
    _snap_lock: threading.Lock
    _snapshots: dict[int, int]  # token -> the version that reader reads at
    _snap_seq: int
    _last_version: int
    _last_ts: int
    _last_lsn: int
    _wal_bytes: int  # WAL bytes written since the last checkpoint
    _checkpoint_bytes: int
    _wake: threading.Event  # wakes the maintenance thread
    _closed: bool
    _shut: bool
    _poisoned: BaseException | None

    # -- state checks --------------------------------------------------------------------

    def check_open(self) -> None:
        """Raise if the database is closed or poisoned."""
        if self._poisoned is not None and not self._shut:
            raise DatabasePoisonedError(
                f"a write or fsync failed ({self._poisoned}); reopen the database to recover "
                "what is durable"
            ) from self._poisoned
        if self._closed:
            raise DatabaseClosedError("the database is closed")

    def check_writable(self) -> None:
        """Raise unless writes are allowed."""
        self.check_open()
        if self.read_only:
            raise ReadOnlyError("the database was opened read-only")

    def _poison(self, exc: BaseException) -> DatabasePoisonedError:
        if self._poisoned is None:
            self._poisoned = exc
            self._closed = True
        err = DatabasePoisonedError(
            f"a write or fsync failed ({exc}); the database refuses further use until it is "
            "reopened"
        )
        err.__cause__ = exc
        return err

    # -- snapshots -----------------------------------------------------------------------

    def begin_snapshot(self) -> tuple[int, int]:
        """Register a reader at the published version; returns ``(token, version)``."""
        with self._snap_lock:
            self._snap_seq += 1
            token = self._snap_seq
            version = self.published
            self._snapshots[token] = version
        return token, version

    def end_snapshot(self, token: int) -> None:
        """Forget a reader registered by :meth:`begin_snapshot`."""
        with self._snap_lock:
            self._snapshots.pop(token, None)

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A registered snapshot for the duration of a ``with`` block."""
        token, version = self.begin_snapshot()
        try:
            yield version
        finally:
            self.end_snapshot(token)

    def horizon(self) -> int:
        """The oldest version any registered reader may read at."""
        with self._snap_lock:
            return min(self._snapshots.values(), default=self.published)

    def open_snapshots(self) -> int:
        """How many readers are registered."""
        return len(self._snapshots)

    def wait_published(self) -> None:
        """Wait until every applied commit is published (pessimistic transactions start so)."""
        target = self._last_version
        with self._published_cv:
            while self.published < target:
                self._published_cv.wait(0.05)

    # -- commit --------------------------------------------------------------------------

    def commit(
        self,
        ops: list[Op],
        snapshot: int | None = None,
        validate: Callable[[], None] | None = None,
        *,
        unlocked: bool = False,
    ) -> int:
        """Commit ``ops`` atomically and return the new version.

        Args:
            ops: ``(op, encoded key, encoded value or None)``, one per key.
            snapshot: check write-write conflicts against this snapshot (``None``: a blind
                write at the latest version).
            validate: extra checks run under the commit lock (serializable validation).
            unlocked: the caller took no X locks because no pessimistic transaction was
                running; if one began since, raise ``_NeedLocksError`` (nothing is written).

        Raises:
            ConflictError: first committer wins.
            ValueTooLargeError: the commit record is over the WAL's limit.
            DatabasePoisonedError, DatabaseClosedError, ReadOnlyError.
        """
        disk = self._disk
        always = self.durability == "always"
        with self._commit_lock:
            version, lsn = self._commit_locked(ops, snapshot, validate, unlocked, always)
        if always and disk is not None:
            # outside the lock: committers share fsyncs (wal-db's group commit)
            try:
                disk.wal.sync(lsn)
            except WalError as exc:
                raise self._poison(exc) from exc
            self.publish(version)
        if self._wal_bytes >= self._checkpoint_bytes:
            self._wake.set()
        return version

    def publish(self, version: int) -> None:
        """Make every version up to ``version`` visible (always mode, once durable)."""
        with self._published_cv:
            self.published = max(self.published, version)
            self._published_cv.notify_all()

    def _commit_locked(
        self,
        ops: list[Op],
        snapshot: int | None,
        validate: Callable[[], None] | None,
        unlocked: bool,
        always: bool,
    ) -> tuple[int, int]:
        """The part of :meth:`commit` under the commit lock; returns (version, LSN)."""
        disk = self._disk
        self.check_writable()
        if unlocked and self.pessimistic_active:
            raise _NeedLocksError
        if snapshot is not None:
            chains = self._versions.chains
            for _op, key, _value in ops:
                chain = chains.get(key)
                if chain and chain[-1][0] > snapshot:
                    self.counters["conflicts"] += 1
                    space, user = decode_key(key)
                    raise ConflictError(
                        f"key {user!r} in keyspace {space!r} was committed by another "
                        f"transaction (version {chain[-1][0]}) after this one's snapshot "
                        f"(version {snapshot})",
                        key=user,
                        keyspace=space,
                    )
        if validate is not None:
            validate()
        version = self._last_version + 1
        ts = time.time_ns()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        lsn = 0
        if disk is not None:
            payload = R.encode_commit(version, ts, ops)
            try:
                lsn = disk.wal.append(payload)
            except RecordTooLargeError as exc:
                raise ValueTooLargeError(
                    f"the commit record is {len(payload)} bytes, over the "
                    f"{exc.limit if hasattr(exc, 'limit') else 'WAL'} limit; split the "
                    "transaction"
                ) from exc
            except WalError as exc:
                raise self._poison(exc) from exc
            self._wal_bytes += len(payload)
        self._apply(version, ts, ops)
        self._last_version = version
        self._last_ts = ts
        self._last_lsn = lsn
        self.counters["commits"] += 1
        if not always:
            self.published = version
        return version, lsn

    def autocommit(
        self,
        ops: list[Op],
        validate: Callable[[], None] | None = None,
        *,
        snapshot: int | None = None,
    ) -> int:
        """:meth:`commit`, first taking X locks on the written keys (and IX on their
        keyspaces) while pessimistic transactions run, so it respects their locks."""
        if not self.pessimistic_active:
            try:
                return self.commit(ops, snapshot, validate, unlocked=True)
            except _NeedLocksError:
                pass  # a pessimistic transaction began meanwhile: take the locks
        owner = ("autocommit", next(_owners))
        try:
            for _op, key, _value in sorted(ops, key=lambda op: op[1]):
                space = key[1 : key[0] + 1].decode("utf-8")
                self.locks.acquire(owner, ("keyspace", space), LockMode.IX)
                self.locks.acquire_key(owner, space, key, LockMode.X)
            return self.commit(ops, snapshot, validate)
        except LockError as exc:
            self.counters["aborts"] += 1
            raise self.translate_lock_error(exc) from exc
        finally:
            self.locks.release_all(owner)

    def translate_lock_error(self, exc: LockError) -> StrataError:
        """The strata error for a lock-db failure."""
        if isinstance(exc, LockDeadlockError):
            return DeadlockError(f"deadlock: this transaction was chosen as the victim ({exc})")
        if isinstance(exc, LockWaitTimeoutError):
            return LockTimeoutError(f"lock wait timed out ({exc})")
        return TransactionAbortedError(f"lock request failed ({exc})")

    def begin_pessimistic(self) -> None:
        """Count a pessimistic transaction in; wait until earlier commits are published."""
        with self._commit_lock:
            self.pessimistic_active += 1
        self.wait_published()

    def end_pessimistic(self) -> None:
        """Count a pessimistic transaction out."""
        with self._commit_lock:
            self.pessimistic_active -= 1

    def _apply(self, version: int, ts: int, ops: list[Op]) -> None:
        user: list[tuple[bytes, bytes | None]] = []
        for op, key, value in ops:
            if op == R.OP_SYSTEM:
                assert value is not None
                self._settings[key] = value
                if key == SYSTEM_RETENTION:
                    self._retention = decode_policy(value)
            else:
                user.append((key, value))
        self._versions.apply(version, ts, user)

    def _replay_commit(self, version: int, ts: int, ops: list[Op]) -> None:
        if version <= self._last_version:
            return  # already in the checkpoint
        self._apply(version, ts, ops)
        self._last_version = version
        self._last_ts = max(self._last_ts, ts)

    def _load_settings(self) -> None:
        raw = self._settings.get(SYSTEM_RETENTION)
        if raw is not None:
            self._retention = decode_policy(raw)
