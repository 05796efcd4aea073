"""diskcache: one ``diskcache.Cache`` in the directory, ``eviction_policy='none'``.

diskcache is a cache on SQLite (WAL mode, one connection per thread). Its default
eviction (``least-recently-stored`` with a 1 GB ``size_limit``) would drop records from a
large data set, which a key-value store must not do; ``eviction_policy='none'`` is the
documented setting for that, and the one diskcache's own persistent ``Index`` uses. Every
other setting is diskcache's default, notably ``sqlite_synchronous=1`` (NORMAL): a commit
is not fsynced, so a ``put`` survives a process crash, not a power loss, and
``durable_put`` raises :class:`Unsupported` (``sqlite_synchronous=2``, FULL, would be a
separate configuration, like sqlite3-normal and sqlite3-full). The 100-byte values are
stored in the database, not as separate files.

``put`` is ``Cache.set``; a batch and a read-modify-write run inside ``Cache.transact()``
(one ``BEGIN IMMEDIATE`` transaction). Keys are not ordered for range reads (no scan
from a start key), but ``Cache.iterkeys()`` walks the keys in database sort order, which
for ``bytes`` keys (SQLite BLOBs) is memcmp order: ``scan_all`` iterates it and fetches
each value with ``Cache.get``, the way a diskcache user reads every pair in order.
diskcache has no call to make non-durable commits durable, so ``flush`` does nothing.
``close`` closes the calling thread's connection (``Cache.close``); diskcache closes the
connections of other threads when those threads end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import diskcache

from .base import Engine, Pair, Unsupported


class DiskCache(Engine):
    name = "diskcache"
    family = "diskcache"
    describe = "diskcache.Cache, eviction_policy='none', default sqlite_synchronous=1 (NORMAL)"
    durable = False
    requirement = "diskcache"

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    @classmethod
    def open(cls, directory: Path) -> Engine:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(diskcache.Cache(str(directory), eviction_policy="none"))

    def close(self) -> None:
        self._cache.close()

    def write_batch(self, items: Sequence[Pair]) -> None:
        cache = self._cache
        with cache.transact():
            for key, value in items:
                cache.set(key, value)

    def get(self, key: bytes) -> bytes | None:
        found: bytes | None = self._cache.get(key)
        return found

    def put(self, key: bytes, value: bytes) -> None:
        self._cache.set(key, value)

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        cache = self._cache
        with cache.transact():
            cache.set(key, update(cache.get(key)))

    def scan(self, start: bytes, count: int) -> list[Pair]:
        raise Unsupported("no range read from a start key (Cache.iterkeys starts at the first)")

    def scan_all(self) -> int:
        get = self._cache.get
        count = 0
        for key in self._cache.iterkeys():
            get(key)
            count += 1
        return count

    def durable_put(self, key: bytes, value: bytes) -> None:
        raise Unsupported("sqlite_synchronous=1 (NORMAL, diskcache's default) does not fsync")
