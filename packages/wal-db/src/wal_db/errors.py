"""Errors raised by wal-db.

Two families, as in h11: :class:`CorruptLogError` says *the bytes on disk are bad*;
``ValueError``/``TypeError`` say *the caller asked for something impossible*. Everything
wal-db raises on purpose about the log itself derives from :class:`WalError`. An
``OSError`` from a write or an fsync poisons the log (:class:`LogPoisonedError`); an
``OSError`` while opening or reading is re-raised as is.
"""

from __future__ import annotations

__all__ = [
    "WalError",
    "CorruptLogError",
    "LogPoisonedError",
    "RecordTooLargeError",
    "LogLockedError",
    "LogClosedError",
    "ReadOnlyLogError",
    "LsnOutOfRangeError",
]


class WalError(Exception):
    """Root of every error wal-db raises on purpose."""


class CorruptLogError(WalError):
    """Bytes in the log failed validation where a crash cannot explain them.

    Attributes:
        segment: the segment number (``None`` when the problem is not in one segment, for
            example a missing segment between two others).
        offset: the byte offset in that segment (``None`` when not tied to one place).
        reason: what failed, for example ``"frame checksum mismatch"``.
    """

    def __init__(self, reason: str, *, segment: int | None = None, offset: int | None = None):
        where = ""
        if segment is not None:
            where = f" in segment {segment}"
            if offset is not None:
                where += f" at offset {offset}"
        super().__init__(f"corrupt log{where}: {reason}")
        self.reason = reason
        self.segment = segment
        self.offset = offset


class LogPoisonedError(WalError):
    """A write or an fsync failed earlier; the log refuses appends and syncs until reopened.

    After a failed fsync the kernel may have dropped the dirty pages it could not write,
    so retrying would report success for data that is gone (the 2018 "fsyncgate"). The
    only safe recovery is to close the log and open it again, which re-reads what is
    really on disk. The original ``OSError`` is the ``__cause__``.
    """


class RecordTooLargeError(WalError, ValueError):
    """A payload is longer than the log's ``max_record_size``.

    Attributes:
        size: the payload's length.
        limit: the log's ``max_record_size``.
    """

    def __init__(self, size: int, limit: int):
        super().__init__(f"record of {size} bytes exceeds max_record_size={limit}")
        self.size = size
        self.limit = limit


class LogLockedError(WalError):
    """Another writer (in this or another process) holds the log's lock file."""


class LogClosedError(WalError):
    """The log was closed; open it again to use it."""


class ReadOnlyLogError(WalError):
    """A write was attempted through a log opened with ``read_only=True``."""


class LsnOutOfRangeError(WalError, ValueError):
    """An LSN names a record that is not in the log (truncated away, or not yet written)."""
