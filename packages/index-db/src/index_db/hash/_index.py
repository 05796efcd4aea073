"""HashIndex: extendible hashing of bytes keys to bytes values on page-db pages.

Theory of operation
-------------------
A *directory* of ``2**g`` slots (``g`` = global depth) maps the low ``g`` bits of a key's
stable hash (CRC-32, :mod:`._hashing`) to a *bucket*: a primary bucket page, plus overflow
pages chained behind it in the rare case that the bucket cannot split. A bucket of local
depth ``d <= g`` holds exactly the keys whose low ``d`` hash bits equal its prefix, and
the ``2**(g-d)`` slots ending in those bits all name it.

Insert. The record goes on the first page of the chain with room. When none has room the
bucket *splits*: its keys are divided by hash bit ``d`` between the old page and a new one,
both at depth ``d + 1``, and the slots of the new half are pointed at the new page; when
``d == g`` the directory doubles first. Splitting repeats until the record fits. A bucket
does not split when it is at the max depth (19 for 4 KiB pages: the largest directory the
root page can address) or when its keys and the new one all share their low max-depth
hash bits, i.e. splitting could never separate them (full-hash collisions, crafted keys):
the chain grows an overflow page instead, so a collision can never blow up the directory.

Delete. The record is removed and the page rewritten, so freed bytes are reused at once. An
overflow page that empties makes the chain be rewritten packed, freeing pages. A primary
page without overflow whose records and its buddy's (same depth, prefix differing in bit
``d - 1``) would fill at most half a page *merges* with the buddy; the freed page returns
to page-db, and the merged bucket tries its own buddy in turn, so emptied subtrees fold
all the way up. When no bucket is left at the global depth the directory halves. The
half-page threshold keeps a merge from causing an immediate split.

Durability. Every change is written through to pages before the call returns (see
:mod:`._pages`); the caller checkpoints the store with ``index.root`` in its meta, and
after a crash :meth:`HashIndex.open` on that root sees exactly the last checkpoint.

Concurrency. One lock per ``HashIndex`` object orders every call, so any number of reader
threads may share an index with one writer thread (or several): each call sees the index
before or after every other call, never in between. Under CPython's GIL readers would not
run in parallel anyway; the lock costs ~0.1 us per call. Open each index through one
``HashIndex`` object per store: the object caches the directory.
"""

from __future__ import annotations

import threading
from typing import TypeVar, overload

from page_db import PageStore

from ..errors import CorruptIndexError, KeyTooLargeError, ValueTooLargeError
from . import _codec, _hashing
from . import _layout as L
from ._codec import Bucket, RootInfo
from ._pages import PageIO
from ._verify import HashVerifyReport, verify_index

__all__ = ["HashIndex"]

_T = TypeVar("_T")


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes-like, got {type(data).__name__}")


class HashIndex(PageIO):
    """An extendible hash index of bytes keys to bytes values on a page-db store.

    Create one with :meth:`create` or :meth:`open`. Keep :attr:`root` in the store's
    checkpoint meta; ``store.checkpoint`` makes the index durable.
    """

    def __init__(self, store: PageStore, root: int, info: RootInfo, directory: list[int]):
        """Use :meth:`create` or :meth:`open`."""
        super().__init__(store, root, info, directory)
        self._hash = _hashing.hash_key
        self._lock = threading.Lock()
        self._max_value = L.max_value_size(store.payload_size)

    # --- constructors --------------------------------------------------------------------
    @classmethod
    def create(cls, store: PageStore) -> HashIndex:
        """Create an empty index in ``store`` (three new pages: root, directory, bucket).

        Args:
            store: an open, writable page store.

        Returns:
            The new index; it is durable once the caller checkpoints the store.

        Raises:
            page_db errors: the store is closed, read-only, poisoned or out of frames.
        """
        root = store.allocate()
        directory_page = store.allocate()
        bucket_page = store.allocate()
        info = RootInfo(0, L.max_depth_for(store.payload_size), 0, 1, (directory_page,))
        index = cls(store, root, info, [bucket_page])
        index.write_bucket(bucket_page, Bucket(kind=L.KIND_BUCKET, local_depth=0, prefix=0))
        index.write_directory_pages(range(1))
        index.write_root()
        return index

    @classmethod
    def open(cls, store: PageStore, root: int) -> HashIndex:
        """Open the index whose root page is ``root``.

        Args:
            store: the page store holding the index.
            root: the page id :attr:`root` returned when the index was created.

        Returns:
            The index as the store's pages hold it.

        Raises:
            CorruptIndexError: the root or a directory page is not valid hash index bytes.
            page_db errors: ``InvalidPageIdError`` when ``root`` is not allocated,
                ``CorruptPageError`` when a page fails its checksum, and the like.
        """
        max_depth = L.max_depth_for(store.payload_size)
        with store.read(root) as page:
            info = _codec.decode_root(page.payload, root, max_depth)
        per_page = L.directory_slots_per_page(store.payload_size)
        size = 1 << info.global_depth
        directory: list[int] = []
        for number, page_id in enumerate(info.directory_pages):
            first = number * per_page
            with store.read(page_id) as page:
                slots = _codec.decode_directory(
                    page.payload, page_id, first, min(per_page, size - first)
                )
            directory.extend(slots)
        return cls(store, root, info, directory)

    # --- properties ----------------------------------------------------------------------
    @property
    def root(self) -> int:
        """The root page id: keep it in the checkpoint meta to :meth:`open` the index."""
        return self._root

    @property
    def max_key_size(self) -> int:
        """The largest key in bytes (1024)."""
        return L.MAX_KEY_SIZE

    @property
    def max_value_size(self) -> int:
        """The largest value in bytes: 3012 with 4 KiB pages (payload - 24 - 4 - 1024)."""
        return self._max_value

    @property
    def global_depth(self) -> int:
        """The directory has ``2 ** global_depth`` slots."""
        return self._depth

    def __len__(self) -> int:
        """The number of keys."""
        return self._count

    # --- lookups -------------------------------------------------------------------------
    @overload
    def get(self, key: bytes) -> bytes | None: ...
    @overload
    def get(self, key: bytes, default: _T) -> bytes | _T: ...

    def get(self, key: bytes, default: object = None) -> object:
        """The value stored under ``key``, or ``default``.

        Args:
            key: bytes-like.
            default: returned when ``key`` is absent.

        Raises:
            TypeError: ``key`` is not bytes-like.
            CorruptIndexError: a page on the key's chain does not belong there.
        """
        if key.__class__ is not bytes:
            key = _as_bytes(key, "key")
        hashed = self._hash(key)
        with self._lock:
            page_id = self._dir[hashed & self._mask]
            with self._store.read(page_id) as page:  # self.bucket(), inlined: the hot path
                bucket: Bucket | None = page.extra
                if bucket.__class__ is not Bucket:  # None, or another layer's object
                    bucket = _codec.decode_bucket(page.payload, page_id, self._max_depth)
                    page.extra = bucket
            if (
                hashed & bucket.mask == bucket.prefix
                and bucket.local_depth <= self._depth
                and not bucket.position
            ):
                value = bucket.entries.get(key)
                if value is not None or not bucket.next_id:
                    return default if value is None else value
            for _, bucket in self.chain(hashed):  # overflow pages, or a check failed
                value = bucket.entries.get(key)
                if value is not None:
                    return value
            return default

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is in the index (TypeError if it is not bytes-like)."""
        return self.get(_as_bytes(key, "key")) is not None

    # --- changes -------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        """Insert ``key`` or replace its value.

        Args:
            key: bytes-like, at most :attr:`max_key_size` bytes (may be empty).
            value: bytes-like, at most :attr:`max_value_size` bytes.

        Raises:
            TypeError: ``key`` or ``value`` is not bytes-like.
            KeyTooLargeError, ValueTooLargeError: over the documented maximum.
            CorruptIndexError: a page on the key's chain does not belong there.
        """
        key = _as_bytes(key, "key")
        value = _as_bytes(value, "value")
        if len(key) > L.MAX_KEY_SIZE:
            raise KeyTooLargeError(f"key of {len(key)} bytes; the maximum is {L.MAX_KEY_SIZE}")
        if len(value) > self._max_value:
            raise ValueTooLargeError(
                f"value of {len(value)} bytes; the maximum is {self._max_value}"
            )
        hashed = self._hash(key)
        with self._lock:
            chain = self.chain(hashed)
            for position, (page_id, bucket) in enumerate(chain):
                old = bucket.entries.get(key)
                if old is None:
                    continue
                if bucket.used - len(old) + len(value) <= self._capacity:
                    self.replace(page_id, bucket, key, value)
                    return
                self._remove(chain, position, key)
                self._insert(key, value, hashed, self.chain(hashed))
                return
            self._insert(key, value, hashed, chain)
            self._count += 1
            self.write_count()

    def delete(self, key: bytes) -> bool:
        """Remove ``key``.

        Args:
            key: bytes-like.

        Returns:
            True if the key was there, False if not.

        Raises:
            TypeError: ``key`` is not bytes-like.
            CorruptIndexError: a page on the key's chain does not belong there.
        """
        key = _as_bytes(key, "key")
        hashed = self._hash(key)
        with self._lock:
            chain = self.chain(hashed)
            for position, (_, bucket) in enumerate(chain):
                if key in bucket.entries:
                    self._remove(chain, position, key)
                    self._count -= 1
                    merged = False
                    while self._merge(hashed):  # cascade up while buddies stay small
                        merged = True
                    if not merged:
                        self.write_count()
                    return True
            return False

    def verify(self) -> HashVerifyReport:
        """Check every page of the index from its bytes; see :class:`HashVerifyReport`.

        Checks that every bucket page is valid, every key sits in the bucket its hash
        names, the directory is consistent (each bucket named by exactly the slots ending
        in its prefix), the counts on the root match, and no page is reachable twice.

        Returns:
            What was found, including every page the index owns: a store holding only
            this index leaks no page when ``store.stats()["pages"] == len(report.pages)``.

        Raises:
            CorruptIndexError: the first inconsistency, naming the page.
        """
        with self._lock:
            return verify_index(self)

    # --- structure -----------------------------------------------------------------------
    def _insert(
        self, key: bytes, value: bytes, hashed: int, chain: list[tuple[int, Bucket]]
    ) -> None:
        size = L.RECORD_HEADER_SIZE + len(key) + len(value)
        while True:
            for page_id, bucket in chain:
                if bucket.used + size <= self._capacity:
                    self.append(page_id, bucket, key, value)
                    return
            if not self._separable(chain, hashed):
                self._add_overflow(chain, key, value)
                return
            self._split(chain)
            chain = self.chain(hashed)

    def _separable(self, chain: list[tuple[int, Bucket]], hashed: int) -> bool:
        """Whether splitting could ever separate the chain's keys and the new one."""
        if chain[0][1].local_depth >= self._max_depth:
            return False
        mask = (1 << self._max_depth) - 1
        target = hashed & mask
        hash_key = self._hash
        return any(hash_key(key) & mask != target for _, bucket in chain for key in bucket.entries)

    def _split(self, chain: list[tuple[int, Bucket]]) -> None:
        head_id, head = chain[0]
        depth = head.local_depth
        if depth == self._depth:
            self.double()
        bit = 1 << depth
        low: dict[bytes, bytes] = {}
        high: dict[bytes, bytes] = {}
        hash_key = self._hash
        for _, bucket in chain:
            for key, value in bucket.entries.items():
                (high if hash_key(key) & bit else low)[key] = value
        spare = [page_id for page_id, _ in chain[1:]]
        new_id = self._store.allocate()
        self.write_chain(head_id, depth + 1, head.prefix, low, spare)
        self.write_chain(new_id, depth + 1, head.prefix | bit, high, spare)
        for page_id in spare:
            self._store.free(page_id)
        slots = range(head.prefix | bit, 1 << self._depth, bit << 1)
        for slot in slots:
            self._dir[slot] = new_id
        self.write_slots(slots)
        self._buckets += 1
        if depth + 1 == self._depth:
            self._at_global += 2
        self.write_root()

    def _add_overflow(self, chain: list[tuple[int, Bucket]], key: bytes, value: bytes) -> None:
        last_id, last = chain[-1]
        new_id = self._store.allocate()
        overflow = Bucket(
            kind=L.KIND_OVERFLOW,
            local_depth=last.local_depth,
            prefix=last.prefix,
            position=last.position + 1,
            entries={key: value},
        )
        self.write_bucket(new_id, overflow)
        last.next_id = new_id
        self.write_bucket(last_id, last)

    def _remove(self, chain: list[tuple[int, Bucket]], position: int, key: bytes) -> None:
        page_id, bucket = chain[position]
        if position and len(bucket.entries) == 1:  # an overflow page empties: repack
            entries: dict[bytes, bytes] = {}
            for _, page in chain:
                entries.update(page.entries)
            del entries[key]
            spare = [pid for pid, _ in chain[1:]]
            head = chain[0][1]
            self.write_chain(chain[0][0], head.local_depth, head.prefix, entries, spare)
            for pid in spare:
                self._store.free(pid)
            return
        self.remove(page_id, bucket, key)

    def _merge(self, hashed: int) -> bool:
        """Merge the key's bucket with its buddy if both are small; True if it did."""
        head_id = self._dir[hashed & self._mask]
        head = self.bucket(head_id)
        depth = head.local_depth
        if depth == 0 or head.next_id:
            return False
        buddy_id = self._dir[head.prefix ^ (1 << (depth - 1))]
        buddy = self.bucket(buddy_id)
        if (
            buddy.local_depth != depth
            or buddy.next_id
            or head.used + buddy.used > self._capacity // 2
        ):
            return False
        if buddy.prefix != head.prefix ^ (1 << (depth - 1)):
            raise CorruptIndexError(
                "hash index: buddy bucket has the wrong prefix", page_id=buddy_id
            )
        keep_id, gone_id, gone = (head_id, buddy_id, buddy)
        if head.prefix >> (depth - 1):
            keep_id, gone_id, gone = (buddy_id, head_id, head)
        merged = dict(self.bucket(keep_id).entries)
        merged.update(gone.entries)
        prefix = head.prefix & ((1 << (depth - 1)) - 1)
        self.write_bucket(
            keep_id,
            Bucket(kind=L.KIND_BUCKET, local_depth=depth - 1, prefix=prefix, entries=merged),
        )
        slots = range(gone.prefix, 1 << self._depth, 1 << depth)
        for slot in slots:
            self._dir[slot] = keep_id
        self.write_slots(slots)
        self._store.free(gone_id)
        self._buckets -= 1
        if depth == self._depth:
            self._at_global -= 2
        while self._at_global == 0 and self._depth > 0:
            self.halve()
        self.write_root()
        return True
