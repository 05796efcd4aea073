"""Errors raised by strata.

Everything strata raises on purpose derives from :class:`StrataError`. Three families:

- *the transaction could not commit, try again*: :class:`ConflictError`,
  :class:`DeadlockError`, :class:`LockTimeoutError` (all :class:`TransactionAbortedError`);
  ``Database.run_transaction`` retries these;
- *bytes on disk failed validation*: :class:`CorruptionError` (the database is left as it
  was; nothing is repaired silently);
- *you called me wrong*: :class:`StrataUsageError` (also ``ValueError``) and its subclasses,
  and :class:`ValueTypeError` (also ``TypeError``) for a value or key of an unsupported type.
  Retrying will not help; the code must change.

Errors from the lower packages (``page_db``, ``wal_db``, ``lock_db``, ``index_db``) are
translated at strata's boundary and kept as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "StrataError",
    "TransactionAbortedError",
    "ConflictError",
    "DeadlockError",
    "LockTimeoutError",
    "CorruptionError",
    "DatabaseLockedError",
    "DatabasePoisonedError",
    "DatabaseClosedError",
    "HistoryUnavailableError",
    "StrataUsageError",
    "ReadOnlyError",
    "TransactionClosedError",
    "KeyTooLargeError",
    "ValueTooLargeError",
    "ValueTypeError",
]


class StrataError(Exception):
    """Root of every error strata raises on purpose."""


class TransactionAbortedError(StrataError):
    """The transaction was rolled back and nothing it wrote is visible; it may be retried."""


class ConflictError(TransactionAbortedError):
    """Optimistic validation failed at commit.

    Attributes:
        key: the user key (``str`` or ``bytes``) that conflicted, or ``None`` for a scanned
            range.
        keyspace: the keyspace of ``key``.
        reason: ``"write-write"`` (another transaction committed a write to a key this one
            writes, after this one's snapshot: first committer wins), ``"read"``
            (serializable: a key this one read changed) or ``"range"`` (serializable: a
            key was written inside a range this one scanned).
    """

    def __init__(
        self,
        message: str,
        *,
        key: object = None,
        keyspace: str | None = None,
        reason: str = "write-write",
    ) -> None:
        super().__init__(message)
        self.key = key
        self.keyspace = keyspace
        self.reason = reason


class DeadlockError(TransactionAbortedError):
    """A pessimistic transaction was chosen as a deadlock victim and rolled back."""


class LockTimeoutError(TransactionAbortedError):
    """A pessimistic transaction waited longer than its lock timeout and was rolled back."""


class CorruptionError(StrataError):
    """Bytes on disk (pages, WAL, backup file, an encoded value) failed validation.

    Attributes:
        path: the file or directory involved, when known.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DatabaseLockedError(StrataError):
    """Another process (or another ``Database`` in this one) has the directory open for writing.

    Attributes:
        path: the database directory.
        holder: what the lock file says about the holder (``"pid 123 on host"``), or
            ``None`` when it could not be read.
    """

    def __init__(self, message: str, *, path: str, holder: str | None) -> None:
        super().__init__(message)
        self.path = path
        self.holder = holder


class DatabasePoisonedError(StrataError):
    """A write or fsync failed; the database refuses further use until it is reopened.

    An fsync is never retried: after a failed fsync the kernel may have dropped the data,
    so only a reopen (which recovers what is really on disk) can tell what survived.
    """


class DatabaseClosedError(StrataError):
    """The database (or the primitive reached through it) was used after ``close()``."""


class HistoryUnavailableError(StrataError):
    """An ``as_of`` read asked for history that retention has already removed."""


class StrataUsageError(StrataError, ValueError):
    """The caller asked for something impossible (a bad argument, a wrong mode)."""


class ReadOnlyError(StrataUsageError):
    """A write through a read-only database or a read-only transaction."""


class TransactionClosedError(StrataUsageError):
    """The transaction was already committed or rolled back."""


class KeyTooLargeError(StrataUsageError):
    """A key (or keyspace name) is longer than the documented limit."""


class ValueTooLargeError(StrataUsageError):
    """An encoded value, or a transaction's commit record, is longer than the limit."""


class ValueTypeError(StrataError, TypeError):
    """A value or key of a type strata does not store.

    Attributes:
        path: where the offending object sits inside the value, as a JSONPath-like string
            (``$``, ``$["items"][3]``).
    """

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(message)
        self.path = path
