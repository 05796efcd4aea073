"""The errors persist-db raises. Every one derives from :class:`PersistError`.

"You called me wrong" is ``ValueError``/``TypeError``; "the bytes are bad" is
:class:`CorruptSnapshotError`; "the bytes are fine but not for this reader" is
:class:`UnsupportedFormatError`.
"""

from __future__ import annotations

__all__ = [
    "PersistError",
    "CorruptSnapshotError",
    "UnsupportedFormatError",
    "WrongKindError",
    "CompressionUnavailableError",
    "PayloadTooLargeError",
    "PersistedPoisonedError",
    "PersistedLockedError",
]


class PersistError(Exception):
    """Base class of every persist-db error."""


class CorruptSnapshotError(PersistError):
    """A snapshot file fails validation.

    Attributes:
        reason: what failed, e.g. ``"payload CRC32C mismatch"``.
        path: the file (or file-system name) it was read from, if known.
        offset: the byte offset of the field or region that failed, if known.
    """

    def __init__(self, reason: str, *, path: str | None = None, offset: int | None = None):
        self.reason = reason
        self.path = path
        self.offset = offset
        where = []
        if path is not None:
            where.append(path)
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"corrupt snapshot ({', '.join(where)}): {reason}" if where else reason)


class UnsupportedFormatError(PersistError):
    """A valid snapshot whose format (or whose object's payload version) is not known here.

    Raised by persist-db for a file format version it cannot read, and by a
    :class:`~persist_db.Persistable` object's ``load_snapshot`` for a payload version it
    does not know.
    """


class WrongKindError(PersistError, ValueError):
    """``load(..., kind=k)`` found a valid snapshot of another kind."""


class CompressionUnavailableError(PersistError, ValueError):
    """The compression named (or the one a file uses) needs a module that is not installed.

    lz4 is an optional extra: ``pip install 'persist-db[lz4]'``.
    """


class PayloadTooLargeError(PersistError, ValueError):
    """A snapshot's payload is larger than the caller's ``max_payload`` limit."""


class PersistedPoisonedError(PersistError):
    """A :class:`~persist_db.Persisted` operation failed half-way; close and reopen it."""


class PersistedLockedError(PersistError):
    """Another ``Persisted`` (in this or another process) has the directory open."""
