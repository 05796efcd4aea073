"""The interface every engine adapter implements, and what the harness may assume of it.

An adapter wraps one *configuration* of one engine ("sqlite3-full": sqlite3 in WAL mode
with ``synchronous=FULL``). The harness gives it a fresh directory that it owns and that
holds every file it writes, so the directory's size is the engine's bytes on disk.

Keys and values are ``bytes``. Keys compare as byte strings (memcmp order); every engine
that orders keys must order them that way, and :meth:`Engine.scan` must return pairs in
that order. An operation an engine cannot do in its native API raises
:class:`Unsupported` with a short reason, which the report prints instead of a figure: a
peer is never given an emulation that would flatter or penalise it.

Durability vocabulary used in reports:

- ``put`` commits one write with the configuration's own durability (``durable``
  says whether a returned ``put`` survives power loss).
- ``durable_put`` commits one write that survives power loss once it returns, whatever
  the configuration's default; it must be safe to call from many threads at once.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

Pair = tuple[bytes, bytes]


class Unsupported(Exception):  # noqa: N818 - reads as "raise Unsupported('why')"
    """The engine has no native way to do this operation (the message says why)."""


class Engine(abc.ABC):
    """One configuration of one engine, open on a directory it owns."""

    #: Report name, e.g. ``"sqlite3-full"``; unique across adapters.
    name: ClassVar[str]
    #: The engine this configuration belongs to, e.g. ``"sqlite3"`` (for grouping).
    family: ClassVar[str]
    #: One line describing the configuration, printed in the docs.
    describe: ClassVar[str]
    #: Whether a returned :meth:`put` survives power loss.
    durable: ClassVar[bool]
    #: The distribution to ``pip install`` for this engine (None: standard library or repo).
    requirement: ClassVar[str | None] = None
    #: Memory only: nothing on disk, nothing survives close (no size, reopen or recovery).
    in_memory: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def open(cls, directory: Path) -> Engine:
        """Open (creating if needed) the engine's store inside ``directory``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush what the engine flushes on a clean close and release every resource."""

    @abc.abstractmethod
    def write_batch(self, items: Sequence[Pair]) -> None:
        """Insert or replace every pair in one transaction (or the engine's batch unit)."""

    @abc.abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None."""

    @abc.abstractmethod
    def put(self, key: bytes, value: bytes) -> None:
        """Insert or replace one pair as its own commit, with the configuration's durability."""

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        """Read ``key`` and write ``update(old)`` back, atomically (one transaction)."""
        raise Unsupported("no atomic read-modify-write")

    def scan(self, start: bytes, count: int) -> list[Pair]:
        """Up to ``count`` pairs with key >= ``start``, in ascending key order."""
        raise Unsupported("keys are not ordered")

    def scan_all(self) -> int:
        """Read every pair in ascending key order; return how many there were."""
        raise Unsupported("keys are not ordered")

    def durable_put(self, key: bytes, value: bytes) -> None:
        """Commit one write that survives power loss once this returns; thread-safe."""
        raise Unsupported("no durable single-write commit")

    def flush(self) -> None:  # noqa: B027 - a no-op is the right default
        """Make everything written so far durable (used after loads); default: nothing.

        What it costs differs by design: sqlite3 and strata checkpoint, RocksDB and LevelDB
        sync their log, engines whose every commit is durable have nothing left to do.
        """


class LockedReadModifyWrite(Engine):
    """For engines without transactions: read-modify-write is a get and a put under a lock.

    Atomic against other read-modify-writes through the same adapter, not against plain
    puts or other processes; adapters that use it say so in their docstring.
    """

    def __init__(self) -> None:
        self._rmw_lock = threading.Lock()

    def read_modify_write(self, key: bytes, update: Callable[[bytes | None], bytes]) -> None:
        with self._rmw_lock:
            self.put(key, update(self.get(key)))
