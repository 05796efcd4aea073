"""Page I/O of the hash index: the only module that opens page-db guards.

Theory of operation
-------------------
:class:`PageIO` holds the index's in-memory picture — the directory as a list of bucket
page ids, the global depth, the counts — and writes every change through to pages at once,
so that whenever the caller checkpoints the store, the pages hold exactly the index. The
picture is rebuilt from the pages on :meth:`HashIndex.open`, which is how a crash (back to
the last checkpoint) is survived: nothing lives only in memory.

Buckets are read through page-db's per-frame ``extra`` slot: :meth:`bucket` returns the
decoded :class:`~._codec.Bucket` kept there, decoding the payload only on a miss. A write
guard drops ``extra``; every writer here mutates the decoded bucket inside the write
guard (or just before it: ``store.write`` on a page that is in the pool fails only when
the store is closed or poisoned, and then nothing is read from it again), writes the
matching bytes, then sets ``extra`` back.

Every page read is checked against where it was reached from: a chain page's position and
hash prefix must match the chain (:meth:`chain`), which also stops a corrupt ``next``
pointer from looping.
"""

from __future__ import annotations

from page_db import PageStore

from ..errors import CorruptIndexError
from . import _codec
from . import _layout as L
from ._codec import Bucket, RootInfo

__all__ = ["PageIO", "buckets_at_depth"]


class PageIO:
    """The in-memory picture of one hash index and the page writes that keep it durable."""

    def __init__(self, store: PageStore, root: int, info: RootInfo, directory: list[int]):
        payload_size = store.payload_size
        self._store = store
        self._root = root
        self._max_depth = info.max_depth
        self._depth = info.global_depth
        self._mask = (1 << info.global_depth) - 1
        self._dir = directory
        self._dir_pages = list(info.directory_pages)
        self._count = info.count
        self._buckets = info.bucket_count
        self._at_global = buckets_at_depth(directory)
        self._capacity = L.bucket_capacity(payload_size)
        self._per_dir_page = L.directory_slots_per_page(payload_size)
        self._zeros = memoryview(bytes(payload_size))

    # --- reading -----------------------------------------------------------------------
    def bucket(self, page_id: int) -> Bucket:
        """The decoded bucket on ``page_id`` (from ``extra`` when warm)."""
        with self._store.read(page_id) as page:
            bucket: Bucket | None = page.extra
            if bucket.__class__ is not Bucket:  # None, or another layer's object
                bucket = _codec.decode_bucket(page.payload, page_id, self._max_depth)
                page.extra = bucket
        return bucket

    def chain(self, hashed: int) -> list[tuple[int, Bucket]]:
        """The bucket chain ``hashed`` maps to, as (page id, bucket), primary page first.

        Raises:
            CorruptIndexError: a page's position, depth or prefix does not fit the chain.
        """
        page_id = self._dir[hashed & self._mask]
        chain: list[tuple[int, Bucket]] = []
        head: Bucket | None = None
        read = self._store.read
        while page_id:
            with read(page_id) as page:  # self.bucket(), inlined
                bucket: Bucket | None = page.extra
                if bucket.__class__ is not Bucket:  # None, or another layer's object
                    bucket = _codec.decode_bucket(page.payload, page_id, self._max_depth)
                    page.extra = bucket
            if head is None:
                head = bucket
            if (
                bucket.position != len(chain)
                or hashed & bucket.mask != bucket.prefix
                or bucket.local_depth != head.local_depth
                or bucket.local_depth > self._depth
            ):
                raise CorruptIndexError(
                    f"hash index: bucket page (depth {bucket.local_depth}, prefix "
                    f"{bucket.prefix:#x}, position {bucket.position}) reached as position "
                    f"{len(chain)} of the chain for directory slot {hashed & self._mask}",
                    page_id=page_id,
                )
            chain.append((page_id, bucket))
            page_id = bucket.next_id
        return chain

    # --- writing buckets ---------------------------------------------------------------
    def write_bucket(self, page_id: int, bucket: Bucket) -> None:
        """Rewrite ``page_id`` from ``bucket`` (whose fields are already final)."""
        data = _codec.encode_bucket(bucket)
        size = len(data)
        with self._store.write(page_id) as page:
            payload = page.payload
            payload[:size] = data
            payload[size:] = self._zeros[size:]
            page.extra = bucket

    def append(self, page_id: int, bucket: Bucket, key: bytes, value: bytes) -> None:
        """Add a new record at the end of ``page_id``'s records (the caller checked room)."""
        with self._store.write(page_id) as page:
            payload = page.payload
            _put_at_end(payload, bucket, key, value)
            _stamp(payload, bucket)
            page.extra = bucket

    def replace(self, page_id: int, bucket: Bucket, key: bytes, value: bytes) -> None:
        """Give ``key``, on ``page_id``, a new value (the caller checked the page has room).

        A value of the same length is overwritten in place; otherwise the record is cut
        out (the records after it move down) and appended with its new value.
        """
        old = bucket.entries[key]
        with self._store.write(page_id) as page:
            payload = page.payload
            if len(old) == len(value):
                start = _record_offset(bucket, key) + L.RECORD_HEADER_SIZE + len(key)
                payload[start : start + len(value)] = value
                bucket.entries[key] = value
            else:
                self._cut(payload, bucket, key)
                _put_at_end(payload, bucket, key, value)
                _stamp(payload, bucket)
            page.extra = bucket

    def remove(self, page_id: int, bucket: Bucket, key: bytes) -> None:
        """Cut ``key``'s record out of ``page_id``; the records after it move down."""
        with self._store.write(page_id) as page:
            payload = page.payload
            self._cut(payload, bucket, key)
            _stamp(payload, bucket)
            page.extra = bucket

    def _cut(self, payload: memoryview, bucket: Bucket, key: bytes) -> None:
        offset = _record_offset(bucket, key)
        size = L.RECORD_HEADER_SIZE + len(key) + len(bucket.entries.pop(key))
        end = L.BUCKET_HEADER_SIZE + bucket.used
        payload[offset : end - size] = bytes(payload[offset + size : end])
        payload[end - size : end] = self._zeros[:size]
        bucket.used -= size

    def write_chain(
        self, first: int, depth: int, prefix: int, entries: dict[bytes, bytes], spare: list[int]
    ) -> None:
        """Write ``entries`` as a chain starting at page ``first``, packed in order.

        Overflow pages come from ``spare`` (popped) and then from the allocator.
        """
        groups: list[dict[bytes, bytes]] = [{}]
        used = 0
        for key, value in entries.items():
            size = L.RECORD_HEADER_SIZE + len(key) + len(value)
            if used + size > self._capacity:
                groups.append({})
                used = 0
            groups[-1][key] = value
            used += size
        pages = [first] + [spare.pop() if spare else self._store.allocate() for _ in groups[1:]]
        for position, (page_id, group) in enumerate(zip(pages, groups, strict=True)):
            kind = L.KIND_OVERFLOW if position else L.KIND_BUCKET
            next_id = pages[position + 1] if position + 1 < len(pages) else 0
            bucket = Bucket(
                kind=kind,
                local_depth=depth,
                prefix=prefix,
                next_id=next_id,
                position=position,
                entries=group,
            )
            self.write_bucket(page_id, bucket)

    # --- writing the directory and the root --------------------------------------------
    def write_directory_pages(self, indexes: range | set[int]) -> None:
        """Rewrite the directory pages at ``indexes`` from the in-memory directory."""
        per = self._per_dir_page
        for index in sorted(indexes):
            first = index * per
            data = _codec.encode_directory(first, self._dir[first : first + per])
            size = len(data)
            with self._store.write(self._dir_pages[index]) as page:
                payload = page.payload
                payload[:size] = data
                payload[size:] = self._zeros[size:]

    def write_slots(self, slots: range) -> None:
        """Rewrite the directory pages holding ``slots``."""
        if not slots:
            return
        per = self._per_dir_page
        if slots.step < per:  # consecutive slots are at most one page apart: a page range
            pages: range | set[int] = range(slots[0] // per, slots[-1] // per + 1)
        else:
            pages = {slot // per for slot in slots}
        self.write_directory_pages(pages)

    def write_root(self) -> None:
        """Rewrite the root page from the in-memory picture."""
        info = RootInfo(
            self._depth, self._max_depth, self._count, self._buckets, tuple(self._dir_pages)
        )
        data = _codec.encode_root(info)
        size = len(data)
        with self._store.write(self._root) as page:
            payload = page.payload
            payload[:size] = data
            payload[size:] = self._zeros[size:]

    def write_count(self) -> None:
        """Rewrite just the entry count on the root page."""
        with self._store.write(self._root) as page:
            L.COUNT_STRUCT.pack_into(page.payload, L.COUNT_OFFSET, self._count)

    def double(self) -> None:
        """Double the directory (global depth + 1): the new half repeats the old."""
        if self._depth >= self._max_depth:
            raise CorruptIndexError(f"hash index: directory cannot grow past {self._depth}")
        old_size = 1 << self._depth
        self._dir = self._dir + self._dir
        self._depth += 1
        self._mask = (1 << self._depth) - 1
        self._at_global = 0
        while len(self._dir_pages) < self.directory_pages_for(self._depth):
            self._dir_pages.append(self._store.allocate())
        self.write_slots(range(old_size, 2 * old_size))
        self.write_root()

    def halve(self) -> None:
        """Halve the directory (global depth - 1): no bucket may be at the global depth."""
        self._depth -= 1
        self._mask = (1 << self._depth) - 1
        self._dir = self._dir[: 1 << self._depth]
        keep = self.directory_pages_for(self._depth)
        for page_id in self._dir_pages[keep:]:
            self._store.free(page_id)
        del self._dir_pages[keep:]
        self.write_directory_pages(range(keep - 1, keep))
        self._at_global = buckets_at_depth(self._dir)

    def directory_pages_for(self, depth: int) -> int:
        """How many directory pages a directory of global depth ``depth`` takes."""
        return -(-(1 << depth) // self._per_dir_page)


def buckets_at_depth(directory: list[int]) -> int:
    """How many buckets have local depth == global depth: those named by one slot only."""
    seen: dict[int, int] = {}
    for page_id in directory:
        seen[page_id] = seen.get(page_id, 0) + 1
    return sum(1 for n in seen.values() if n == 1)


def _record_offset(bucket: Bucket, key: bytes) -> int:
    """Where ``key``'s record starts: records are on the page in ``entries`` order."""
    offset = L.BUCKET_HEADER_SIZE
    for other, value in bucket.entries.items():
        if other == key:
            return offset
        offset += L.RECORD_HEADER_SIZE + len(other) + len(value)
    raise KeyError(key)


def _put_at_end(payload: memoryview, bucket: Bucket, key: bytes, value: bytes) -> None:
    record = _codec.encode_record(key, value)
    offset = L.BUCKET_HEADER_SIZE + bucket.used
    payload[offset : offset + len(record)] = record
    bucket.entries[key] = value
    bucket.used += len(record)


def _stamp(payload: memoryview, bucket: Bucket) -> None:
    """Write the record count and record bytes of ``bucket`` into its page header."""
    L.RECORD_COUNT_STRUCT.pack_into(payload, L.RECORD_COUNT_OFFSET, len(bucket.entries))
    L.RECORD_BYTES_STRUCT.pack_into(payload, L.RECORD_BYTES_OFFSET, bucket.used)
