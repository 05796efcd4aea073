"""The files of a database: the page file (page-db + one index-db B+tree), the WAL (wal-db)
and the writer lock — opening, recovery, checkpoints.

Layout of a database directory (docs/FORMAT.md, "Directory"):

- ``LOCK``: held with ``flock`` by the one writer; holds ``pid <n> on <host>``.
- ``data.strata``: the page-db file. One B+tree maps ``encoded key + inverted version``
  to a version entry, and ``0x00 + name`` to system settings. The checkpoint meta
  (``_records.CheckpointMeta``) names the tree and the last WAL LSN it includes.
- ``wal/``: the wal-db log of commit records after that LSN.

Recovery opens the page file at its last checkpoint, loads every version into memory and
replays the WAL records after the checkpoint's LSN (docs/architecture.md, D16).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from index_db import BTree, CorruptIndexError, IndexDbError
from page_db import CorruptPageError, MemoryFile, PageError, PageStore
from wal_db import CorruptLogError, FileSystem, RecoveryReport, WalError, WriteAheadLog

from . import _records as R
from ._checkpoint import rewrite, should_rewrite, write_incremental
from ._mvcc import Entry, VersionStore
from .errors import CorruptionError, DatabaseLockedError, StrataUsageError

_U64_BE = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct("<Q")  # the timestamp after the flags byte
PAGE_FILE = "data.strata"
WAL_DIR = "wal"
LOCK_FILE = "LOCK"
MAX_COMMIT_BYTES = 256 * 1024 * 1024  # one commit record (the whole write set)
SYSTEM_RETENTION = b"retention"


@dataclass(frozen=True)
class Files:
    """What to call the page file and the WAL in error messages (paths, or the names in a
    custom file system)."""

    page_file: str
    wal: str

    def corrupt(self, exc: BaseException, *, wal: bool) -> CorruptionError:
        """A ``CorruptionError`` naming the page file or the WAL, for ``exc``."""
        where = self.wal if wal else self.page_file
        what = "WAL" if wal else "page file"
        if isinstance(exc, CorruptionError):
            if exc.path is not None:
                return exc
            err = CorruptionError(f"{what} {where}: {exc}", path=where)
        else:
            err = CorruptionError(f"{what} {where} is corrupt: {exc}", path=where)
        err.__cause__ = exc
        return err


# what a lower layer raises for bytes that fail validation while opening
_PAGE_DAMAGE = (CorruptPageError, CorruptIndexError)
_WAL_DAMAGE = (CorruptLogError,)


@dataclass
class Recovered:
    """What opening found (``Database.stats()["recovery"]``)."""

    checkpoint_version: int = 0
    checkpoint_lsn: int = 0
    replayed_records: int = 0
    replayed_ops: int = 0
    wal_truncated_bytes: int = 0
    wal_first_lost_lsn: int | None = None
    seconds: float = 0.0


def lock_directory(path: str) -> int:
    """Take the writer lock of ``path`` (a directory) and return its fd.

    Raises:
        DatabaseLockedError: another writer holds it; the message names the holder.
    """
    name = os.path.join(path, LOCK_FILE)
    fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        try:
            holder: str | None = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or None
        except OSError:
            holder = None
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DatabaseLockedError(
                f"database {path!r} is open for writing by {holder or 'another process'} "
                f"(lock file {name}); open it with read_only=True to read beside it",
                path=path,
                holder=holder,
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd


class Disk:
    """The page store, its B+tree and the WAL of one database."""

    def __init__(
        self,
        store: PageStore,
        tree: BTree,
        wal: WriteAheadLog,
        meta: R.CheckpointMeta,
        lock_fd: int | None,
        read_only: bool,
        files: Files,
    ) -> None:
        self.files = files
        self.store = store
        self.tree = tree
        self.wal = wal
        self.meta = meta
        self.lock_fd = lock_fd
        self.read_only = read_only
        self.recovered = Recovered()

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open_path(
        cls,
        path: str,
        *,
        read_only: bool,
        wal_options: dict[str, Any],
        page_size: int,
        pool_pages: int,
    ) -> Disk:
        """Open (creating unless ``read_only``) the database directory ``path``."""
        lock_fd: int | None = None
        if read_only:
            if not os.path.exists(os.path.join(path, PAGE_FILE)):
                raise StrataUsageError(f"no strata database at {path!r} to open read-only")
        else:
            os.makedirs(path, exist_ok=True)
            lock_fd = lock_directory(path)
        files = Files(os.path.join(path, PAGE_FILE), os.path.join(path, WAL_DIR))
        try:
            try:
                store = PageStore.open(
                    files.page_file, page_size=page_size, pool_pages=pool_pages, read_only=read_only
                )
            except _PAGE_DAMAGE as exc:
                raise files.corrupt(exc, wal=False) from exc
            try:
                wal = WriteAheadLog.open(
                    files.wal, read_only=read_only, max_record_size=MAX_COMMIT_BYTES, **wal_options
                )
            except BaseException as exc:
                store.close()
                if isinstance(exc, _WAL_DAMAGE):
                    raise files.corrupt(exc, wal=True) from exc
                raise
            return cls._finish(store, wal, lock_fd, read_only, files)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise

    @classmethod
    def open_fs(
        cls,
        fs: FileSystem,
        *,
        read_only: bool,
        wal_options: dict[str, Any],
        page_size: int,
        pool_pages: int,
    ) -> Disk:
        """Open a database kept in a ``wal_db.FileSystem`` (the page file and the WAL's
        segments side by side). Tests run the engine on the shared crash-simulating one."""
        if not fs.exists(PAGE_FILE):
            if read_only:
                raise StrataUsageError("no strata database in this file system")
            _create_page_file(fs, page_size)
        files = Files(PAGE_FILE, "segments")
        try:
            store = PageStore.open_file(
                fs.open(PAGE_FILE, create=False),
                page_size=page_size,
                pool_pages=pool_pages,
                read_only=read_only,
            )
        except _PAGE_DAMAGE as exc:
            raise files.corrupt(exc, wal=False) from exc
        try:
            wal = WriteAheadLog.open(
                fs, read_only=read_only, max_record_size=MAX_COMMIT_BYTES, **wal_options
            )
        except BaseException as exc:
            store.close()
            if isinstance(exc, _WAL_DAMAGE):
                raise files.corrupt(exc, wal=True) from exc
            raise
        return cls._finish(store, wal, None, read_only, files)

    @classmethod
    def _finish(
        cls,
        store: PageStore,
        wal: WriteAheadLog,
        lock_fd: int | None,
        read_only: bool,
        files: Files,
    ) -> Disk:
        try:
            raw = store.meta
            if raw == b"":
                if read_only:
                    raise CorruptionError(
                        f"the page file {files.page_file} holds no strata checkpoint yet",
                        path=files.page_file,
                    )
                if wal.last_lsn != 0:
                    raise CorruptionError(
                        f"the page file {files.page_file} is new but the WAL holds records "
                        f"up to LSN {wal.last_lsn}: they belong to another database",
                        path=files.page_file,
                    )
                tree = BTree.create(store)
                meta = R.CheckpointMeta(
                    uuid.uuid4().bytes, tree.meta(), 0, 0, 0, 0, 0, time.time_ns()
                )
                store.checkpoint(meta.encode())
            else:
                try:
                    meta = R.CheckpointMeta.decode(raw)
                    tree = BTree.open(store, meta.tree)
                except (*_PAGE_DAMAGE, CorruptionError) as exc:
                    raise files.corrupt(exc, wal=False) from exc
        except BaseException:
            wal.close()
            store.close()
            raise
        return cls(store, tree, wal, meta, lock_fd, read_only, files)

    # -- recovery ----------------------------------------------------------------------

    def load(
        self,
        versions: VersionStore,
        apply_commit: Callable[[int, int, list[tuple[int, bytes, bytes | None]]], None],
        settings: dict[bytes, bytes],
    ) -> Recovered:
        """Load the checkpoint into ``versions`` and replay the WAL after it.

        Args:
            versions: an empty version store to fill.
            apply_commit: applies one replayed commit ``(version, ts_ns, ops)``.
            settings: filled with the system settings found in the checkpoint.

        Raises:
            CorruptionError: pages, entries or WAL records that fail validation, or a WAL
                that does not continue the checkpoint.
        """
        started = time.perf_counter()
        meta = self.meta
        rec = self.recovered
        rec.checkpoint_version, rec.checkpoint_lsn = meta.version, meta.lsn
        report: RecoveryReport = self.wal.recovery
        rec.wal_truncated_bytes = report.truncated_bytes
        rec.wal_first_lost_lsn = report.first_lost_lsn
        files = self.files
        try:
            self._load_tree(versions, settings)
        except (PageError, IndexDbError, CorruptionError) as exc:
            raise files.corrupt(exc, wal=False) from exc
        try:
            if self.wal.last_lsn < meta.lsn:
                raise CorruptionError(
                    f"the WAL ends at LSN {self.wal.last_lsn}, before the checkpoint's LSN "
                    f"{meta.lsn}: records the checkpoint relies on are missing"
                )
            if self.wal.first_lsn > meta.lsn + 1:
                raise CorruptionError(
                    f"the WAL starts at LSN {self.wal.first_lsn}; records "
                    f"{meta.lsn + 1}..{self.wal.first_lsn - 1} after the checkpoint are gone"
                )
            for _lsn, payload in self.wal.replay(meta.lsn + 1):
                version, ts_ns, ops = R.decode_commit(payload)
                apply_commit(version, ts_ns, ops)
                rec.replayed_records += 1
                rec.replayed_ops += len(ops)
        except (WalError, CorruptionError) as exc:
            raise files.corrupt(exc, wal=True) from exc
        rec.seconds = time.perf_counter() - started
        return rec

    def _load_tree(self, versions: VersionStore, settings: dict[bytes, bytes]) -> None:
        chains: dict[bytes, list[Entry]] = {}
        pruned: set[bytes] = set()
        split, decode = R.split_tree_key, R.decode_entry
        inverted = _U64_BE.unpack_from
        head = _ENTRY_HEAD.unpack_from
        top = (1 << 64) - 1
        entry: Entry
        for tkey, data in self.tree.items():
            if tkey[0] == 0:  # R.SYSTEM_PREFIX
                settings[tkey[1:]] = data
                continue
            # the common entry inline (split_tree_key and decode_entry do the same checks)
            n = len(tkey)
            if n > 8 and len(data) > 9 and data[0] == 0:
                key = tkey[:-8]
                entry = (top - inverted(tkey, n - 8)[0], head(data, 1)[0], data[9:])
            else:
                key, version = split(tkey)
                ts_ns, value, is_pruned = decode(data)
                entry = (version, ts_ns, value)
                if is_pruned:
                    pruned.add(key)
            chain = chains.get(key)
            if chain is None:
                chains[key] = [entry]
            else:
                chain.append(entry)
        for key, chain in chains.items():
            if len(chain) > 1:
                chain.sort()
            versions.load_chain(key, chain, key in pruned)
        versions.swept_version = self.meta.swept_version
        versions.swept_ts = self.meta.swept_ts_ns
        versions.rebuild_keys()

    # -- checkpoints -------------------------------------------------------------------

    def checkpoint(
        self,
        versions: VersionStore,
        dirty: set[bytes],
        removed: dict[bytes, list[int]],
        settings: dict[bytes, bytes],
        version: int,
        ts_ns: int,
        lsn: int,
    ) -> None:
        """Write the versions up to ``version`` of ``dirty`` keys, drop ``removed`` ones,
        store ``settings``, and make it all durable as one page-db checkpoint; then cut
        the WAL before ``lsn + 1``. The caller keeps GC away while this runs."""
        tree = self.tree
        if should_rewrite(tree, dirty, removed):
            tree = self.tree = rewrite(self.store, tree, versions, settings, version)
        else:
            write_incremental(tree, versions, dirty, removed, settings, version, self.meta.version)
        # the pages must not claim a commit whose WAL record could still be lost: after a
        # crash the log would reuse its LSN and recovery would skip the new record
        self.wal.sync(lsn)
        meta = R.CheckpointMeta(
            self.meta.db_id,
            tree.meta(),
            lsn,
            version,
            ts_ns,
            versions.swept_version,
            versions.swept_ts,
            time.time_ns(),
        )
        self.store.checkpoint(meta.encode())
        self.meta = meta
        self.wal.truncate_before(lsn + 1)

    def compact_pages(self) -> int:
        """Move the page file's pages down into free slots and cut its free tail (a
        page-db compaction carrying the same checkpoint meta); returns bytes released."""
        return self.store.compact(self.meta.encode())

    def drop_checkpointed_log(self) -> None:
        """If the last checkpoint covers every WAL record, seal the active segment and
        delete it, so a cleanly closed database keeps no log it does not need. Crash-safe:
        wal-db seals before it deletes, and the segment header keeps the next LSN."""
        lsn = self.meta.lsn
        if self.wal.last_lsn == lsn and self.wal.roll():
            self.wal.truncate_before(lsn + 1)

    def close(self) -> None:
        """Close the WAL and the page store and release the lock (changes not checkpointed
        stay in the WAL)."""
        try:
            try:
                self.wal.close()
            finally:
                self.store.close()
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None


def _create_page_file(fs: FileSystem, page_size: int) -> None:
    """Write an initialised, empty page file into ``fs`` atomically (aside, fsync, rename,
    directory fsync), so a crash never leaves a page file that fails to open."""
    image = MemoryFile()
    with PageStore.open_file(image, page_size=page_size) as store:
        store.checkpoint(b"")
        data = image.getvalue()
    tmp = PAGE_FILE + ".creating"
    handle = fs.open(tmp)
    try:
        handle.truncate(0)
        handle.pwrite(data, 0)
        handle.fsync()
    finally:
        handle.close()
    fs.rename(tmp, PAGE_FILE)
    fs.fsync_dir()
