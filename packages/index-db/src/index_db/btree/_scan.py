"""Range iteration: forward by sibling links, reverse by the descent path.

Theory of operation
-------------------
An iterator never holds the tree latch while the caller runs. Under the latch it copies
one leaf's worth of entries (two list slices, overflow values read in full) and notes the
tree's ``shape``; it then yields that batch with no lock held. To move on it takes the
latch again: if the shape is unchanged the next leaf is the current one's sibling link
(forward) or the neighbour found from the saved descent path (reverse); if a split, merge
or bulk load happened meanwhile it descends afresh from the last key it returned.

So an iterator stays valid while the tree changes: it returns keys in order, each at most
once; keys present for the whole iteration are returned; a key put or deleted during it
is seen or not depending on whether its leaf was already copied. It raises
``IteratorInvalidatedError`` only if the tree became unusable (a failed write).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Any

from ..errors import CorruptIndexError
from ._core import TreeCore
from ._node import Leaf
from ._overflow import read_chain

__all__ = ["prefix_end", "scan_forward", "scan_reverse"]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


Batch = tuple[list[bytes], list[bytes]]


def _entries(core: TreeCore, leaf: Leaf, start: int, stop: int) -> Batch:
    keys = leaf.keys[start:stop]
    vals = leaf.vals[start:stop]
    if leaf.overflows:
        vals = [
            v if type(v) is bytes else read_chain(core.store, v.first, v.length, leaf.pid)  # type: ignore[union-attr]
            for v in vals
        ]
    return keys, vals  # type: ignore[return-value]


def _start_forward(core: TreeCore, key: bytes | None, inclusive: bool) -> tuple[Batch, int]:
    leaf = core.descend(key, None, False)
    if key is None:
        start = 0
    elif inclusive:
        start = bisect_left(leaf.keys, key)
    else:
        start = bisect_right(leaf.keys, key)
    return _entries(core, leaf, start, len(leaf.keys)), leaf.next


def scan_forward(
    core: TreeCore, lo: bytes | None, lo_inclusive: bool, hi: bytes | None, hi_inclusive: bool
) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` from ``lo`` up to ``hi`` in ascending key order."""
    with core.latch:
        core.check_usable()
        (keys, vals), nxt = _start_forward(core, lo, lo_inclusive)
        shape = core.shape
    last: bytes | None = None
    while True:
        done = False
        if hi is not None and keys and (keys[-1] > hi or (keys[-1] == hi and not hi_inclusive)):
            stop = bisect_right(keys, hi) if hi_inclusive else bisect_left(keys, hi)
            keys, vals = keys[:stop], vals[:stop]
            done = True
        if keys:
            yield from zip(keys, vals, strict=True)
            last = keys[-1]
        if done or not nxt:
            return
        with core.latch:
            core.check_iterable()
            if core.shape != shape:
                if last is None:
                    (keys, vals), nxt = _start_forward(core, lo, lo_inclusive)
                else:
                    (keys, vals), nxt = _start_forward(core, last, False)
                shape = core.shape
            else:
                leaf = core.leaf(nxt)
                if leaf.keys and last is not None and leaf.keys[0] <= last:
                    raise CorruptIndexError("sibling link goes backwards", page_id=nxt)
                keys, vals = _entries(core, leaf, 0, len(leaf.keys))
                nxt = leaf.next


def _start_reverse(
    core: TreeCore, key: bytes | None, inclusive: bool
) -> tuple[Batch, list[list[Any]]]:
    path: list[list[Any]] = []
    leaf = core.descend(key, path, True)
    if key is None:
        stop = len(leaf.keys)
    elif inclusive:
        stop = bisect_right(leaf.keys, key)
    else:
        stop = bisect_left(leaf.keys, key)
    return _entries(core, leaf, 0, stop), path


def _previous_leaf(core: TreeCore, path: list[list[Any]]) -> Leaf | None:
    depth = len(path) - 1
    while depth >= 0 and path[depth][1] == 0:
        depth -= 1
    if depth < 0:
        return None
    del path[depth + 1 :]
    path[depth][1] -= 1
    node, index = path[depth]
    pid = node.children[index]
    level = node.level - 1
    while level:
        node = core.branch(pid, level)
        index = len(node.children) - 1
        path.append([node, index])
        pid = node.children[index]
        level -= 1
    return core.leaf(pid)


def scan_reverse(
    core: TreeCore, lo: bytes | None, lo_inclusive: bool, hi: bytes | None, hi_inclusive: bool
) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` from ``hi`` down to ``lo`` in descending key order."""
    with core.latch:
        core.check_usable()
        (keys, vals), path = _start_reverse(core, hi, hi_inclusive)
        shape = core.shape
    last: bytes | None = None
    while True:
        done = False
        if lo is not None and keys and (keys[0] < lo or (keys[0] == lo and not lo_inclusive)):
            start = bisect_left(keys, lo) if lo_inclusive else bisect_right(keys, lo)
            keys, vals = keys[start:], vals[start:]
            done = True
        if keys:
            yield from zip(reversed(keys), reversed(vals), strict=True)
            last = keys[0]
        if done or not path:
            return
        with core.latch:
            core.check_iterable()
            if core.shape != shape:
                if last is None:
                    (keys, vals), path = _start_reverse(core, hi, hi_inclusive)
                else:
                    (keys, vals), path = _start_reverse(core, last, False)
                shape = core.shape
                continue
            leaf = _previous_leaf(core, path)
            if leaf is None:
                return
            keys, vals = _entries(core, leaf, 0, len(leaf.keys))
