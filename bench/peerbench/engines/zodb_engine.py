"""ZODB: a ``FileStorage`` in the directory, a ``DB`` on it, and one ``OOBTree`` in the root.

The pairs live in ``root["kv"]``, a ``BTrees.OOBTree.OOBTree`` (``bytes`` keys compare in
memcmp order). Two documented ``DB`` settings differ from the defaults:
``cache_size=100_000`` objects per connection (the default 400 holds a tiny part of a large
tree) and ``pool_size=32`` (the harness runs up to 16 threads plus the main one; the
default 7 only logs warnings beyond that, it does not limit).

Each thread has its own connection (``db.open()``) with its own
``transaction.TransactionManager``; a connection of a thread that has ended is closed
(returned to the pool) when a new thread opens one. Every operation begins a transaction,
so it sees the latest commits. A write, batch or read-modify-write updates the tree and
commits; a ``ConflictError`` (another thread's commit touched the same bucket and BTrees
could not resolve it) aborts and retries. FileStorage fsyncs each commit, so ``put`` is
durable and ``durable_put`` is ``put``; commits are serialized by the storage (no group
commit). Reads are ``tree.get``; a scan is ``tree.items(min=start)`` cut at ``count``.
The storage is never packed: old object revisions stay in ``data.fs``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import transaction
from BTrees.OOBTree import OOBTree
from ZODB import DB
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError

from .base import Engine, Pair

TREE = "kv"
CACHE_SIZE = 100_000
POOL_SIZE = 32


class _Session:
    """One thread's connection, transaction manager and view of the tree."""

    def __init__(self, db: Any) -> None:
        self.tm: Any = transaction.TransactionManager()
        self.connection: Any = db.open(transaction_manager=self.tm)
        self.tree: Any = self.connection.root()[TREE]

    def release(self) -> None:
        self.tm.abort()
        self.connection.close()


class Zodb(Engine):
    name = "zodb"
    family = "zodb"
    describe = (
        "ZODB FileStorage + OOBTree in the root, cache_size=100,000, pool_size=32, fsync per commit"
    )
    durable = True
    requirement = "ZODB"  # with BTrees (a ZODB dependency)

    def __init__(self, db: Any) -> None:
        self._db = db
        self._local = threading.local()
        self._sessions: dict[threading.Thread, _Session] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        storage = FileStorage(str(directory / "data.fs"))
        db = DB(storage, cache_size=CACHE_SIZE, pool_size=POOL_SIZE)
        with db.transaction() as connection:
            root = connection.root()
            if TREE not in root:
                root[TREE] = OOBTree()
        return cls(db)

    def _session(self) -> _Session:
        session: _Session | None = getattr(self._local, "session", None)
        if session is None:
            with self._lock:
                for thread in [t for t in self._sessions if not t.is_alive()]:
                    self._sessions.pop(thread).release()
                session = _Session(self._db)
                self._sessions[threading.current_thread()] = session
            self._local.session = session
        return session

    def _read(self) -> Any:
        session = self._session()
        session.tm.begin()  # see the latest commits
        return session.tree

    def _write(self, change: Callable[[Any], None]) -> None:
        session = self._session()
        while True:
            session.tm.begin()
            try:
                change(session.tree)
                session.tm.commit()
                return
            except ConflictError:
                session.tm.abort()
            except BaseException:
                session.tm.abort()
                raise

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.release()
            self._sessions.clear()
        self._db.close()  # closes the storage too

    def write_batch(self, items: Sequence[Pair]) -> None:
        self._write(lambda tree: tree.update(items))

    def get(self, key: bytes) -> bytes | None:
        found: bytes | None = self._read().get(key)
        return found

    def put(self, key: bytes, value: bytes) -> None:
        self._write(lambda tree: tree.__setitem__(key, value))

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        self._write(lambda tree: tree.__setitem__(key, update(tree.get(key))))

    def scan(self, start: bytes, count: int) -> list[Pair]:
        return list(islice(self._read().items(min=start), count))

    def scan_all(self) -> int:
        count = 0
        for _ in self._read().items():
            count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        self.put(key, value)  # FileStorage fsyncs every commit
