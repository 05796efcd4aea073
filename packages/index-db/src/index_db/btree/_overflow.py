"""Overflow chains: values too large for a leaf cell, stored across linked pages.

Theory of operation
-------------------
A value whose cell would exceed a quarter of a node page goes to a chain of overflow
pages; the leaf cell keeps the first page id and the total length. Each overflow page
holds a 12-byte header (kind ``'O'``, next page id, bytes used) and up to
``payload_size - 12`` bytes of the value. Chains are written whole when the value is put
and freed whole when it is replaced or deleted; they are never updated in place.

Reading trusts nothing: every page must be an overflow page, the lengths must add up to
exactly the length in the cell, and a chain may not run longer than that length needs
(which also stops a cycle). Any mismatch raises ``CorruptIndexError``.
"""

from __future__ import annotations

from page_db import InvalidPageIdError, PageStore

from ..errors import CorruptIndexError
from . import _layout as L

__all__ = ["chain_pages", "free_chain", "read_chain", "write_chain"]

_HEADER = L.OVERFLOW_HEADER
_HS = L.OVERFLOW_HEADER_SIZE


def _chunk(store: PageStore) -> int:
    return store.payload_size - _HS


def write_chain(store: PageStore, value: bytes) -> int:
    """Store ``value`` (non-empty) in new overflow pages and return the first page id."""
    chunk = _chunk(store)
    view = memoryview(value)
    pieces = [view[i : i + chunk] for i in range(0, len(view), chunk)]
    pids = [store.allocate() for _ in pieces]
    for index, (pid, piece) in enumerate(zip(pids, pieces, strict=True)):
        nxt = pids[index + 1] if index + 1 < len(pids) else 0
        with store.write(pid) as page:
            payload = page.payload
            _HEADER.pack_into(payload, 0, L.KIND_OVERFLOW, nxt, len(piece))
            payload[_HS : _HS + len(piece)] = piece
    return pids[0]


def chain_pages(store: PageStore, first: int, length: int, owner: int) -> list[int]:
    """The page ids of the chain holding a ``length``-byte value, checked.

    Raises:
        CorruptIndexError: a page is missing, not an overflow page, or the lengths do
            not add up to ``length``.
    """
    return _walk(store, first, length, owner, None)


def read_chain(store: PageStore, first: int, length: int, owner: int) -> bytes:
    """Read the ``length``-byte value starting at page ``first`` (cell in page ``owner``).

    Raises:
        CorruptIndexError: as for :func:`chain_pages`.
    """
    out = bytearray()
    _walk(store, first, length, owner, out)
    return bytes(out)


def free_chain(store: PageStore, first: int, length: int, owner: int) -> None:
    """Free every page of a chain (checked first, so a bad chain frees nothing)."""
    for pid in _walk(store, first, length, owner, None):
        store.free(pid)


def _walk(
    store: PageStore, first: int, length: int, owner: int, out: bytearray | None
) -> list[int]:
    chunk = _chunk(store)
    limit = -(-length // chunk)
    pids: list[int] = []
    pid = first
    left = length
    while pid:
        if len(pids) >= limit:
            raise CorruptIndexError("overflow chain longer than its value", page_id=owner)
        try:
            page = store.read(pid)
        except InvalidPageIdError:
            raise CorruptIndexError(
                f"overflow chain points to unallocated page {pid}", page_id=owner
            ) from None
        with page:
            payload = page.payload
            kind, nxt, used = _HEADER.unpack_from(payload, 0)
            if kind != L.KIND_OVERFLOW or not 0 < used <= min(chunk, left):
                raise CorruptIndexError("bad overflow page header", page_id=pid)
            if out is not None:
                out += payload[_HS : _HS + used]
        pids.append(pid)
        left -= used
        pid = nxt
    if left or not pids:
        raise CorruptIndexError("overflow chain shorter than its value", page_id=owner)
    return pids
