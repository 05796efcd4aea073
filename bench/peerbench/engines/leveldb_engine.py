"""LevelDB through plyvel: one ``plyvel.DB`` with ``create_if_missing=True``, default options.

Writes use LevelDB's default ``sync=False``: each write is appended to the log and handed
to the OS but not fsynced, so a ``put`` survives a process crash, not a power loss.
``durable_put`` is ``put(..., sync=True)`` (the log is fsynced before it returns; LevelDB
groups concurrent writers into one log write and sync). A batch is one
``db.write_batch()``. ``flush`` writes an empty batch with ``sync=True``: LevelDB has no
separate "sync the log" call, and a synced write makes every earlier write durable (the
documented way to make asynchronous writes safe). Scans use ``db.iterator(start=...)``.

Caveat: LevelDB has no transactions, so ``read_modify_write`` is a ``get`` and a ``put``
under a process-local lock: atomic against other read-modify-writes of this adapter, not
against plain puts.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import plyvel

from .base import Engine, LockedReadModifyWrite, Pair


class Plyvel(LockedReadModifyWrite):
    name = "plyvel"
    family = "leveldb"
    describe = "plyvel DB, create_if_missing=True, default options, log not fsynced (sync=False)"
    durable = False
    requirement = "plyvel"

    def __init__(self, db: Any) -> None:
        self._db = db
        super().__init__()

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(plyvel.DB(str(directory / "leveldb"), create_if_missing=True))

    def close(self) -> None:
        self._db.close()

    def write_batch(self, items: Sequence[Pair]) -> None:
        with self._db.write_batch() as batch:
            for key, value in items:
                batch.put(key, value)

    def get(self, key: bytes) -> bytes | None:
        found: bytes | None = self._db.get(key)
        return found

    def put(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value)

    def scan(self, start: bytes, count: int) -> list[Pair]:
        with self._db.iterator(start=start) as pairs:
            return list(islice(pairs, count))

    def scan_all(self) -> int:
        count = 0
        with self._db.iterator() as pairs:
            for _ in pairs:
                count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value, sync=True)

    def flush(self) -> None:
        self._db.write_batch(sync=True).write()
