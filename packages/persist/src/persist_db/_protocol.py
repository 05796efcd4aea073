"""The ``Persistable`` protocol: what an object provides to be kept by ``Persisted``.

Theory of operation
-------------------
An object is persisted as *snapshot + operation log*. It must be able to (1) produce its
whole state as snapshot payload bytes (or chunks of them), tagged with its ``kind`` and
its own payload ``format_version``; (2) restore that state into a fresh, empty instance;
and (3) apply one operation, given as bytes. ``apply`` must be deterministic: replaying
the same operations on the same snapshot must give the same state, because that is what
recovery does after a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["Persistable"]


@runtime_checkable
class Persistable(Protocol):
    """An in-memory object that can be snapshotted, restored and changed by operations.

    Attributes:
        kind: the snapshot kind tag, 1..16 printable ASCII characters.
        format_version: the object's own payload format version, 1..65535.
    """

    kind: str
    format_version: int

    def to_snapshot(self) -> bytes | Iterable[bytes]:
        """The whole state as payload bytes, or as an iterable of chunks of them."""
        ...

    def load_snapshot(self, payload: bytes, version: int) -> None:
        """Restore the state saved by ``to_snapshot`` (at payload ``version``) into self.

        Raises:
            UnsupportedFormatError: ``version`` is one this object cannot read.
        """
        ...

    def apply(self, op: bytes) -> None:
        """Apply one operation (deterministically; see the module docstring)."""
        ...
