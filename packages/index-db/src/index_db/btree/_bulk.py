"""Bulk load: build a tree bottom-up from sorted input, leaves packed full.

Theory of operation
-------------------
Entries stream into the current leaf until the next one would not fit its page; the leaf
is then complete (so leaves come out full up to the last entry that fits, well above the
90% the format promises for 100-byte values) and a new page starts the next. A complete
leaf is written one step late, once the next leaf's page id — its sibling link — is known.
The last leaf may be nearly empty; if it is under a quarter full it shares entries with
the one before it so every node keeps the size bound ``verify`` checks. Each branch level
is then packed the same way from the level below, with suffix-truncated separators between
leaves, until one node is left: the new root.

If the input is bad (out of order, a key too long, not bytes) every page allocated so far
is freed and the tree is left empty, as before the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise

from ..errors import IndexUsageError
from . import _layout as L
from ._core import TreeCore
from ._node import Branch, Leaf, OverflowRef, Value, branch_used
from ._overflow import free_chain, write_chain
from ._rebalance import separator, split_index

__all__ = ["bulk_load"]


class _Builder:
    def __init__(self, core: TreeCore) -> None:
        self.core = core
        self.allocated: list[int] = []
        self.bounds: list[tuple[int, bytes, bytes]] = []  # leaf pid, first key, last key
        self.pending: Leaf | None = None
        self.chains: list[OverflowRef] = []

    def allocate(self) -> int:
        pid = self.core.store.allocate()
        self.allocated.append(pid)
        return pid

    def complete(self, leaf: Leaf, next_pid: int) -> None:
        leaf.next = next_pid
        if self.pending is not None:
            self._emit(self.pending)
        self.pending = leaf

    def finish(self, last: Leaf) -> None:
        prev = self.pending
        if prev is not None and last.used < self.core.min_fill:
            keys = prev.keys + last.keys
            vals = prev.vals + last.vals
            cells = [
                L.SLOT_SIZE
                + L.CELL_HEADER_SIZE
                + len(k)
                + (len(v) if type(v) is bytes else L.OVERFLOW_REF_SIZE)
                for k, v in zip(keys, vals, strict=True)
            ]
            m = split_index(cells, 1, len(keys) - 1)
            prev = Leaf(prev.pid, keys[:m], vals[:m], last.pid)
            last = Leaf(last.pid, keys[m:], vals[m:], 0)
        if prev is not None:
            self._emit(prev)
        self._emit(last)

    def _emit(self, leaf: Leaf) -> None:
        self.core.write_leaf(leaf)
        if leaf.keys:
            self.bounds.append((leaf.pid, leaf.keys[0], leaf.keys[-1]))

    def branches(self) -> tuple[int, int]:
        """Build the branch levels; return (root page id, height)."""
        children = [pid for pid, _, _ in self.bounds]
        seps = [separator(a[2], b[1]) for a, b in pairwise(self.bounds)]
        level = 1
        while len(children) > 1:
            children, seps = self._level(children, seps, level)
            level += 1
        return children[0], level

    def _level(
        self, children: list[int], seps: list[bytes], level: int
    ) -> tuple[list[int], list[bytes]]:
        core = self.core
        groups: list[list[int]] = [[0, 1]]
        used = L.CHILD_SIZE
        for i in range(1, len(children)):
            cost = L.BRANCH_KEY_COST + len(seps[i - 1])
            if used + cost > core.cap:
                groups.append([i, i + 1])
                used = L.CHILD_SIZE
            else:
                groups[-1][1] = i + 1
                used += cost
        if len(groups) > 1:
            a, b = groups[-2][0], groups[-1][1]
            if branch_used(seps[groups[-1][0] : b - 1]) < core.min_fill:
                costs = [L.BRANCH_KEY_COST + len(s) for s in seps[a : b - 1]]
                m = split_index(costs, 1, len(costs) - 1)
                groups[-2] = [a, a + m]
                groups[-1] = [a + m, b]
        up_children: list[int] = []
        up_seps: list[bytes] = []
        for a, b in groups:
            node = Branch(self.allocate(), level, seps[a : b - 1], children[a:b])
            core.write_branch(node)
            if a:
                up_seps.append(seps[a - 1])
            up_children.append(node.pid)
        return up_children, up_seps


def _stored(core: TreeCore, key: bytes, value: bytes, builder: _Builder) -> Value:
    if L.SLOT_SIZE + L.CELL_HEADER_SIZE + len(key) + len(value) <= core.max_cell:
        return value
    ref = OverflowRef(write_chain(core.store, value), len(value))
    builder.chains.append(ref)
    return ref


def bulk_load(
    core: TreeCore,
    items: Iterable[tuple[bytes, bytes]],
    check_key: Callable[[object], bytes],
    check_value: Callable[[object], bytes],
) -> int:
    """Load ``items`` into the empty tree ``core``; return how many were loaded."""
    builder = _Builder(core)
    first_pid = core.root
    try:
        count = _stream(core, builder, items, check_key, check_value, first_pid)
        root, height = builder.branches() if len(builder.bounds) > 1 else (first_pid, 1)
    except BaseException:
        _undo(core, builder, first_pid)
        raise
    core.root, core.height, core.count = root, height, count
    core.shape += 1
    return count


def _stream(
    core: TreeCore,
    builder: _Builder,
    items: Iterable[tuple[bytes, bytes]],
    check_key: Callable[[object], bytes],
    check_value: Callable[[object], bytes],
    first_pid: int,
) -> int:
    cap = core.cap
    keys: list[bytes] = []
    vals: list[Value] = []
    used = 0
    pid = first_pid
    prev: bytes | None = None
    count = 0
    for raw_key, raw_value in items:
        key = raw_key
        if type(key) is not bytes or len(key) > core.max_key:
            key = check_key(key)
        value = raw_value
        if type(value) is not bytes or len(value) > L.MAX_VALUE_SIZE:
            value = check_value(value)
        if prev is not None and key <= prev:
            raise IndexUsageError("bulk_load input must be sorted by key, with no duplicates")
        prev = key
        stored = _stored(core, key, value, builder)
        size = (
            L.SLOT_SIZE
            + L.CELL_HEADER_SIZE
            + len(key)
            + (len(value) if stored is value else L.OVERFLOW_REF_SIZE)
        )
        if used + size > cap:
            next_pid = builder.allocate()
            builder.complete(Leaf(pid, keys, vals, 0), next_pid)
            pid, keys, vals, used = next_pid, [], [], 0
        keys.append(key)
        vals.append(stored)
        used += size
        count += 1
    builder.finish(Leaf(pid, keys, vals, 0))
    return count


def _undo(core: TreeCore, builder: _Builder, first_pid: int) -> None:
    for ref in builder.chains:
        free_chain(core.store, ref.first, ref.length, first_pid)
    for pid in builder.allocated:
        core.free(pid)
    core.write_leaf(Leaf(first_pid, [], [], 0))
