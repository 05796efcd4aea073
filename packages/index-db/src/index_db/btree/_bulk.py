"""Bulk load: build a tree bottom-up from sorted input, leaves packed full.

Theory of operation
-------------------
Entries stream into the current leaf until the next one would not fit its page (or its
``fill`` share of the page, a fill factor that leaves room for later inserts); the leaf
is then complete (so leaves come out full up to the last entry that fits, well above the
90% the format promises for 100-byte values) and a new page starts the next. A complete
leaf is written one step late, once the next leaf's page id — its sibling link — is known.
The last leaf may be nearly empty; if it is under a quarter full it shares entries with
the one before it so every node keeps the size bound ``verify`` checks. Each branch level
is then packed the same way from the level below, with suffix-truncated separators between
leaves, until one node is left: the new root.

If the input is bad (out of order, a key too long, not bytes) every page allocated so far
is freed and the tree is left empty, as before the call.

Python's cyclic garbage collector is paused while the load runs (and restored after, if
it was on). A load creates millions of tracked objects that all stay alive, and every
collection the allocations trigger would re-scan them: on 1M keys that was half the
load's time. Nothing a load creates is cyclic garbage. When the collector is switched
back on, the objects are moved to its oldest generation unscanned (``_promote_unscanned``).
"""

from __future__ import annotations

import functools
import gc
import operator
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate, islice, pairwise, repeat

from ..errors import IndexUsageError
from . import _layout as L
from ._core import TreeCore
from ._node import Branch, Leaf, OverflowRef, Value, branch_used, lay_out_leaf, leaf_cell
from ._overflow import free_chain, write_chain
from ._rebalance import separator, split_index

__all__ = ["bulk_load"]

_CHUNK = 4096  # pairs checked and encoded per batch of list operations
_PLUS_SLOT = L.SLOT_SIZE.__add__


class _Builder:
    def __init__(self, core: TreeCore, fill: float = 1.0) -> None:
        self.core = core
        # Bytes of slots and cells a leaf takes before the next one starts. With fill >= 0.5
        # and cells of at most a quarter of the capacity, every leaf gets two or more.
        self.leaf_limit = int(core.cap * fill)
        self.allocated: list[int] = []
        self.bounds: list[tuple[int, bytes, bytes]] = []  # leaf pid, first key, last key
        self.pending: tuple[Leaf, list[bytes]] | None = None
        self.chains: list[OverflowRef] = []

    def allocate(self) -> int:
        pid = self.core.store.allocate()
        self.allocated.append(pid)
        return pid

    def complete(self, leaf: Leaf, next_pid: int, cells: list[bytes]) -> None:
        leaf.next = next_pid
        if self.pending is not None:
            self._emit(*self.pending)
        self.pending = (leaf, cells)

    def finish(self, last: Leaf, last_cells: list[bytes]) -> None:
        if self.pending is None:
            self._emit(last, last_cells)
            return
        prev, prev_cells = self.pending
        if last.used < self.core.min_fill:
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
            both = prev_cells + last_cells
            prev = Leaf(prev.pid, keys[:m], vals[:m], last.pid)
            last = Leaf(last.pid, keys[m:], vals[m:], 0)
            prev_cells, last_cells = both[:m], both[m:]
        self._emit(prev, prev_cells)
        self._emit(last, last_cells)

    def _emit(self, leaf: Leaf, cells: list[bytes]) -> None:
        with self.core.store.write(leaf.pid) as page:
            lay_out_leaf(page.payload, leaf, cells)
            page.extra = leaf
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
                j = split_index(costs, 0, len(costs) - 1, middle=True)
                groups[-2] = [a, a + j + 1]
                groups[-1] = [a + j + 1, b]
        up_children: list[int] = []
        up_seps: list[bytes] = []
        for a, b in groups:
            node = Branch(self.allocate(), level, seps[a : b - 1], children[a:b])
            core.write_branch(node)
            if a:
                up_seps.append(seps[a - 1])
            up_children.append(node.pid)
        return up_children, up_seps


def _overflow_cell(
    core: TreeCore, key: bytes, value: bytes, builder: _Builder
) -> tuple[OverflowRef, bytes]:
    ref = OverflowRef(write_chain(core.store, value), len(value))
    builder.chains.append(ref)
    return ref, leaf_cell(key, ref)


def bulk_load(
    core: TreeCore,
    items: Iterable[tuple[bytes, bytes]],
    check_key: Callable[[object], bytes],
    check_value: Callable[[object], bytes],
    fill: float = 1.0,
) -> int:
    """Load ``items`` into the empty tree ``core``, each leaf filled to ``fill`` of its
    capacity; return how many were loaded."""
    builder = _Builder(core, fill)
    first_pid = core.root
    collecting = gc.isenabled()
    gc.disable()
    try:
        count = _stream(core, builder, items, check_key, check_value, first_pid)
        root, height = builder.branches() if len(builder.bounds) > 1 else (first_pid, 1)
    except BaseException:
        try:
            _undo(core, builder, first_pid)
        except BaseException as exc:
            core.broken = exc  # pages half freed: the tree cannot be trusted any more
        raise
    finally:
        if collecting:
            _promote_unscanned()
            gc.enable()
    core.root, core.height, core.count = root, height, count
    core.shape += 1
    return count


def _promote_unscanned() -> None:
    """Move every object the collector tracks to its oldest generation without a scan.

    The load leaves a few hundred thousand new tracked objects (nodes, their lists, the
    pool's new frames) in the youngest generation, all alive; the first collection after
    ``gc.enable()`` would walk every one of them (0.15-0.2 s at 1M keys). ``freeze`` then
    ``unfreeze`` moves them to the oldest generation instead, where full collections
    still see them. Skipped when the process has frozen objects itself (``unfreeze``
    would thaw those too). What was frozen when index-db was imported counts as the
    interpreter's own until the first promotion thaws it: CPython 3.12 starts with a few
    hundred objects frozen, and 1.5 skipped every promotion there.
    """
    if gc.get_freeze_count() <= _Frozen.interpreter:
        gc.freeze()
        gc.unfreeze()
        _Frozen.interpreter = 0  # thawed: whatever is frozen from now on is the process's


class _Frozen:
    """How many objects were frozen when index-db was imported (the interpreter's)."""

    interpreter = gc.get_freeze_count()


def _stream(
    core: TreeCore,
    builder: _Builder,
    items: Iterable[tuple[bytes, bytes]],
    check_key: Callable[[object], bytes],
    check_value: Callable[[object], bytes],
    first_pid: int,
) -> int:
    """Cut the input into leaves a chunk at a time, with C-speed list operations."""
    source = iter(items)
    keys: list[bytes] = []
    vals: list[Value] = []
    cells: list[bytes] = []
    pid = first_pid
    prev: bytes | None = None
    count = 0
    while chunk := list(islice(source, _CHUNK)):
        new_keys, new_vals, new_cells = _prepare(core, builder, chunk, prev, check_key, check_value)
        prev = new_keys[-1]
        count += len(new_keys)
        keys += new_keys
        vals += new_vals
        cells += new_cells
        pid, keys, vals, cells = _cut_leaves(core, builder, pid, keys, vals, cells)
    builder.finish(Leaf(pid, keys, vals, 0), cells)
    return count


def _prepare(
    core: TreeCore,
    builder: _Builder,
    chunk: list[tuple[bytes, bytes]],
    prev: bytes | None,
    check_key: Callable[[object], bytes],
    check_value: Callable[[object], bytes],
) -> tuple[list[bytes], list[Value], list[bytes]]:
    """Check one chunk of pairs and encode their cells (overflow chains written here)."""
    try:
        keys = [key for key, _ in chunk]
        vals: list[Value] = [value for _, value in chunk]
    except (TypeError, ValueError):
        raise TypeError("bulk_load items must be (key, value) pairs") from None
    if set(map(type, keys)) != {bytes}:
        keys = [check_key(key) for key in keys]
    if set(map(type, vals)) != {bytes}:
        vals = [check_value(value) for value in vals]
    # Lengths once, for the size checks and the cells. ``max`` is the slow part (a rich
    # comparison per item); ``count`` of the first length proves most chunks need none.
    n = len(keys)
    klens = list(map(len, keys))
    vlens = list(map(len, vals))  # type: ignore[arg-type]
    klen, vlen = klens[0], vlens[0]
    fixed_keys = klens.count(klen) == n
    fixed_vals = vlens.count(vlen) == n
    if (klen if fixed_keys else max(klens)) > core.max_key:
        keys = [check_key(key) for key in keys]  # raises KeyTooLargeError
    if (vlen if fixed_vals else max(vlens)) > L.MAX_VALUE_SIZE:
        vals = [check_value(value) for value in vals]  # raises ValueTooLargeError
    if (prev is not None and keys[0] <= prev) or not all(
        map(operator.lt, keys, islice(keys, 1, None))
    ):
        raise IndexUsageError("bulk_load input must be sorted by key, with no duplicates")
    limit = core.max_cell - L.SLOT_SIZE
    if fixed_keys and fixed_vals and L.CELL_HEADER_SIZE + klen + vlen <= limit:
        # Fixed-width records: one compiled struct packs each whole cell in one C call,
        # 2.5x faster than a header and two concatenations.
        pack = _cell_struct(klen, vlen).pack
        return keys, vals, list(map(pack, repeat(klen), repeat(vlen), keys, vals))
    heads = map(L.CELL.pack, klens, vlens)
    cells = list(map(operator.add, map(operator.add, heads, keys), vals))
    if max(map(operator.add, klens, vlens)) + L.CELL_HEADER_SIZE > limit:
        for index, cell in enumerate(cells):
            if len(cell) > limit:
                vals[index], cells[index] = _overflow_cell(
                    core,
                    keys[index],
                    vals[index],  # type: ignore[arg-type]
                    builder,
                )
    return keys, vals, cells


@functools.lru_cache(maxsize=64)
def _cell_struct(key_size: int, value_size: int) -> struct.Struct:
    """The struct of a whole leaf cell with this key and value size (inline value)."""
    return struct.Struct(f"<HI{key_size}s{value_size}s")


def _cut_leaves(
    core: TreeCore,
    builder: _Builder,
    pid: int,
    keys: list[bytes],
    vals: list[Value],
    cells: list[bytes],
) -> tuple[int, list[bytes], list[Value], list[bytes]]:
    """Emit every full leaf; return the page id and entries of the leaf still filling."""
    offsets = list(accumulate(map(_PLUS_SLOT, map(len, cells)), initial=0))
    total = len(cells)
    start = 0
    while True:
        end = bisect_right(offsets, offsets[start] + builder.leaf_limit) - 1
        if end >= total:
            break
        next_pid = builder.allocate()
        overflows = -1 if builder.chains else 0
        leaf = Leaf(
            pid, keys[start:end], vals[start:end], 0, offsets[end] - offsets[start], overflows
        )
        builder.complete(leaf, next_pid, cells[start:end])
        pid = next_pid
        start = end
    return pid, keys[start:], vals[start:], cells[start:]


def _undo(core: TreeCore, builder: _Builder, first_pid: int) -> None:
    for ref in builder.chains:
        free_chain(core.store, ref.first, ref.length, first_pid)
    for pid in builder.allocated:
        core.free(pid)
    core.write_leaf(Leaf(first_pid, [], [], 0))
