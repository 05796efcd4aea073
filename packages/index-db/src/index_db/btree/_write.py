"""The general write paths of the B+tree: every put and delete, with deferred leaves.

Theory of operation
-------------------
A put or delete that fits its leaf changes the decoded leaf alone (its keys, values and
byte count) and leaves the page's bytes behind: the leaf's first such change after it was
last encoded registers the leaf with page-db as a deferred write (``TreeCore.defer``),
and page-db encodes the page whole before anything reads or writes its bytes (a guard,
an eviction, the checkpoint). ``BTree._put`` takes the commonest case itself — an inline
value that fits — and :func:`put_general` takes every case:

* values in overflow chains (written before the leaf is looked up, since writing them
  allocates pages), and the chain of a replaced value freed once the leaf has changed;
* a leaf that would overflow: one whose page is current splits by moving page bytes
  (``_split.add_to_full_leaf``), one whose page lags splits in memory
  (``_split.split_deferred``); then ``fix_up`` updates the parents;
* a leaf left under a quarter full (a smaller value, a delete): ``fix_up`` merges or
  redistributes it with a sibling, under guards, which settle deferred leaves first.

A deferred leaf must fit its page whenever page-db may encode it, which is at any page-db
call this thread makes; so a leaf is changed only between page-db calls, and a split
allocates its new page before changing anything.
"""

from __future__ import annotations

from bisect import bisect_left

from . import _layout as L
from ._core import TreeCore
from ._node import Leaf, OverflowRef, Value, cell_size, leaf_delete_in_place
from ._overflow import free_chain, write_chain
from ._rebalance import fix_up
from ._split import add_to_full_leaf, split_deferred

__all__ = ["delete_key", "put_general"]

_CELL_OVERHEAD = L.SLOT_SIZE + L.CELL_HEADER_SIZE


def put_general(core: TreeCore, key: bytes, value: bytes) -> None:
    """Every put: values in overflow pages, a leaf that overflows (split) or falls
    under a quarter full (merge), as well as the short cases ``BTree._put`` takes
    itself (latch held, ``version`` odd)."""
    store = core.store
    stored: Value = value
    if _CELL_OVERHEAD + len(key) + len(value) > core.max_cell:
        stored = OverflowRef(write_chain(store, value), len(value))
    leaf = core.find_leaf(key)
    keys = leaf.keys
    i = bisect_left(keys, key)
    found = i < len(keys) and keys[i] == key
    old: Value | None = None
    if found:
        old = leaf.vals[i]
        used = leaf.used - cell_size(key, old) + cell_size(key, stored)
    else:
        used = leaf.used + cell_size(key, stored) + L.SLOT_SIZE
    if used <= core.cap:
        # It fits: change the decoded leaf alone; its page is encoded once, when
        # page-db needs the bytes (a guard, an eviction, the checkpoint).
        if not leaf.pending:
            core.defer(leaf)
        if found:
            leaf.vals[i] = stored
            leaf.overflows += (stored.__class__ is not bytes) - (old.__class__ is not bytes)
        else:
            keys.insert(i, key)
            leaf.vals.insert(i, stored)
            leaf.overflows += stored.__class__ is not bytes
            core.count += 1
        leaf.used = used
        if isinstance(old, OverflowRef):
            free_chain(store, old.first, old.length, leaf.pid)
        if used < core.min_fill and core.height > 1:  # a smaller value
            fix_up(core, core.branch_path(key), leaf)
        return
    # It overflows: split. A leaf whose page is current splits by moving page bytes;
    # one whose page lags (deferred) splits in memory, both halves deferred.
    if not found:
        core.count += 1
    split: tuple[Leaf, bytes] | None
    if leaf.pending:
        split = split_deferred(core, leaf, i, key, stored, found, used)
    else:
        with store.write(leaf.pid) as page:
            if found:
                leaf_delete_in_place(page.payload, leaf, i)
            split = add_to_full_leaf(core, page, leaf, i, key, stored)
    if isinstance(old, OverflowRef):
        free_chain(store, old.first, old.length, leaf.pid)
    fix_up(core, core.branch_path(key), leaf, split)


def delete_key(core: TreeCore, key: bytes) -> bool:
    """Remove ``key`` (latch held, ``version`` odd); whether it was there."""
    leaf = core.find_leaf(key)
    i = bisect_left(leaf.keys, key)
    if i == len(leaf.keys) or leaf.keys[i] != key:
        return False
    if not leaf.pending:
        core.defer(leaf)
    del leaf.keys[i]
    old = leaf.vals.pop(i)
    leaf.used -= cell_size(key, old) + L.SLOT_SIZE
    leaf.overflows -= old.__class__ is not bytes
    core.count -= 1
    if isinstance(old, OverflowRef):
        free_chain(core.store, old.first, old.length, leaf.pid)
    if core.height > 1 and leaf.used < core.min_fill:
        fix_up(core, core.branch_path(key), leaf)
    return True
