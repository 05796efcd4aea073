"""sqlite3 (the standard library's) in WAL mode, one table ``kv(k BLOB PRIMARY KEY, v)``.

``WITHOUT ROWID`` stores rows in the primary-key B-tree, as a key-value store would. Each
thread uses its own connection (sqlite3 connections are not shared across threads); a
write transaction is ``BEGIN IMMEDIATE`` so concurrent writers queue on sqlite's lock
(with a long busy timeout) instead of failing. ``synchronous=FULL`` fsyncs the WAL at
every commit (durable); ``NORMAL`` fsyncs only at checkpoints (a power loss can lose the
latest commits, a process crash cannot).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from .base import Engine, Pair, Unsupported

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"


class _Sqlite(Engine):
    family = "sqlite3"
    synchronous: ClassVar[str]

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._db = self._connection()
        self._db.execute(_SCHEMA)

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / "sqlite.db")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: autocommit unless a BEGIN is issued explicitly.
            connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=600
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def write_batch(self, items: Sequence[Pair]) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", items)
        db.execute("COMMIT")

    def get(self, key: bytes) -> bytes | None:
        row = self._connection().execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, key: bytes, value: bytes) -> None:
        self._connection().execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            new = update(None if row is None else bytes(row[0]))
            db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, new))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def scan(self, start: bytes, count: int) -> list[Pair]:
        rows = self._connection().execute(
            "SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?", (start, count)
        )
        return [(bytes(k), bytes(v)) for k, v in rows]

    def scan_all(self) -> int:
        count = 0
        for _ in self._connection().execute("SELECT k, v FROM kv ORDER BY k"):
            count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        if self.synchronous != "FULL":
            raise Unsupported("synchronous=NORMAL commits are not fsynced (use sqlite3-full)")
        self.put(key, value)

    def flush(self) -> None:
        self._connection().execute("PRAGMA wal_checkpoint(FULL)")


class SqliteNormal(_Sqlite):
    name = "sqlite3-normal"
    synchronous = "NORMAL"
    describe = "sqlite3, journal_mode=WAL, synchronous=NORMAL, WITHOUT ROWID table"
    durable = False


class SqliteFull(_Sqlite):
    name = "sqlite3-full"
    synchronous = "FULL"
    describe = "sqlite3, journal_mode=WAL, synchronous=FULL, WITHOUT ROWID table"
    durable = True
