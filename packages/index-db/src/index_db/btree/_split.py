"""Splitting a full leaf by moving its page bytes, or in memory when its page lags.

Theory of operation
-------------------
A leaf whose heap holds its cells in key order and without garbage — every leaf a bulk
load or a whole rewrite (``encode_leaf``) leaves, until its first in-place insert — has
cell ``j`` at ``[slot[j], slot[j + 1])`` and the last cell ending at the page's end. Such
a leaf is split where its bytes balance, into cells ``[:m]`` and ``[m:]``:

* the right half's cells are copied, as one block, to the same offsets of the new page,
  and its slot array is the old one's tail, unchanged;
* the left half's cells move up by one block copy to the end of the page, and its slots
  grow by the same shift;
* the vacated bytes are zeroed, so both pages are exactly what ``encode_leaf`` writes.

That is a few slice copies where the general split (``_rebalance._split`` and two
``encode_leaf`` calls) builds a cell object per entry and writes both pages whole, and it
reads no key or value: after a bulk load, when every first insert into a leaf splits it,
a split costs about half as much. The decoded halves share the old lists' objects. Any
other leaf (garbage in its heap, cells out of order, overflow references) takes the
general path.

A leaf whose page lags its decoded form (a deferred write pending, see
``TreeCore.defer``) would have to be encoded before either of those. It is split in
memory instead (:func:`split_deferred`): the entry goes in, the lists are cut where the
bytes balance, the right half gets a freshly allocated page, and both halves stay
deferred — page-db encodes each once, when it needs the bytes.
"""

from __future__ import annotations

import operator
import struct
from array import array
from bisect import bisect_left
from itertools import islice

from page_db import PageWriteGuard

from . import _layout as L
from ._core import TreeCore
from ._node import Leaf, Value, cell_size, leaf_insert_in_place, slot_offsets
from ._rebalance import leaf_sizes, separator, split_index

__all__ = ["add_to_full_leaf", "split_deferred"]

_H = L.HEADER_SIZE
_SLOT = L.SLOT_SIZE


def add_to_full_leaf(
    core: TreeCore, page: PageWriteGuard, leaf: Leaf, i: int, key: bytes, val: Value
) -> tuple[Leaf, bytes] | None:
    """Add ``key`` / ``val`` as entry ``i`` of ``leaf``, which they do not fit.

    Args:
        core: the tree (latch held).
        page: the write guard the caller holds on ``leaf``'s page.
        leaf: the decoded leaf; ``key`` is not in it.
        i: where ``key`` goes among ``leaf``'s entries.
        key: the new key.
        val: its value, inline or an overflow reference.

    Returns:
        ``(right, separator)`` when the leaf was split in place: both pages written and
        their leaves cached, for :func:`._rebalance.fix_up` to add to the parent. None
        when the leaf's layout does not allow that: then the entry is added to the
        decoded leaf only, its page unchanged, and ``fix_up`` splits it the general way.
    """
    payload = page.payload
    offs = _in_order(payload, leaf)
    if offs is None:
        leaf.keys.insert(i, key)
        leaf.vals.insert(i, val)
        leaf.used += cell_size(key, val) + _SLOT
        leaf.overflows += val.__class__ is not bytes
        return None
    store = core.store
    pid = store.allocate()
    with store.write(pid) as new_page:
        right = _split_in_order(payload, new_page.payload, leaf, pid, offs)
        n = len(leaf.keys)
        if i < n or (i == n and leaf.used <= right.used):
            leaf_insert_in_place(payload, leaf, i, key, val)
        else:
            leaf_insert_in_place(new_page.payload, right, i - n, key, val)
        new_page.extra = right
    page.extra = leaf
    return right, separator(leaf.keys[-1], right.keys[0])


def _in_order(payload: memoryview, leaf: Leaf) -> array[int] | None:
    """``leaf``'s slots if its cells tile the heap in key order without garbage, else None."""
    n = len(leaf.keys)
    top = leaf.top
    if leaf.garbage or leaf.overflows or n < 2 or not top:
        return None
    offs = leaf.offs if leaf.offs is not None else slot_offsets(payload, n)
    if offs[0] != top or not all(map(operator.lt, offs, islice(offs, 1, None))):
        return None
    return offs


def _split_in_order(
    left: memoryview, right: memoryview, leaf: Leaf, right_pid: int, offs: array[int]
) -> Leaf:
    """Move the second half of ``leaf`` (page ``left``, slots ``offs``) to the all-zero
    page ``right`` (id ``right_pid``) and return it as a new leaf; ``leaf`` keeps the
    first half, packed at the end of its page."""
    n = len(leaf.keys)
    top = leaf.top
    end = len(left)
    m = _balanced_cut(offs, top, end)
    cut = offs[m]
    # The right half: its cells and slots where they were; a new header.
    right[cut:end] = left[cut:end]
    right[_H : _H + _SLOT * (n - m)] = left[_H + _SLOT * m : _H + _SLOT * n]
    L.NODE_HEADER.pack_into(right, 0, L.KIND_LEAF, 0, n - m, cut, 0, leaf.next, 0)
    # The left half: cells up against the end, slots shifted, the rest zeroed.
    shift = end - cut
    left[top + shift : end] = bytes(left[top:cut])
    left[_H : _H + _SLOT * m] = struct.pack(f"<{m}H", *map(shift.__add__, islice(offs, m)))
    left[_H + _SLOT * m : top + shift] = bytes(top + shift - _H - _SLOT * m)
    L.NODE_HEADER.pack_into(left, 0, L.KIND_LEAF, 0, m, top + shift, 0, right_pid, 0)

    new = Leaf(right_pid, leaf.keys[m:], leaf.vals[m:], leaf.next, end - cut + _SLOT * (n - m), 0)
    new.top = cut
    new.offs = offs[m:]
    del leaf.keys[m:]
    del leaf.vals[m:]
    leaf.used = cut - top + _SLOT * m
    leaf.top = top + shift
    leaf.next = right_pid
    leaf.offs = None  # read again from the page when a same-size overwrite needs it
    return new


def _balanced_cut(offs: array[int], top: int, end: int) -> int:
    """The cut ``m`` (1 to n - 1) that best balances the bytes of entries ``[:m]`` and
    ``[m:]`` (cells and slots) of a leaf whose cells tile ``[top, end)`` in order."""
    n = len(offs)
    total = end - top + _SLOT * n

    def twice_before(j: int) -> int:  # twice the bytes of entries [:j]
        return 2 * (offs[j] - top + _SLOT * j)

    m = bisect_left(range(1, n), total, key=twice_before) + 1  # in 1 .. n
    if m == n or (m > 1 and total - twice_before(m - 1) <= twice_before(m) - total):
        m -= 1
    return m


def split_deferred(
    core: TreeCore, leaf: Leaf, i: int, key: bytes, val: Value, found: bool, used: int
) -> tuple[Leaf, bytes]:
    """Put ``key`` / ``val`` in ``leaf`` as entry ``i`` (replacing it when ``found``),
    which makes it ``used`` bytes, more than a page holds, and split it in two decoded
    leaves whose pages page-db encodes later (deferred writes): no page byte is touched.

    The new page is allocated before ``leaf`` changes: an eviction inside ``allocate``
    may encode ``leaf`` (a deferred write settled from this thread), which must then
    still fit its page. Between the change and the split no page-db call is made.

    Returns:
        ``(right, separator)`` for :func:`._rebalance.fix_up` to add to the parent.
    """
    store = core.store
    pid = store.allocate()
    if not leaf.pending:
        core.defer(leaf)
    keys, vals = leaf.keys, leaf.vals
    if found:
        old = vals[i]
        vals[i] = val
        leaf.overflows += (val.__class__ is not bytes) - (old.__class__ is not bytes)
    else:
        keys.insert(i, key)
        vals.insert(i, val)
        leaf.overflows += val.__class__ is not bytes
    sizes = leaf_sizes(keys, vals)
    m = split_index(sizes, 1, len(keys) - 1)
    left_used = sum(sizes[:m])
    right = Leaf(pid, keys[m:], vals[m:], leaf.next, used - left_used, -1 if leaf.overflows else 0)
    del keys[m:]
    del vals[m:]
    leaf.used = left_used
    if leaf.overflows:
        leaf.overflows -= right.overflows
    leaf.next = pid
    with store.write(pid) as page:
        page.extra = right
    core.defer(right)
    return right, separator(keys[-1], right.keys[0])
