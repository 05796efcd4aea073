"""HashIndex.verify(): a full structural check of the pages against the in-memory picture.

Theory of operation
-------------------
Every page is decoded afresh from its bytes (never trusting the decoded object in
``extra``, which is compared with the fresh decode instead), and the whole structure is
checked: the root and directory pages equal the in-memory directory; every bucket is named
by exactly the ``2**(g-d)`` slots ending in its prefix; every chain page has the chain's
depth and prefix, the next position, a kind matching its position, and (for overflow pages)
at least one record; every key hashes to its bucket's prefix and appears once; the counts
on the root equal what the pages hold; no page is reachable twice. The result names every
page the index owns, so a caller whose store holds nothing else can check that no page
leaked (``store.stats()["pages"] == len(report.pages)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import CorruptIndexError
from . import _codec
from . import _layout as L
from ._codec import Bucket
from ._pages import buckets_at_depth

if TYPE_CHECKING:
    from ._index import HashIndex

__all__ = ["HashVerifyReport", "verify_index"]


@dataclass(frozen=True)
class HashVerifyReport:
    """What :meth:`HashIndex.verify` found (only returned when everything checked out).

    Attributes:
        pages: every page the index owns (root, directory, bucket and overflow pages).
        entries: keys in the index.
        buckets: primary bucket pages.
        overflow_pages: overflow pages in all chains.
        global_depth: the directory has ``2**global_depth`` slots.
    """

    pages: frozenset[int]
    entries: int
    buckets: int
    overflow_pages: int
    global_depth: int


def _fail(reason: str, page_id: int | None = None) -> CorruptIndexError:
    return CorruptIndexError(f"hash index verify: {reason}", page_id=page_id)


def _read_fresh(index: HashIndex, page_id: int) -> Bucket:
    """Decode ``page_id`` from its bytes and check ``extra`` agrees."""
    with index._store.read(page_id) as page:
        bucket = _codec.decode_bucket(page.payload, page_id, index._max_depth)
        cached: Bucket | None = page.extra
    if cached is not None and (
        cached.entries != bucket.entries
        or list(cached.entries) != list(bucket.entries)
        or (cached.kind, cached.local_depth, cached.prefix, cached.next_id, cached.position)
        != (bucket.kind, bucket.local_depth, bucket.prefix, bucket.next_id, bucket.position)
        or cached.used != bucket.used
    ):
        raise _fail("the decoded bucket in the page cache disagrees with its bytes", page_id)
    return bucket


def _check_directory(index: HashIndex, owned: set[int]) -> None:
    with index._store.read(index._root) as page:
        info = _codec.decode_root(page.payload, index._root, index._max_depth)
    expected = (index._depth, index._count, index._buckets, tuple(index._dir_pages))
    if (info.global_depth, info.count, info.bucket_count, info.directory_pages) != expected:
        raise _fail(f"root page {info} disagrees with the open index {expected}", index._root)
    per_page = L.directory_slots_per_page(index._store.payload_size)
    size = 1 << index._depth
    if len(index._dir) != size:
        raise _fail(f"directory has {len(index._dir)} slots for global depth {index._depth}")
    owned.add(index._root)
    for number, page_id in enumerate(info.directory_pages):
        if page_id in owned:
            raise _fail("directory page reachable twice", page_id)
        owned.add(page_id)
        first = number * per_page
        count = min(per_page, size - first)
        with index._store.read(page_id) as page:
            slots = _codec.decode_directory(page.payload, page_id, first, count)
        if slots != index._dir[first : first + count]:
            raise _fail("directory page disagrees with the open index", page_id)


def _check_chain(
    index: HashIndex, head_id: int, slots: list[int], owned: set[int]
) -> tuple[int, int]:
    """Check one bucket chain; return (entries, overflow pages)."""
    depth = index._depth
    hash_key = index._hash
    head = _read_fresh(index, head_id)
    if head.kind != L.KIND_BUCKET or head.local_depth > depth:
        raise _fail(
            f"directory names a page of kind {head.kind}, depth {head.local_depth}", head_id
        )
    if len(slots) != 1 << (depth - head.local_depth):
        raise _fail(f"bucket of depth {head.local_depth} named by {len(slots)} slots", head_id)
    if any(slot & head.mask != head.prefix for slot in slots):
        raise _fail(
            f"bucket prefix {head.prefix:#x} named by a slot that does not end in it", head_id
        )
    keys: set[bytes] = set()
    page_id, bucket, pages = head_id, head, 0
    while True:
        if page_id in owned:
            raise _fail("page reachable twice", page_id)
        owned.add(page_id)
        if (bucket.local_depth, bucket.prefix, bucket.position) != (
            head.local_depth,
            head.prefix,
            pages,
        ):
            raise _fail(f"chain page at position {pages} does not match its chain", page_id)
        if bucket.position and not bucket.entries:
            raise _fail("empty overflow page", page_id)
        for key in bucket.entries:
            if hash_key(key) & head.mask != head.prefix:
                raise _fail(f"key {key[:32]!r} is in a bucket its hash does not map to", page_id)
            if key in keys:
                raise _fail(f"key {key[:32]!r} appears twice in one chain", page_id)
            keys.add(key)
        pages += 1
        if not bucket.next_id:
            return len(keys), pages - 1
        page_id = bucket.next_id
        bucket = _read_fresh(index, page_id)


def verify_index(index: HashIndex) -> HashVerifyReport:
    """Check every page of ``index`` (call with the index's lock held).

    Raises:
        CorruptIndexError: anything inconsistent, naming the page.
    """
    owned: set[int] = set()
    _check_directory(index, owned)
    slots_of: dict[int, list[int]] = {}
    for slot, page_id in enumerate(index._dir):
        slots_of.setdefault(page_id, []).append(slot)
    entries = overflow = 0
    for head_id, slots in slots_of.items():
        found, extra_pages = _check_chain(index, head_id, slots, owned)
        entries += found
        overflow += extra_pages
    if entries != index._count:
        raise _fail(f"root counts {index._count} keys, buckets hold {entries}", index._root)
    if len(slots_of) != index._buckets:
        raise _fail(f"root counts {index._buckets} buckets, directory names {len(slots_of)}")
    if buckets_at_depth(index._dir) != index._at_global:
        raise _fail("count of buckets at the global depth is stale")
    return HashVerifyReport(frozenset(owned), entries, len(slots_of), overflow, index._depth)
