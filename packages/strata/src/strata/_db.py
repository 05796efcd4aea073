"""``Engine``: the commit path, snapshots, checkpoints, GC and lifetime behind ``Database``.

The data flow of a commit (docs/architecture.md, D16): under the commit lock, validate
(write-write conflicts, serializable read and range checks), take the next version and a
timestamp, append one WAL record, apply the versions to the in-memory index, and — except
in ``always`` mode — publish. ``always`` syncs the WAL after leaving the lock, so
committers share fsyncs (wal-db's group commit), then publishes. Readers see versions up
to the published one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from index_db import IndexDbError
from lock_db import DeadlockError as LockDeadlockError
from lock_db import LockError, LockManager, LockMode
from lock_db import LockTimeoutError as LockWaitTimeoutError
from page_db import PageError
from wal_db import RecordTooLargeError, WalError

from . import _records as R
from ._codec import decode_key
from ._durable import SYSTEM_RETENTION, Disk
from ._gcpause import gc_paused
from ._mvcc import VersionStore
from ._retention import (
    KeepAll,
    RetentionPolicy,
    collect_garbage,
    decode_policy,
    encode_policy,
)
from .errors import (
    ConflictError,
    DatabaseClosedError,
    DatabasePoisonedError,
    DeadlockError,
    LockTimeoutError,
    ReadOnlyError,
    StrataError,
    StrataUsageError,
    TransactionAbortedError,
    ValueTooLargeError,
)

DURABILITY_MODES = ("cache", "standard", "always")
Op = tuple[int, bytes, "bytes | None"]
_owners = itertools.count(1)


class _NeedLocksError(Exception):
    """An unlocked commit found a pessimistic transaction running (it must lock first)."""


class Engine:
    """The shared state behind a :class:`~strata.Database` (the public class adds the API)."""

    def __init__(
        self,
        disk: Disk | None,
        *,
        durability: str,
        read_only: bool,
        path: str | None,
        checkpoint_bytes: int,
        checkpoint_interval: float,
        gc_interval: float,
        lock_timeout: float | None,
    ) -> None:
        self._disk = disk
        self.durability = durability
        self.read_only = read_only
        self.path = path
        self._versions = VersionStore(track_changes=disk is not None)
        self._settings: dict[bytes, bytes] = {}
        self._retention: RetentionPolicy = KeepAll()
        self._commit_lock = threading.Lock()
        self._maint_lock = threading.RLock()
        self._published_cv = threading.Condition(threading.Lock())
        self._snap_lock = threading.Lock()
        self._snapshots: dict[int, int] = {}
        self._snap_seq = 0
        self._last_version = 0
        self._last_ts = 0
        self._last_lsn = 0
        self.published = 0
        self._wal_bytes = 0
        self._closed = False  # closed or poisoned: the hot paths check this one flag
        self._shut = False  # close() ran
        self._poisoned: BaseException | None = None
        self.locks = LockManager(default_timeout=lock_timeout)
        self.locks_timeout = lock_timeout
        self.pessimistic_active = 0
        self._checkpoint_bytes = checkpoint_bytes
        self._checkpoint_interval = checkpoint_interval
        self._gc_interval = gc_interval
        self.counters = {
            "commits": 0,
            "conflicts": 0,
            "checkpoints": 0,
            "gc_runs": 0,
            "gc_versions_removed": 0,
            "gc_keys_swept": 0,
            "aborts": 0,
        }
        self.last_checkpoint_time = time.time()
        self._last_gc = time.monotonic()
        self.last_gc_time: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if disk is not None:
            with gc_paused():
                disk.load(self._versions, self._replay_commit, self._settings)
            self._last_lsn = disk.wal.last_lsn
            self.last_checkpoint_time = disk.meta.time_ns / 1e9
            self._last_version = max(self._last_version, disk.meta.version)
            self._last_ts = max(self._last_ts, disk.meta.ts_ns)
            self.published = self._last_version
            self._load_settings()
        if not read_only:
            self._thread = threading.Thread(
                target=self._maintain, name="strata-maintenance", daemon=True
            )
            self._thread.start()

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

    # -- retention and GC -------------------------------------------------------------------

    @property
    def retention(self) -> RetentionPolicy:
        """The stored retention policy."""
        return self._retention

    def set_retention(self, policy: RetentionPolicy) -> int:
        """Store ``policy`` (a logged, versioned change) and return its version."""
        if not isinstance(policy, RetentionPolicy):
            raise StrataUsageError(f"expected a RetentionPolicy, got {policy!r}")
        return self.commit([(R.OP_SYSTEM, SYSTEM_RETENTION, encode_policy(policy))])

    def gc(self) -> dict[str, int]:
        """Remove the versions no open snapshot and no retention policy needs.

        Returns:
            ``{"versions_removed": n, "keys_swept": m}``.
        """
        self.check_writable()
        with self._maint_lock:
            removed, swept = collect_garbage(
                self._versions, self._retention, self.horizon(), self._commit_lock
            )
            self.counters["gc_runs"] += 1
            self.counters["gc_versions_removed"] += removed
            self.counters["gc_keys_swept"] += swept
            self.last_gc_time = time.time()
            self._last_gc = time.monotonic()
            return {"versions_removed": removed, "keys_swept": swept}

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self) -> bool:
        """Make every commit so far part of the page file and cut the WAL before it.

        Returns:
            Whether a checkpoint was written (``False`` in cache mode or with nothing new).
        """
        self.check_writable()
        disk = self._disk
        if disk is None:
            return False
        with self._maint_lock:
            versions = self._versions
            with self._commit_lock:
                if (
                    self._last_version == disk.meta.version
                    and not versions.removed
                    and disk.meta.swept_version == versions.swept_version
                ):
                    return False
                dirty, versions.dirty = versions.dirty, set()
                removed, versions.removed = versions.removed, {}
                version, ts, lsn = self._last_version, self._last_ts, self._last_lsn
                settings = dict(self._settings)
                wal_bytes = self._wal_bytes
            try:
                disk.checkpoint(versions, dirty, removed, settings, version, ts, lsn)
            except (PageError, WalError, IndexDbError, OSError) as exc:
                raise self._poison(exc) from exc
            with self._commit_lock:
                self._wal_bytes -= wal_bytes
            self.counters["checkpoints"] += 1
            self.last_checkpoint_time = time.time()
            return True

    def compact_pages(self) -> int:
        """Shrink the page file to the pages the last checkpoint uses (see
        :meth:`Disk.compact_pages`), and drop the WAL if that checkpoint covers all of
        it; returns the page-file bytes released, 0 in cache mode. Commits continue
        meanwhile (a record appended after the check keeps its segment: wal-db deletes
        only segments wholly below the checkpoint)."""
        self.check_writable()
        disk = self._disk
        if disk is None:
            return 0
        with self._maint_lock:
            try:
                released = disk.compact_pages()
                disk.drop_checkpointed_log()
            except (PageError, WalError, OSError) as exc:
                raise self._poison(exc) from exc
            return released

    def _maintain(self) -> None:
        """Background checkpoints (by WAL size and age) and GC (by ``gc_interval``)."""
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set() or self._closed or self._poisoned is not None:
                return
            try:
                disk = self._disk
                if disk is not None and (
                    self._wal_bytes >= self._checkpoint_bytes
                    or (
                        time.time() - self.last_checkpoint_time >= self._checkpoint_interval
                        and self._last_version != disk.meta.version
                    )
                ):
                    self.checkpoint()
                if (
                    self._retention != KeepAll()
                    and time.monotonic() - self._last_gc >= self._gc_interval
                ):
                    self.gc()
            except StrataError:
                return  # poisoned or closed: the next call in the foreground reports it

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the maintenance thread, checkpoint (file modes) and close the files."""
        if self._shut:
            return
        self._shut = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if self._disk is not None and not self.read_only and self._poisoned is None:
                with self._maint_lock:
                    self.checkpoint()
                    with self._commit_lock:  # commits after this raise DatabaseClosedError
                        self._closed = True
                    try:
                        self._disk.drop_checkpointed_log()
                    except (WalError, OSError) as exc:
                        raise self._poison(exc) from exc
        finally:
            with self._commit_lock:
                self._closed = True
            if self._disk is not None:
                try:
                    self._disk.close()
                except (PageError, WalError, OSError) as exc:
                    raise self._poison(exc) from exc

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._shut
