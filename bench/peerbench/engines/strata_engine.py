"""strata in its three durability modes, through its public API only.

Every write goes through autocommit ``db.kv`` calls (``put_many`` is one transaction);
read-modify-write is an optimistic snapshot transaction retried by
``db.run_transaction``. Keys and values are stored as ``bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import strata

from .base import Engine, Pair, Unsupported


class _Strata(Engine):
    family = "strata"
    mode: ClassVar[str]

    def __init__(self, db: strata.Database) -> None:
        self._db = db
        self._kv = db.kv

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        if cls.mode == "cache":
            return cls(strata.open_memory())
        return cls(strata.open(directory / "strata", durability=cls.mode))

    def close(self) -> None:
        self._db.close()

    def write_batch(self, items: Sequence[Pair]) -> None:
        self._kv.put_many(items)

    def get(self, key: bytes) -> bytes | None:
        found: bytes | None = self._kv.get(key)
        return found

    def put(self, key: bytes, value: bytes) -> None:
        self._kv.put(key, value)

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        def body(tx: Any) -> None:
            tx.kv.put(key, update(tx.kv.get(key)))

        self._db.run_transaction(body)

    def scan(self, start: bytes, count: int) -> list[Pair]:
        return cast(list[Pair], list(self._kv.scan(start=start, limit=count)))

    def scan_all(self) -> int:
        count = 0
        for _ in self._kv.scan():
            count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        if self.mode != "always":
            raise Unsupported(f"{self.mode} mode has no per-commit durability (use always)")
        self._kv.put(key, value)

    def flush(self) -> None:
        if self.mode != "cache":
            self._db.checkpoint()


class StrataCache(_Strata):
    name = "strata-cache"
    mode = "cache"
    describe = "strata.open_memory(): memory only, nothing on disk"
    durable = False
    in_memory = True


class StrataStandard(_Strata):
    name = "strata-standard"
    mode = "standard"
    describe = "strata.open(durability='standard'): WAL fsync every 100 ms / 1,000 commits"
    durable = False


class StrataAlways(_Strata):
    name = "strata-always"
    mode = "always"
    describe = "strata.open(durability='always'): a commit returns once fsynced (group commit)"
    durable = True
