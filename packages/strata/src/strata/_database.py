"""The public entry points: ``strata.open``, ``strata.open_memory`` and ``Database``."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from wal_db import FileSystem

from ._backup import backup as write_backup
from ._db import DURABILITY_MODES, Engine
from ._durable import Disk
from ._kv import KV
from ._retention import RetentionPolicy
from ._txn import Transaction
from ._verify import collect_stats, file_sizes, verify_all
from .errors import CorruptionError, StrataUsageError, TransactionAbortedError

T = TypeVar("T")
DEFAULT_CHECKPOINT_BYTES = 64 * 1024 * 1024
DEFAULT_CHECKPOINT_INTERVAL = 300.0
DEFAULT_GC_INTERVAL = 60.0
DEFAULT_LOCK_TIMEOUT = 5.0


def open(
    path: str | os.PathLike[str] | FileSystem,
    *,
    durability: str = "standard",
    read_only: bool = False,
    page_size: int = 4096,
    cache_pages: int = 2048,
    checkpoint_bytes: int = DEFAULT_CHECKPOINT_BYTES,
    checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    gc_interval: float = DEFAULT_GC_INTERVAL,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    sync_interval: float = 0.1,
    sync_every: int = 1000,
) -> Database:
    """Open (or create) the database in directory ``path``.

    Args:
        path: a directory (created if missing, unless ``read_only``); or a
            ``wal_db.FileSystem`` (tests run the engine on a crash-simulating one).
        durability: ``"standard"`` (the WAL is synced in the background at least every
            ``sync_interval`` seconds or ``sync_every`` commits: a crash loses at most that
            window) or ``"always"`` (a commit returns once its record is durable;
            concurrent commits share fsyncs). ``"cache"`` is ``open_memory()``.
        read_only: open beside a live writer to read the state as of the open (no lock,
            no writes).
        page_size: page-db page size of a new database (an existing one keeps its own).
        cache_pages: page-db buffer pool size in pages (used by checkpoints and opening).
        checkpoint_bytes: checkpoint in the background once the WAL grew this much.
        checkpoint_interval: checkpoint in the background at least this often (seconds)
            while there are changes.
        gc_interval: run garbage collection in the background this often (seconds) when
            the retention policy is not ``KeepAll``.
        lock_timeout: how long pessimistic transactions wait for a lock (None: forever).
        sync_interval, sync_every: the ``standard`` mode's window.

    Returns:
        The open :class:`Database`.

    Raises:
        DatabaseLockedError: another writer has the directory open (the message names it).
        CorruptionError: files that fail validation; nothing is changed.
        StrataUsageError: bad arguments, or no database to open read-only.
    """
    if durability not in ("standard", "always"):
        if durability == "cache":
            raise StrataUsageError("durability='cache' keeps no files: use strata.open_memory()")
        raise StrataUsageError(f"durability must be one of {DURABILITY_MODES}, got {durability!r}")
    for name, value in (("checkpoint_bytes", checkpoint_bytes), ("sync_every", sync_every)):
        if type(value) is not int or value < 1:
            raise StrataUsageError(f"{name} must be a positive int, got {value!r}")
    for name, number in (
        ("checkpoint_interval", checkpoint_interval),
        ("gc_interval", gc_interval),
        ("sync_interval", sync_interval),
    ):
        if not isinstance(number, (int, float)) or not number > 0:
            raise StrataUsageError(f"{name} must be a positive number, got {number!r}")
    wal_options: dict[str, Any] = (
        {"sync": "interval", "sync_interval": sync_interval, "sync_every": sync_every}
        if durability == "standard"
        else {"sync": "never"}
    )  # always: commit() syncs
    # a read-only open races the writer's checkpoints (pages reused, WAL cut under it):
    # that shows as corruption, and opening again at the newer checkpoint resolves it
    attempts = 5 if read_only else 1
    for attempt in range(attempts):
        where: str | None = None
        if isinstance(path, (str, os.PathLike)):
            where = directory = os.fspath(path)
            disk = Disk.open_path(
                directory,
                read_only=read_only,
                wal_options=wal_options,
                page_size=page_size,
                pool_pages=cache_pages,
            )
        else:
            disk = Disk.open_fs(
                path,
                read_only=read_only,
                wal_options=wal_options,
                page_size=page_size,
                pool_pages=cache_pages,
            )
        try:
            engine = Engine(
                disk,
                durability=durability,
                read_only=read_only,
                path=where,
                checkpoint_bytes=checkpoint_bytes,
                checkpoint_interval=checkpoint_interval,
                gc_interval=gc_interval,
                lock_timeout=lock_timeout,
            )
        except CorruptionError:
            disk.close()
            if attempt + 1 == attempts:
                raise
            time.sleep(0.01 * (attempt + 1))
            continue
        except BaseException:
            disk.close()
            raise
        return Database(engine)
    raise AssertionError("unreachable")  # pragma: no cover


def open_memory(
    *, gc_interval: float = DEFAULT_GC_INTERVAL, lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT
) -> Database:
    """A database in ``cache`` mode: memory only, no files; everything is gone at close.

    Args:
        gc_interval, lock_timeout: as for :func:`open`.
    """
    engine = Engine(
        None,
        durability="cache",
        read_only=False,
        path=None,
        checkpoint_bytes=DEFAULT_CHECKPOINT_BYTES,
        checkpoint_interval=DEFAULT_CHECKPOINT_INTERVAL,
        gc_interval=gc_interval,
        lock_timeout=lock_timeout,
    )
    return Database(engine)


class Database:
    """An open database. Thread-safe: any number of threads may share one. A context
    manager: ``close()`` on exit.

    Attributes:
        kv: the KV primitive of the ``"default"`` keyspace (autocommit calls).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._spaces: dict[str, KV] = {}
        self._spaces_lock = threading.Lock()
        self.kv = self.keyspace("default")

    def keyspace(self, name: str) -> KV:
        """The KV primitive of keyspace ``name`` (a separate namespace of keys, 1 to 64
        UTF-8 bytes; ``Composite`` retention policies override per keyspace)."""
        space = self._spaces.get(name)
        if space is None:
            with self._spaces_lock:
                space = self._spaces.get(name)
                if space is None:
                    space = self._spaces[name] = KV(self._engine, name)
        return space

    def transaction(
        self,
        *,
        isolation: str = "snapshot",
        mode: str = "optimistic",
        read_only: bool = False,
        lock_timeout: float | None = None,
    ) -> Transaction:
        """Begin a transaction (use it in a ``with`` block).

        Args:
            isolation: ``"snapshot"`` (first committer wins on write-write conflicts) or
                ``"serializable"`` (also validates the keys read and ranges scanned).
            mode: ``"optimistic"`` (validate at commit) or ``"pessimistic"`` (lock-db
                locks taken as it goes; serializable by strict two-phase locking).
            read_only: refuse writes.
            lock_timeout: seconds a pessimistic lock request waits (default: the
                database's ``lock_timeout``).

        Raises:
            StrataUsageError, ReadOnlyError, DatabaseClosedError.
        """
        timeout = self._engine.locks_timeout if lock_timeout is None else lock_timeout
        return Transaction(
            self._engine, isolation=isolation, mode=mode, read_only=read_only, lock_timeout=timeout
        )

    def run_transaction(
        self,
        fn: Callable[[Transaction], T],
        *,
        retries: int = 10,
        isolation: str = "snapshot",
        mode: str = "optimistic",
        backoff: float = 0.001,
        max_backoff: float = 0.1,
    ) -> T:
        """Run ``fn(tx)`` in a transaction and commit, retrying conflicts and deadlocks.

        Args:
            fn: the work; it may run several times, so it should have no other effects.
            retries: retries after the first attempt.
            isolation, mode: as for :meth:`transaction`.
            backoff, max_backoff: the first and the largest wait between attempts
                (exponential, with jitter).

        Returns:
            What ``fn`` returned in the attempt that committed.

        Raises:
            TransactionAbortedError: the last attempt's conflict, deadlock or timeout.
        """
        if type(retries) is not int or retries < 0:
            raise StrataUsageError(f"retries must be an int ≥ 0, got {retries!r}")
        delay = backoff
        for attempt in range(retries + 1):
            tx = self.transaction(isolation=isolation, mode=mode)
            try:
                with tx:
                    result = fn(tx)
                return result
            except TransactionAbortedError:
                if attempt == retries:
                    raise
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- maintenance -------------------------------------------------------------------

    def checkpoint(self) -> bool:
        """Write every commit so far into the page file and cut the WAL before it.

        Returns:
            Whether a checkpoint was written (False in cache mode or with nothing new).
        """
        return self._engine.checkpoint()

    def gc(self) -> dict[str, int]:
        """Run garbage collection now: remove the versions that neither the retention
        policy nor an open snapshot needs, and sweep deleted keys it allows.

        Returns:
            ``{"versions_removed": n, "keys_swept": m}``.
        """
        return self._engine.gc()

    def compact(self) -> dict[str, Any]:
        """Checkpoint, collect garbage, checkpoint again (so the freed pages return to
        page-db's free list and the WAL is cut), then shrink the page file: pages move
        down into the free slots and the file is cut after the last one in use.

        Writers continue meanwhile; the shrink reads and writes every page it moves.

        Returns:
            GC figures, ``page_bytes_released``, and the file sizes before and after.

        Raises:
            DatabaseClosedError, ReadOnlyError: the database cannot be written.
        """
        engine = self._engine
        before = file_sizes(engine)
        engine.checkpoint()
        figures: dict[str, Any] = dict(engine.gc())
        engine.checkpoint()
        figures["page_bytes_released"] = engine.compact_pages()
        figures["bytes_before"] = before
        figures["bytes_after"] = file_sizes(engine)
        return figures

    @property
    def retention(self) -> RetentionPolicy:
        """The retention policy stored in the database (``KeepAll()`` by default)."""
        return self._engine.retention

    def set_retention(self, policy: RetentionPolicy) -> int:
        """Store a new retention policy (a logged commit); returns its version."""
        return self._engine.set_retention(policy)

    def backup(
        self, dest: str | os.PathLike[str], *, compression: str | None = "zstd"
    ) -> dict[str, Any]:
        """Write a consistent online copy of the database to the file ``dest``.

        Writers continue while it runs; the copy holds every retained version up to the
        version published when the backup began.

        Args:
            dest: the backup file to write (replaced atomically).
            compression: ``"zstd"``, ``"lz4"`` or ``None``.

        Returns:
            ``{"version", "keys", "versions", "bytes"}``.
        """
        return write_backup(self._engine, os.fspath(dest), compression)

    def stats(self) -> dict[str, Any]:
        """Sizes, counts, cache, WAL, checkpoint and GC figures (see docs/API.md)."""
        return collect_stats(self._engine)

    def verify(self) -> dict[str, Any]:
        """Check every layer: page checksums and B+tree structure, every WAL record, and
        that the pages and the in-memory index agree.

        Returns:
            A report: ``ok`` (bool), ``errors`` (list of str) and what was checked.
        """
        return verify_all(self._engine)

    # -- information and lifetime ------------------------------------------------------

    @property
    def version(self) -> int:
        """The newest committed (published) version."""
        return self._engine.published

    @property
    def durability(self) -> str:
        """``"cache"``, ``"standard"`` or ``"always"``."""
        return self._engine.durability

    @property
    def path(self) -> str | None:
        """The database directory (``None`` in cache mode or on a custom file system)."""
        return self._engine.path

    @property
    def read_only(self) -> bool:
        """Whether the database was opened read-only."""
        return self._engine.read_only

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran."""
        return self._engine.closed

    def close(self) -> None:
        """Checkpoint (file modes), stop background work and release the files;
        idempotent. Transactions still open can no longer commit."""
        self._engine.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or ("memory" if self.durability == "cache" else "custom fs")
        state = "closed" if self.closed else f"version {self.version}"
        return f"<strata Database {where} {self.durability} {state}>"
