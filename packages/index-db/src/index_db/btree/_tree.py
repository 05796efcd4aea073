"""The public B+tree: ``BTree`` over a page-db ``PageStore``.

Theory of operation
-------------------
A lookup descends the cached branches (no page guard above the leaf level), peeks at the
leaf's decoded form in its page-db frame, and finds the key by ``bisect`` in the leaf's
decoded key list — without the tree latch, validated by ``TreeCore.version`` (a seqlock:
see :meth:`BTree.get`), falling back to the latch when anything was not cached or changed.
A put or delete descends the same way, then changes the decoded leaf's lists alone: the
page's bytes lag them until page-db needs the bytes. The first change after the leaf was
last encoded registers a page-db deferred write (``PageStore.defer``; see
:meth:`._core.TreeCore.defer`), which encodes the whole leaf before a guard, an eviction or
a checkpoint uses the page, so a leaf that takes many puts between two checkpoints is
encoded once (WiredTiger's reconciliation, in miniature). Only when the leaf would
overflow, or a non-root node drops under a quarter full, does
:func:`._rebalance.fix_up` split, merge or redistribute along the path, under guards.

Persistence. Every change goes to page-db pages, so page-db's checkpoint is the tree's
commit point. The tree's own state — root page id and key count — is 20 bytes
(:meth:`BTree.meta`) that the caller stores in the checkpoint meta:
``store.checkpoint(tree.meta())`` and, after a restart or a crash,
``BTree.open(store, store.meta)``. The tree then equals the tree at that checkpoint.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

from page_db import PageStore

from ..errors import CorruptIndexError, IndexUsageError, KeyTooLargeError, ValueTooLargeError
from . import _layout as L
from ._bulk import bulk_load
from ._core import TreeCore, bytes_arg
from ._node import Leaf
from ._overflow import read_chain
from ._scan import prefix_end, scan_forward, scan_reverse
from ._verify import drop_tree, verify_tree
from ._write import delete_key, put_general

__all__ = ["BTree"]

_CELL_OVERHEAD = L.SLOT_SIZE + L.CELL_HEADER_SIZE
_MISSING: Any = object()
_TOUCH_EVERY = 15  # an optimistic get refreshes its leaf in page-db's policy 1 time in 16


class BTree:
    """An ordered map of bytes keys to bytes values on page-db pages.

    Build one with :meth:`create` or :meth:`open`; one ``BTree`` object per tree per
    store. All methods are thread-safe (one latch per tree; see ``docs/API.md``).
    """

    def __init__(self, core: TreeCore) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self._core = core
        self._store = core.store

    # --- construction --------------------------------------------------------------------
    @classmethod
    def create(cls, store: PageStore, *, lookup_cache: int | None = None) -> BTree:
        """Create an empty tree in ``store`` (one new page: an empty root leaf).

        Args:
            store: an open, writable page-db store.
            lookup_cache: bytes the lookup cache may hold (since 1.3; see ``docs/API.md``):
                None for the buffer pool's size in bytes, 0 to turn the cache off.

        Returns:
            The new tree. Save ``tree.meta()`` in a checkpoint to make it durable.

        Raises:
            IndexUsageError: ``lookup_cache`` is not an int >= 0.
        """
        core = TreeCore(store, 0, 1, 0, lookup_cache)
        pid = core.root = store.allocate()
        core.write_leaf(Leaf(pid, [], [], 0))
        return cls(core)

    @classmethod
    def open(cls, store: PageStore, root: bytes | int, *, lookup_cache: int | None = None) -> BTree:
        """Open an existing tree.

        Args:
            store: the store holding the tree.
            root: the 20 bytes of :meth:`meta` (as saved in the checkpoint meta), or the
                int :attr:`root` page id alone — then the key count is recounted by
                walking the leaves, O(n).
            lookup_cache: as for :meth:`create`.

        Returns:
            The tree.

        Raises:
            CorruptIndexError: the meta record or the root page is bad.
            TypeError: ``root`` is neither bytes nor an int.
            IndexUsageError: ``lookup_cache`` is not an int >= 0.
        """
        if isinstance(root, (bytes, bytearray, memoryview)):
            raw = bytes(root)
            if len(raw) < L.META_SIZE:
                raise CorruptIndexError(f"B+tree meta is {len(raw)} bytes, need {L.META_SIZE}")
            magic, version, reserved, pid, count = L.META.unpack_from(raw, 0)
            if magic != L.META_MAGIC or version != L.META_VERSION or reserved or not pid:
                raise CorruptIndexError("not a B+tree meta record (magic or version)")
        elif isinstance(root, int) and not isinstance(root, bool):
            pid, count = root, -1
        else:
            raise TypeError(f"root must be meta bytes or a page id, not {type(root).__name__}")
        core = TreeCore(store, pid, 1, max(count, 0), lookup_cache)
        core.height = core.read_height()
        if count < 0:
            core.count = sum(len(leaf.keys) for leaf in core.leaves())
        return cls(core)

    # --- state ---------------------------------------------------------------------------
    @property
    def root(self) -> int:
        """Page id of the root node; changes when the root splits or collapses."""
        return self._core.root

    @property
    def height(self) -> int:
        """Levels in the tree (1: the root is a leaf)."""
        return self._core.height

    @property
    def max_key_size(self) -> int:
        """Longest key accepted: ``(payload_size - 16) // 4 - 12`` (1000 at 4 KiB pages)."""
        return self._core.max_key

    def meta(self) -> bytes:
        """The tree's 20-byte meta record (root, count) to store in the checkpoint meta."""
        with self._core.latch:
            return self._core.meta()

    def __len__(self) -> int:
        return self._core.count

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING  # type: ignore[arg-type]

    # --- argument checks -----------------------------------------------------------------
    def _key(self, key: object) -> bytes:
        data = bytes_arg(key, "key")
        if len(data) > self._core.max_key:
            raise KeyTooLargeError(
                f"key of {len(data)} bytes exceeds the maximum of "
                f"{self._core.max_key} for {self._store.page_size}-byte pages"
            )
        return data

    def _value(self, value: object) -> bytes:
        data = bytes_arg(value, "value")
        if len(data) > L.MAX_VALUE_SIZE:
            raise ValueTooLargeError(
                f"value of {len(data)} bytes exceeds the maximum of {L.MAX_VALUE_SIZE}"
            )
        return data

    # --- point operations ----------------------------------------------------------------
    def get(self, key: bytes, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``.

        Raises:
            TypeError: ``key`` is not bytes-like.
            CorruptIndexError, page_db.CorruptPageError: a page on the way is bad.
        """
        if type(key) is not bytes:
            key = bytes_arg(key, "key")
        core = self._core
        version = core.version
        peek = core.peek_unlocked
        if version & 1 or peek is None:
            return self._get_latched(key, default)
        # Optimistic: no latch. First the lookup cache, then the cached nodes; an answer
        # counts only if no write began or ended meanwhile (``version`` unchanged and
        # even); anything else — a miss, an overflow value, an exception from a node
        # caught mid-change — retries under the latch.
        hit = core.hot.get(key)
        if hit is not None and core.version == version:
            return hit
        try:
            pid = core.root
            level = core.height - 1
            branches = core.branches
            while level:
                node = branches[pid]
                pid = node.children[bisect_right(node.keys, key)]
                level -= 1
            leaf = peek(pid)
            if leaf.__class__ is Leaf and leaf.pid == pid:
                keys = leaf.keys
                i = bisect_left(keys, key)
                found = i != len(keys) and keys[i] == key
                if found:
                    val = leaf.vals[i]
                    if type(val) is not bytes:
                        val = _MISSING
                else:
                    val = default
                if core.version == version and val is not _MISSING:
                    ticks = core.ticks = core.ticks + 1
                    if not ticks & _TOUCH_EVERY:
                        core.peek(pid)  # tell the replacement policy the leaf is in use
                    if found and core.hot_budget:
                        # The doorkeeper inlined: a first find only marks its bucket.
                        seen = core.seen
                        bucket = hash(key) & core.seen_mask
                        bit = 1 << (bucket & 7)
                        if seen[bucket >> 3] & bit:
                            core.remember(keys[i], val, version)
                        else:
                            seen[bucket >> 3] |= bit
                            core.seen_room -= 1
                            if core.seen_room <= 0:
                                core.forget_marks()
                    return val
        except Exception:  # a node seen mid-change: retry under the latch
            pass
        return self._get_latched(key, default)

    def _get_latched(self, key: bytes, default: Any) -> Any:
        core = self._core
        with core.latch:
            if core.broken is not None:
                core.check_usable()
            hit = core.hot.get(key)
            if hit is not None:
                return hit
            pid = core.root
            level = core.height - 1
            branches = core.branches
            while level:
                node = branches.get(pid)
                if node is None:
                    node = core.branch(pid, level)
                pid = node.children[bisect_right(node.keys, key)]
                level -= 1
            leaf = core.peek(pid)
            if leaf.__class__ is not Leaf:
                leaf = core.leaf(pid)
            keys = leaf.keys
            i = bisect_left(keys, key)
            if i == len(keys) or keys[i] != key:
                return default
            val = leaf.vals[i]
            if type(val) is bytes:
                if core.hot_budget:
                    core.remember_latched(keys[i], val)
                return val
            return read_chain(self._store, val.first, val.length, pid)  # type: ignore[union-attr]

    def put(self, key: bytes, value: bytes) -> None:
        """Insert ``key`` or replace its value.

        Raises:
            TypeError: ``key`` or ``value`` is not bytes-like.
            KeyTooLargeError: ``key`` is longer than :attr:`max_key_size`.
            ValueTooLargeError: ``value`` is longer than 1 GiB.
            IndexUsageError: the tree is unusable after an earlier failed write.
        """
        core = self._core
        if type(key) is not bytes or len(key) > core.max_key:
            key = self._key(key)
        if type(value) is not bytes:
            value = self._value(value)
        elif len(value) > L.MAX_VALUE_SIZE:
            self._value(value)
        with core.latch:
            if core.broken is not None:
                core.check_usable()
            core.version += 1  # begin_write, inlined on this hot path
            try:
                hot = core.hot
                if hot and key in hot:
                    core.forget(key)
                self._put(key, value)
            except BaseException as exc:
                core.broken = exc
                raise
            finally:
                if core.broken is None:  # end_write, inlined
                    core.version += 1

    def _put(self, key: bytes, value: bytes) -> None:
        """The put itself (latch held, ``version`` odd): an inline value that fits its
        leaf changes the decoded leaf alone; anything else takes :func:`._write.put_general`."""
        core = self._core
        size = _CELL_OVERHEAD + len(key) + len(value)
        if size <= core.max_cell:
            leaf = core.find_leaf(key)
            keys = leaf.keys
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                vals = leaf.vals
                old = vals[i]
                if old.__class__ is bytes:
                    used = leaf.used - len(old) + len(value)
                    if used <= core.cap and (used >= core.min_fill or core.height == 1):
                        if not leaf.pending:
                            core.defer(leaf)
                        vals[i] = value
                        leaf.used = used
                        return
            else:
                used = leaf.used + size
                if used <= core.cap:
                    if not leaf.pending:
                        core.defer(leaf)
                    keys.insert(i, key)
                    leaf.vals.insert(i, value)
                    leaf.used = used
                    core.count += 1
                    return
        put_general(core, key, value)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``.

        Returns:
            True if the key was there, False if not.

        Raises:
            TypeError: ``key`` is not bytes-like.
            IndexUsageError: the tree is unusable after an earlier failed write.
        """
        if type(key) is not bytes:
            key = bytes_arg(key, "key")
        core = self._core
        with core.latch:
            core.check_usable()
            core.begin_write()
            try:
                if core.hot:
                    core.forget(key)
                return delete_key(core, key)
            except BaseException as exc:
                core.broken = exc
                raise
            finally:
                core.end_write()

    # --- scans ---------------------------------------------------------------------------
    def range(
        self,
        lo: bytes | None = None,
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        lo_inclusive: bool = True,
        hi_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``(key, value)`` with ``lo <= key < hi`` (bounds as the flags say).

        Args:
            lo: lower bound, or None for the first key.
            hi: upper bound, or None for past the last key.
            reverse: yield in descending key order.
            lo_inclusive: whether ``lo`` itself is included (default yes).
            hi_inclusive: whether ``hi`` itself is included (default no).

        Returns:
            A lazy iterator that stays valid while the tree changes (see the API doc).

        Raises:
            TypeError: a bound is not bytes-like (raised at once).
        """
        lo = None if lo is None else bytes_arg(lo, "lo")
        hi = None if hi is None else bytes_arg(hi, "hi")
        scan = scan_reverse if reverse else scan_forward
        return scan(self._core, lo, lo_inclusive, hi, hi_inclusive)

    def prefix(self, prefix: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Iterate the entries whose key starts with ``prefix``, in key order.

        Raises:
            TypeError: ``prefix`` is not bytes-like.
        """
        prefix = bytes_arg(prefix, "prefix")
        return self.range(prefix, prefix_end(prefix), reverse=reverse)

    def seek(self, key: bytes, *, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Iterate from the first key ``>= key`` up (``reverse``: from the last ``<= key`` down).

        Raises:
            TypeError: ``key`` is not bytes-like.
        """
        if reverse:
            return self.range(None, key, reverse=True, hi_inclusive=True)
        return self.range(key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every entry in key order (``range()`` with no bounds)."""
        return self.range()

    def keys(self) -> Iterator[bytes]:
        """Every key in order."""
        return (k for k, _ in self.range())

    # --- bulk and checks -----------------------------------------------------------------
    def bulk_load(self, items: Iterable[tuple[bytes, bytes]], *, fill: float = 1.0) -> int:
        """Load sorted ``(key, value)`` pairs into this empty tree, leaves packed full.

        Args:
            items: pairs in strictly ascending key order.
            fill: the fraction of each leaf's capacity to fill (since 1.4; 0.5 to 1.0).
                Below 1.0 leaves room for later inserts, as a fill factor does.

        Returns:
            The number of entries loaded.

        Raises:
            IndexUsageError: the tree is not empty, the keys are not strictly ascending
                (then nothing is loaded and the tree stays empty), or ``fill`` is bad.
            KeyTooLargeError, ValueTooLargeError, TypeError: a bad pair (same).
        """
        core = self._core
        if type(fill) not in (float, int) or not 0.5 <= fill <= 1.0:
            raise IndexUsageError(f"fill must be a number from 0.5 to 1.0, not {fill!r}")
        with core.latch:
            core.check_usable()
            if core.count or core.height != 1:
                raise IndexUsageError("bulk_load needs an empty tree")
            core.begin_write()
            try:
                core.forget_all()
                return bulk_load(core, items, self._key, self._value, fill)
            finally:
                core.end_write()

    def drop(self) -> int:
        """Free every page of the tree (since 1.1); afterwards every call on it raises
        ``IndexUsageError``. Returns the number of pages freed. Raises as ``verify``
        (nothing is freed) when the tree is damaged."""
        with self._core.latch:
            self._core.check_usable()
            self._core.begin_write()
            try:
                self._core.forget_all()
                return drop_tree(self._core)
            finally:
                self._core.end_write()  # a dropped tree keeps its version odd

    def verify(self, *, other_pages: int | None = 0) -> dict[str, Any]:
        """Check the whole tree from its pages (see ``docs/API.md``).

        Args:
            other_pages: allocated pages of the store that are not this tree's; the
                leak check wants reached pages + ``other_pages`` == the store's pages.
                None skips the leak check (a store shared with unknown structures).

        Returns:
            Figures: ``keys``, ``height``, ``leaves``, ``branches``, ``overflow_pages``,
            ``pages`` (reached), ``leaf_fill`` (mean fraction of leaf capacity used).

        Raises:
            CorruptIndexError: the first violation found; page_db.CorruptPageError: a
                page failed its checksum.
        """
        with self._core.latch:
            self._core.check_usable()
            return verify_tree(self._core, other_pages)
