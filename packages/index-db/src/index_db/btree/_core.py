"""Tree state and node access shared by the B+tree's operations.

Theory of operation
-------------------
``TreeCore`` holds what a tree is at a moment — root page id, height, key count — and the
two node caches. Leaves are cached in page-db's per-frame ``extra`` slot: a read guard on
a warm leaf returns the decoded :class:`Leaf` and nothing is decoded. Branches are cached
in a dict on the tree (``branches``), so a warm descent touches no read guard above the
leaf level; branches are a small fraction of the pages (about one per 400 leaves with
16-byte keys) and change only under the tree latch, so the dict is exact. A write guard
drops ``extra``; every writer re-sets it to the node it just encoded.

Latching. One mutex (``latch``) is held for each whole operation (put, delete, one leaf
batch of an iterator, verify, and a get that falls back). A plain lock costs a fraction of
a microsecond where a shared/exclusive latch costs several, and the GIL serialises the
pure-Python work anyway. ``get`` first tries without it: ``version`` is a seqlock that a
writer makes odd before changing anything and even after (``begin_write`` / ``end_write``),
and a reader keeps an answer only if it saw the same even version before and after.
``shape`` counts
structural changes (splits, merges, redistributions, bulk loads); an iterator that sees it
change re-descends from the last key it returned.

A write that fails half-way (an I/O error, a full pool, a corrupt page found while
rebalancing) leaves nodes in memory that may not match their pages, so the tree marks
itself broken and refuses further use; reopen it from the last checkpoint.

Lookup cache (an adaptive hash index, as InnoDB's). A warm get still pays for the memory
it touches: at a million keys the descent, the frame lookup and the leaf's binary search
reach some thirty cache lines spread over the heap, which is most of a get's time. So a
get that found an inline value remembers it in ``hot``, a dict of key to value, and the
next get of that key is one dict lookup. A doorkeeper (as TinyLFU's: a bit per hash
bucket, reset when half are marked) admits a key on its second find, so gets of keys read
once pay only for a bucket mark. Entries are added only under the latch and only
while ``version`` is still the one the reader saw, so an entry is never older than the
tree; every put and delete removes its key's entry while ``version`` is odd. The cache
holds at most ``hot_budget`` bytes, counted as key + value + ``HOT_ENTRY_COST`` per entry
(by default the buffer pool's size in bytes); when full it is emptied and refills with
what gets ask for. Values in overflow pages are never cached.
"""

from __future__ import annotations

import sys
import threading
from bisect import bisect_right as _bisect_right
from collections.abc import Callable, Iterator
from typing import Any

from page_db import InvalidPageIdError, PageStore

from ..errors import CorruptIndexError, IndexUsageError, IteratorInvalidatedError
from . import _layout as L
from ._node import (
    Branch,
    Leaf,
    branch_insert_in_place,
    decode_branch,
    decode_leaf,
    encode_branch,
    encode_leaf,
)

__all__ = ["TreeCore", "BRANCH_CACHE_LIMIT", "bytes_arg"]

_GIL = bool(getattr(sys, "_is_gil_enabled", lambda: True)())
"""Optimistic lookups rely on the GIL's atomic list and attribute accesses."""

BRANCH_CACHE_LIMIT = 1 << 16
"""Branches kept decoded on the tree before the dict is cleared and refilled."""

HOT_ENTRY_COST = 100
"""Bytes counted per lookup-cache entry on top of its key and value (dict slot, objects)."""


def bytes_arg(value: object, what: str) -> bytes:
    """``value`` as ``bytes`` (a copy of a bytearray or memoryview); ``TypeError`` if it is
    not bytes-like, naming it ``what``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes-like, not {type(value).__name__}")


def _no_peek(page_id: int) -> Any:
    return None


class TreeCore:
    """State, latch and node I/O of one tree on one store."""

    def __init__(
        self,
        store: PageStore,
        root: int,
        height: int,
        count: int,
        lookup_cache: int | None = None,
    ) -> None:
        payload = store.payload_size
        self.store = store
        self.root = root
        self.height = height
        self.count = count
        self.cap = L.capacity(payload)
        self.max_cell = L.max_cell(payload)
        self.max_key = L.max_key_size(payload)
        self.min_fill = L.min_fill(payload)
        self.branches: dict[int, Branch] = {}
        # Re-entrant so that a deferred leaf's settle (``defer``), which page-db may call
        # from inside this thread's own write, takes it without blocking.
        self.latch = threading.RLock()
        self.shape = 0
        self.broken: BaseException | None = None
        # Seqlock for the optimistic lookups: a writer makes it odd before changing
        # anything and even again after; a failed write leaves it odd for good.
        self.version = 0
        self.ticks = 0
        # page-db >= 1.1 peeks at a resident page's ``extra`` without a guard's pin and
        # unpin; with 1.0 every leaf access takes a read guard.
        self.peek: Callable[[int], Any] = getattr(store, "cached_extra", _no_peek)
        self.peek_unlocked: Callable[[int], Any] | None = (
            getattr(store, "peek_extra", None) if _GIL else None
        )
        if lookup_cache is None:
            pool = getattr(store, "pool_pages", None)  # page-db >= 1.3; O(1)
            if pool is None:
                pool = store.stats()["pool_capacity"]
            lookup_cache = int(pool) * store.page_size
        elif type(lookup_cache) is not int or lookup_cache < 0:
            raise IndexUsageError(f"lookup_cache must be an int >= 0, got {lookup_cache!r}")
        self.hot: dict[bytes, bytes] = {}
        self.hot_budget = lookup_cache
        self.hot_room = lookup_cache  # bytes the cache may still take
        # The doorkeeper (as TinyLFU's): one bit per hash bucket of keys found once, at
        # most 128 KiB so it stays in the CPU cache. A key is cached on its second find,
        # so keys read once never take room in the cache.
        slots = 1 << max(10, min(20, (2 * lookup_cache // HOT_ENTRY_COST).bit_length()))
        self.seen = bytearray(slots // 8 if lookup_cache else 0)
        self.seen_mask = slots - 1
        self.seen_room = slots // 2  # marks left before the doorkeeper starts over

    # --- state -----------------------------------------------------------------------
    def check_usable(self) -> None:
        """Raise if an earlier write failed half-way."""
        if self.broken is not None:
            if isinstance(self.broken, _TreeDroppedError):
                raise IndexUsageError("the B+tree was dropped: its pages are free")
            raise IndexUsageError(
                "the B+tree is unusable after a failed write "
                f"({type(self.broken).__name__}: {self.broken}); reopen it from the "
                "last checkpoint"
            )

    def begin_write(self) -> None:
        """Enter a write (latch held): optimistic readers now fall back to the latch."""
        self.version += 1

    def end_write(self) -> None:
        """Leave a write; a broken tree keeps ``version`` odd so every reader takes the latch."""
        if self.broken is None:
            self.version += 1

    def check_iterable(self) -> None:
        """As :meth:`check_usable`, for an iterator between batches."""
        if self.broken is not None:
            raise IteratorInvalidatedError(
                "the B+tree became unusable (a write failed) while iterating"
            )

    def meta(self) -> bytes:
        """The 20-byte meta record naming this tree."""
        return L.META.pack(L.META_MAGIC, L.META_VERSION, 0, self.root, self.count)

    # --- lookup cache --------------------------------------------------------------------
    def admit(self, key: bytes) -> bool:
        """Whether a key just found in the tree goes into the cache: yes if its doorkeeper
        bucket was marked by an earlier find; otherwise mark it and say no. (``get``'s
        lock-free path inlines this.)"""
        seen = self.seen
        bucket = hash(key) & self.seen_mask
        bit = 1 << (bucket & 7)
        if seen[bucket >> 3] & bit:
            return True
        seen[bucket >> 3] |= bit
        self.seen_room -= 1
        if self.seen_room <= 0:
            self.forget_marks()
        return False

    def forget_marks(self) -> None:
        """Clear the doorkeeper once half its buckets are marked, as TinyLFU resets."""
        seen = self.seen
        seen[:] = bytes(len(seen))
        self.seen_room = len(seen) * 4

    def remember(self, key: bytes, value: bytes, version: int) -> None:
        """Cache ``key`` -> ``value`` (admitted by the doorkeeper), read without the latch
        at ``version``, if no write began since. Takes the latch without waiting: a busy
        tree just skips the entry."""
        if not self.latch.acquire(False):
            return
        try:
            if self.version == version:
                self.keep(key, value)
        finally:
            self.latch.release()

    def remember_latched(self, key: bytes, value: bytes) -> None:
        """Cache ``key`` -> ``value``, read under the latch (held now), once admitted."""
        if not self.admit(key):
            return
        self.keep(key, value)

    def keep(self, key: bytes, value: bytes) -> None:
        """Put ``key`` -> ``value`` in the cache (latch held), emptying it when full."""
        cost = len(key) + len(value) + HOT_ENTRY_COST
        room = self.hot_room - cost
        if room < 0:
            self.hot.clear()
            room = self.hot_budget - cost
            if room < 0:  # bigger than the whole budget (or the cache is off)
                self.hot_room = self.hot_budget
                return
        self.hot[key] = value
        self.hot_room = room

    def forget(self, key: bytes) -> None:
        """Drop ``key``'s cached value (a writer, latch held, ``version`` odd)."""
        old = self.hot.pop(key, None)
        if old is not None:
            self.hot_room += len(key) + len(old) + HOT_ENTRY_COST

    def forget_all(self) -> None:
        """Empty the lookup cache (latch held)."""
        self.hot.clear()
        self.hot_room = self.hot_budget

    # --- reading nodes -----------------------------------------------------------------
    def _read(self, pid: int) -> Any:
        try:
            return self.store.read(pid)
        except InvalidPageIdError:
            raise CorruptIndexError(f"tree points to unallocated page {pid}") from None

    def branch(self, pid: int, level: int) -> Branch:
        """The decoded branch ``pid`` (expected at ``level``), from the cache if warm."""
        node = self.branches.get(pid)
        if node is not None:
            if node.level != level:
                raise CorruptIndexError(f"branch expected at level {level}", page_id=pid)
            return node
        with self._read(pid) as page:
            node = decode_branch(page.payload, pid, level)
        if len(self.branches) >= BRANCH_CACHE_LIMIT:
            self.branches.clear()
        self.branches[pid] = node
        return node

    def leaf(self, pid: int) -> Leaf:
        """The decoded leaf ``pid``, from its frame's ``extra`` if warm."""
        leaf = self.peek(pid)
        if leaf.__class__ is Leaf:
            return leaf
        with self._read(pid) as page:
            leaf = page.extra
            if leaf.__class__ is not Leaf:
                leaf = decode_leaf(page.payload, pid)
                page.extra = leaf
        return leaf

    def find_leaf(self, key: bytes) -> Leaf:
        """The leaf where ``key`` belongs: the writers' hot path (latch held).

        Branch lookups inlined, the leaf peeked from its frame. The lock-free peek is exact
        here (writers hold the latch) but for page-db's documented race with eviction,
        which the page id check catches.
        """
        pid = self.root
        level = self.height - 1
        branches = self.branches
        while level:
            node = branches.get(pid)
            if node is None:
                node = self.branch(pid, level)
            pid = node.children[_bisect_right(node.keys, key)]
            level -= 1
        leaf = (self.peek_unlocked or self.peek)(pid)
        if leaf.__class__ is not Leaf or leaf.pid != pid:
            leaf = self.leaf(pid)
        return leaf

    def branch_path(self, key: bytes) -> list[tuple[Branch, int]]:
        """The ``(branch, child_index)`` path from the root to ``key``'s leaf.

        Built only when a write must split, merge or redistribute; a put or delete that
        stays inside its leaf never pays for it.
        """
        path: list[tuple[Branch, int]] = []
        pid = self.root
        level = self.height - 1
        while level:
            node = self.branch(pid, level)
            index = _bisect_right(node.keys, key)
            path.append((node, index))
            pid = node.children[index]
            level -= 1
        return path

    def descend(self, key: bytes | None, path: list[list[Any]] | None, rightmost: bool) -> Leaf:
        """The leaf where ``key`` belongs (or the first / last leaf when ``key`` is None).

        Appends ``[branch, child_index]`` per level to ``path`` when given.
        """
        pid = self.root
        level = self.height - 1
        while level:
            node = self.branch(pid, level)
            if key is None:
                index = len(node.children) - 1 if rightmost else 0
            else:
                index = _bisect_right(node.keys, key)
            if path is not None:
                path.append([node, index])
            pid = node.children[index]
            level -= 1
        return self.leaf(pid)

    def read_height(self) -> int:
        """Read the root page's level to learn the tree's height."""
        try:
            page = self.store.read(self.root)
        except Exception as exc:
            raise CorruptIndexError(f"root page {self.root} cannot be read: {exc}") from exc
        with page:
            kind, level = page.payload[0], page.payload[1]
        if kind == L.KIND_LEAF and level == 0:
            return 1
        if kind == L.KIND_BRANCH and 1 <= level < L.MAX_HEIGHT:
            return int(level) + 1
        raise CorruptIndexError("root page is not a B+tree node", page_id=self.root)

    def leaves(self) -> Iterator[Leaf]:
        """Every leaf, left to right by sibling links (a cycle raises)."""
        leaf = self.descend(None, None, False)
        limit = self.store.stats()["pages"]  # once: stats() walks the pool's frames
        seen = 0
        while True:
            yield leaf
            seen += 1
            if not leaf.next:
                return
            if seen > limit:
                raise CorruptIndexError("sibling links form a cycle", page_id=leaf.pid)
            leaf = self.leaf(leaf.next)

    # --- writing nodes -------------------------------------------------------------------
    def defer(self, leaf: Leaf) -> None:
        """Let ``leaf``'s page lag the object: page-db encodes it when the bytes are needed.

        Called (latch held) before a put or delete first changes a leaf's lists alone. The
        leaf itself is the callback page-db keeps (:meth:`Leaf.__call__`, so deferring
        allocates nothing the garbage collector would have to walk).
        """
        leaf.latch = self.latch
        self.store.defer(leaf.pid, leaf)
        leaf.pending = True

    def write_leaf(self, leaf: Leaf) -> None:
        """Encode ``leaf`` whole into its page and cache it in ``extra``."""
        with self.store.write(leaf.pid) as page:
            encode_leaf(page.payload, leaf)
            page.extra = leaf

    def write_branch(self, node: Branch) -> None:
        """Encode ``node`` whole into its page and cache it."""
        with self.store.write(node.pid) as page:
            encode_branch(page.payload, node)
        self.branches[node.pid] = node

    def patch_branch(self, node: Branch, index: int) -> None:
        """Write ``node`` after one separator and child were inserted at ``index``, in place.

        Its page must still hold ``node`` as it was before that insert (and nothing else).
        """
        with self.store.write(node.pid) as page:
            branch_insert_in_place(page.payload, node, index)
        self.branches[node.pid] = node

    def write_node(self, node: Leaf | Branch) -> None:
        """Write a leaf or a branch."""
        if isinstance(node, Leaf):
            self.write_leaf(node)
        else:
            self.write_branch(node)

    def free(self, pid: int) -> None:
        """Free a node page and forget its cached form."""
        self.branches.pop(pid, None)
        self.store.free(pid)


class _TreeDroppedError(Exception):
    """Marks a tree whose pages ``BTree.drop()`` freed."""
