"""Errors raised by index-db.

Two families, as in page-db: :class:`CorruptIndexError` says *the bytes of an index are
bad*; :class:`IndexUsageError` says *the caller asked for something impossible*. Everything
index-db raises on purpose derives from :class:`IndexDbError`. Errors of page-db (for
example ``page_db.CorruptPageError`` when a page fails its checksum) and of persist-db pass
through unchanged.
"""

from __future__ import annotations

__all__ = [
    "IndexDbError",
    "CorruptIndexError",
    "IndexUsageError",
    "KeyTooLargeError",
    "ValueTooLargeError",
    "IteratorInvalidatedError",
    "DimensionMismatchError",
]


class IndexDbError(Exception):
    """Root of every error index-db raises on purpose."""


class CorruptIndexError(IndexDbError):
    """A page or snapshot of an index holds bytes that fail the index's own checks.

    The page checksum passed (page-db verified it), but the node inside does not make
    sense: a bad node type, a slot pointing outside the page, keys out of order, a child
    pointer to a page that is not part of the index.

    Attributes:
        reason: what failed, for example ``"keys out of order"``.
        page_id: the page holding the bad bytes, or ``None`` when not tied to one page.
    """

    def __init__(self, reason: str, *, page_id: int | None = None) -> None:
        self.reason = reason
        self.page_id = page_id
        prefix = f"page {page_id}: " if page_id is not None else ""
        super().__init__(f"{prefix}{reason}")


class IndexUsageError(IndexDbError, ValueError):
    """The caller asked for something the index cannot do (a usage error, not corruption)."""


class KeyTooLargeError(IndexUsageError):
    """A key is longer than the index's documented maximum key size."""


class ValueTooLargeError(IndexUsageError):
    """A value is longer than the index's documented maximum value size."""


class IteratorInvalidatedError(IndexDbError, RuntimeError):
    """The index changed under an iterator in a way the iterator cannot follow."""


class DimensionMismatchError(IndexUsageError):
    """A vector's dimension (or dtype) does not match the vector index."""
