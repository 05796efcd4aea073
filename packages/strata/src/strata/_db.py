"""``Engine``: the shared state behind ``Database``: wiring, checkpoints, GC and lifetime.

The constructor loads the last checkpoint and replays the WAL into the in-memory index,
then starts the maintenance thread, which checkpoints by WAL size and age and collects
garbage by ``gc_interval``. The commit path and reader snapshots are the base class,
:class:`~strata._commit.CommitPath` in ``_commit``, with the data flow of a commit.
"""

from __future__ import annotations

import threading
import time

from index_db import IndexDbError
from lock_db import LockManager
from page_db import PageError
from wal_db import WalError

from . import _records as R
from ._commit import CommitPath
from ._durable import SYSTEM_RETENTION, Disk
from ._gcpause import gc_paused
from ._mvcc import VersionStore
from ._retention import (
    KeepAll,
    RetentionPolicy,
    collect_garbage,
    encode_policy,
)
from .errors import StrataError, StrataUsageError

DURABILITY_MODES = ("cache", "standard", "always")


class Engine(CommitPath):
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
        self._settings = {}
        self._retention = KeepAll()
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
        self._poisoned = None
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
