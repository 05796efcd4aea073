"""Errors raised by page-db.

Two families, as in h11: :class:`CorruptPageError` says *the bytes on disk are bad*;
:class:`PageUsageError` says *the caller asked for something impossible*. Everything
page-db raises on purpose derives from :class:`PageError`; an ``OSError`` from the
operating system is re-raised as is on reads, and poisons the store on writes
(see :class:`StorePoisonedError`).
"""

from __future__ import annotations

__all__ = [
    "PageError",
    "CorruptPageError",
    "PoolExhaustedError",
    "PageUsageError",
    "InvalidPageIdError",
    "PageSizeMismatchError",
    "StoreClosedError",
    "StorePoisonedError",
    "StoreLockedError",
]


class PageError(Exception):
    """Root of every error page-db raises on purpose."""


class CorruptPageError(PageError):
    """Bytes read from the file failed validation.

    Attributes:
        page_id: the logical page id being read, or ``None`` for structural pages
            (superblocks, page-table and free-list pages).
        slot: the physical slot the bytes came from, or ``None`` when the problem is not
            tied to one slot (for example "no valid superblock").
        reason: what failed, for example ``"checksum mismatch"``.
    """

    def __init__(self, reason: str, *, page_id: int | None = None, slot: int | None = None):
        self.reason = reason
        self.page_id = page_id
        self.slot = slot
        where = []
        if page_id is not None:
            where.append(f"page {page_id}")
        if slot is not None:
            where.append(f"slot {slot}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{reason}")


class PoolExhaustedError(PageError):
    """Every frame of the buffer pool is pinned, so no page can be brought in."""


class PageUsageError(PageError, ValueError):
    """The caller asked for something the store cannot do (a usage error, not corruption)."""


class InvalidPageIdError(PageUsageError):
    """The page id is not allocated (never allocated, freed, or out of range)."""


class PageSizeMismatchError(PageUsageError):
    """The file was created with another page size than the one asked for on open.

    Attributes:
        expected: the page size passed to ``open``.
        actual: the page size recorded in the file's superblock.
    """

    def __init__(self, expected: int, actual: int):
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"file has page size {actual}, opened with page_size={expected}; "
            f"reopen with page_size={actual}"
        )


class StoreClosedError(PageError):
    """The store was closed."""


class StorePoisonedError(PageError):
    """An earlier write or fsync failed; the store refuses further use until reopened.

    A failed fsync may have dropped pages the kernel had accepted, so retrying it and
    carrying on could report durability that does not exist (PostgreSQL's "fsyncgate").
    Reopening returns the store to its last durable checkpoint.
    """


class StoreLockedError(PageError):
    """Another process (or another open store in this one) holds the file's lock."""
