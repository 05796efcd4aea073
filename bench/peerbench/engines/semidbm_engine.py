"""semidbm: ``semidbm.open(path, "c")``, an append-only data file plus an in-memory index.

semidbm (a pure-Python dbm) appends every write to its data file with one unbuffered
``os.write`` and keeps ``key -> (offset, size)`` in a dict rebuilt from the file at open.
Nothing is fsynced per write, so a ``put`` survives a process crash, not a power loss;
``durable_put`` is a write followed by semidbm's own ``sync()`` (an fsync of the data
file) and ``flush`` is ``sync()``. Default settings (no checksum verification on reads).

semidbm is not thread-safe (reads seek the shared file descriptor), so every call holds
one process-local lock, the fsync of ``durable_put`` included (no group commit). It has
no transactions: a batch is one write per pair (not atomic), and ``read_modify_write`` is
a read and a write under that lock (atomic within this process only). Keys are hashed,
not ordered: ``scan`` and ``scan_all`` raise :class:`Unsupported`. The data file is never
compacted: overwritten values stay in it until ``compact()``, which this adapter does not
call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import semidbm

from .base import Engine, Pair


class SemiDbm(Engine):
    name = "semidbm"
    family = "semidbm"
    describe = "semidbm.open(path, 'c'), default settings, one lock around every call"
    durable = False
    requirement = "semidbm"

    def __init__(self, db: Any) -> None:
        self._db = db
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(semidbm.open(str(directory / "semidbm"), "c"))

    def close(self) -> None:
        with self._lock:
            self._db.close()  # syncs, then closes the data file

    def write_batch(self, items: Sequence[Pair]) -> None:
        db = self._db
        with self._lock:
            for key, value in items:
                db[key] = value

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            try:
                found: bytes = self._db[key]
            except KeyError:
                return None
        return found

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._db[key] = value

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        db = self._db
        with self._lock:
            try:
                old: bytes | None = db[key]
            except KeyError:
                old = None
            db[key] = update(old)

    def durable_put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._db[key] = value
            self._db.sync()

    def flush(self) -> None:
        with self._lock:
            self._db.sync()
