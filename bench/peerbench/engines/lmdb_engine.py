"""LMDB (py-lmdb): one ``lmdb.Environment`` in the directory, the default (unnamed) database.

Settings are py-lmdb's defaults (``sync=True``, ``metasync=True``, no ``writemap``,
``readahead=True``, 126 reader slots) except ``map_size``, which LMDB requires a user to
choose: 8 GiB, room for 10M records of 16-byte keys and 100-byte values with B-tree
overhead. The file is not preallocated on Linux (it grows with the pages used), so the
map size does not inflate the bytes on disk.

Every write is one write transaction, and LMDB fsyncs at each commit with these settings,
so ``put`` is durable and ``durable_put`` is ``put``; write transactions are serialized by
LMDB's writer lock (no group commit). A batch writes through ``Cursor.putmulti``; a
read-modify-write is one write transaction; a read is one read-only transaction; a scan
positions a cursor with ``set_range``. Values come back as ``bytes`` (``buffers=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import lmdb

from .base import Engine, Pair

MAP_SIZE = 8 << 30


class Lmdb(Engine):
    name = "lmdb"
    family = "lmdb"
    describe = "py-lmdb, one Environment, map_size=8 GiB, default sync=True (fsync per commit)"
    durable = True
    requirement = "lmdb"

    def __init__(self, env: Any) -> None:
        self._env = env

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(lmdb.open(str(directory), map_size=MAP_SIZE))

    def close(self) -> None:
        self._env.close()

    def write_batch(self, items: Sequence[Pair]) -> None:
        with self._env.begin(write=True) as txn:
            txn.cursor().putmulti(items)

    def get(self, key: bytes) -> bytes | None:
        with self._env.begin() as txn:
            found: bytes | None = txn.get(key)
            return found

    def put(self, key: bytes, value: bytes) -> None:
        with self._env.begin(write=True) as txn:
            txn.put(key, value)

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        with self._env.begin(write=True) as txn:
            txn.put(key, update(txn.get(key)))

    def scan(self, start: bytes, count: int) -> list[Pair]:
        with self._env.begin() as txn:
            cursor = txn.cursor()
            if not cursor.set_range(start):
                return []
            return list(islice(cursor.iternext(), count))

    def scan_all(self) -> int:
        count = 0
        with self._env.begin() as txn:
            for _ in txn.cursor():
                count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        self.put(key, value)  # sync=True: the commit returns once fsynced
