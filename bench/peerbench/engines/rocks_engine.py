"""RocksDB through rocksdict: one ``Rdict`` in raw mode with RocksDB's default options.

``Options(raw_mode=True)`` stores keys and values as the given bytes (rocksdict pickles
them otherwise) and is passed again on every reopen; nothing else is tuned (no block
cache, bloom filter or compaction setting), so this is RocksDB as a typical user gets it.

Writes use the default ``WriteOptions`` (``sync=False``): the write-ahead log is written
to the OS at each write but not fsynced, so a ``put`` survives a process crash, not a
power loss. ``durable_put`` writes with ``WriteOptions.sync = True`` (the WAL is fsynced
before it returns). RocksDB can group concurrent writers into one WAL sync, but rocksdict
(0.3.x) holds the GIL during a write, so synced writes from Python threads do not overlap.
A batch is one ``WriteBatch``. ``flush`` syncs the WAL (``flush_wal(sync=True)``, RocksDB's
``FlushWAL(true)``: everything written so far becomes durable; memtables are flushed by
RocksDB in the background and by ``close``). Scans iterate ``items(from_key=...)``.

Caveat: ``Rdict`` has no transactions, so ``read_modify_write`` is a ``get`` and a
``put`` under a process-local lock: atomic against other read-modify-writes of this
adapter, not against plain puts or other processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from .base import Engine, LockedReadModifyWrite, Pair


class RocksDict(LockedReadModifyWrite):
    name = "rocksdict"
    family = "rocksdb"
    describe = "rocksdict Rdict, raw_mode=True, default options, WAL not fsynced (sync=False)"
    durable = False
    requirement = "rocksdict"

    def __init__(self, db: Rdict) -> None:
        self._db = db
        self._sync = WriteOptions()
        self._sync.sync = True
        super().__init__()

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(Rdict(str(directory / "rocksdb"), Options(raw_mode=True)))

    def close(self) -> None:
        self._db.close()

    def write_batch(self, items: Sequence[Pair]) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        self._db.write(batch)

    def get(self, key: bytes) -> bytes | None:
        found: bytes | None = self._db.get(key)
        return found

    def put(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value)

    def scan(self, start: bytes, count: int) -> list[Pair]:
        items: Any = self._db.items(from_key=start)
        return list(islice(items, count))

    def scan_all(self) -> int:
        count = 0
        for _ in self._db.items():
            count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value, self._sync)

    def flush(self) -> None:
        self._db.flush_wal(sync=True)
