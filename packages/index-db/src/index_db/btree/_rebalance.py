"""Structural changes: splits, merges and redistributions after a put or delete.

Theory of operation
-------------------
The fast paths of put and delete change one leaf in place. When a leaf would overflow its
page, or a non-root node falls below a quarter full (``min_fill``), :func:`fix_up` walks
back up the descent path, one level per step:

* **overflow** — the node is split in two by bytes; the separator goes up into the
  parent (a new root when the node was the root). For leaves the separator is *suffix
  truncated*: the shortest prefix of the right half's first key that is greater than the
  left half's last key.
* **underflow** — the node is paired with its right sibling (its left one when it is the
  last child). If the pair fits one page it is merged and the right page freed;
  otherwise the entries are split again evenly between the two and the parent gets a new
  separator.
* a root branch left with one child is dropped and the child becomes the root.

A changed separator can change the parent's size either way, so the walk continues while
a level is out of bounds. Because no cell is bigger than a quarter of a page, both halves
of a split or redistribution are at least a quarter full. Every node touched is encoded
whole at the end; freed pages are returned to page-db at once.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from itertools import accumulate
from typing import Any, Union

from . import _layout as L
from ._core import TreeCore
from ._node import Branch, Leaf, Value, branch_used, cell_size

__all__ = ["fix_up", "leaf_sizes", "separator", "split_index"]

_PLUS_CELL = (L.CELL_HEADER_SIZE + L.SLOT_SIZE).__add__

Node = Union[Leaf, Branch]  # noqa: UP007 - a runtime alias, 3.10-safe


def separator(left_last: bytes, right_first: bytes) -> bytes:
    """The shortest prefix of ``right_first`` greater than ``left_last`` (suffix truncation)."""
    limit = min(len(left_last), len(right_first))
    n = 0
    while n < limit and left_last[n] == right_first[n]:
        n += 1
    return right_first[: n + 1]


def split_index(sizes: list[int], low: int, high: int, *, middle: bool = False) -> int:
    """The cut ``m`` (``low <= m <= high``) balancing the bytes on its two sides.

    Entries ``[:m]`` go left. With ``middle`` entry ``m`` itself goes up to the parent (a
    branch split) and ``[m + 1:]`` go right; otherwise ``[m:]`` go right.
    """
    if not middle:
        return _halfway(sizes, low, high)
    total = sum(sizes)
    best = low
    best_gap = None
    for m, before in enumerate(accumulate(sizes, initial=0)):
        if m < low:
            continue
        if m > high:
            break
        after = total - before - (sizes[m] if middle else 0)
        gap = abs(after - before)
        if best_gap is None or gap < best_gap:
            best, best_gap = m, gap
    return best


def _halfway(sizes: list[int], low: int, high: int) -> int:
    """``split_index`` without a middle entry: a bisect on the running sums."""
    before = list(accumulate(sizes, initial=0))
    total = before[-1]
    m = bisect_left(before, total / 2)
    best = min(
        (c for c in (m - 1, m) if low <= c <= high),
        key=lambda c: abs(total - 2 * before[c]),
        default=min(max(m, low), high),
    )
    return best


def leaf_sizes(keys: list[bytes], vals: list[Value]) -> list[int]:
    """Bytes each entry takes in a leaf, slot included (C-speed when no value overflows)."""
    try:
        lengths = map(operator.add, map(len, keys), map(len, vals))  # type: ignore[arg-type]
        return list(map(_PLUS_CELL, lengths))
    except TypeError:  # an OverflowRef has no len()
        return [cell_size(k, v) + L.SLOT_SIZE for k, v in zip(keys, vals, strict=True)]


def _set_leaf(
    leaf: Leaf, keys: list[bytes], vals: list[Value], spilled: bool, used: int = -1
) -> None:
    """Give ``leaf`` new entries; ``spilled``: some may be overflow references."""
    leaf.keys = keys
    leaf.vals = vals
    leaf.offs = None  # the page is rewritten whole (fix_up writes every dirty node)
    leaf.used = sum(leaf_sizes(keys, vals)) if used < 0 else used
    leaf.overflows = sum(1 for v in vals if type(v) is not bytes) if spilled else 0


def _set_branch(node: Branch, keys: list[bytes], children: list[int]) -> None:
    node.keys = keys
    node.children = children
    node.used = branch_used(keys)


def _split(core: TreeCore, node: Node) -> tuple[Node, bytes]:
    if isinstance(node, Leaf):
        keys, vals = node.keys, node.vals
        sizes = leaf_sizes(keys, vals)
        m = split_index(sizes, 1, len(keys) - 1)
        left_used = sum(sizes[:m])
        right = Leaf(
            core.store.allocate(),
            keys[m:],
            vals[m:],
            node.next,
            node.used - left_used,
            -1 if node.overflows else 0,
        )
        _set_leaf(node, keys[:m], vals[:m], node.overflows > 0, left_used)
        node.next = right.pid
        return right, separator(node.keys[-1], right.keys[0])
    keys, children = node.keys, node.children
    m = split_index([L.BRANCH_KEY_COST + len(k) for k in keys], 1, len(keys) - 2, middle=True)
    right_branch = Branch(core.store.allocate(), node.level, keys[m + 1 :], children[m + 1 :])
    sep = keys[m]
    _set_branch(node, keys[:m], children[: m + 1])
    return right_branch, sep


def _load(core: TreeCore, pid: int, like: Node) -> Node:
    if isinstance(like, Leaf):
        return core.leaf(pid)
    return core.branch(pid, like.level)


def _rebalance(
    core: TreeCore, parent: Branch, index: int, node: Node, dirty: dict[int, Node]
) -> None:
    """Merge ``node`` with a sibling, or share entries with it; update ``parent``."""
    if index + 1 < len(parent.children):
        left, right, li = node, _load(core, parent.children[index + 1], node), index
    else:
        left, right, li = _load(core, parent.children[index - 1], node), node, index - 1
    if isinstance(left, Leaf):
        assert isinstance(right, Leaf)
        keys = left.keys + right.keys
        vals = left.vals + right.vals
        spilled = left.overflows + right.overflows > 0
        if left.used + right.used <= core.cap:
            _set_leaf(left, keys, vals, spilled, left.used + right.used)
            left.next = right.next
            _drop(core, parent, li, right, dirty)
        else:
            sizes = leaf_sizes(keys, vals)
            m = split_index(sizes, 1, len(keys) - 1)
            left_used = sum(sizes[:m])
            total = left.used + right.used
            _set_leaf(left, keys[:m], vals[:m], spilled, left_used)
            _set_leaf(right, keys[m:], vals[m:], spilled, total - left_used)
            parent.keys[li] = separator(left.keys[-1], right.keys[0])
            dirty[right.pid] = right
    else:
        assert isinstance(right, Branch)
        keys = [*left.keys, parent.keys[li], *right.keys]
        children = left.children + right.children
        if branch_used(keys) <= core.cap:
            _set_branch(left, keys, children)
            _drop(core, parent, li, right, dirty)
        else:
            costs = [L.BRANCH_KEY_COST + len(k) for k in keys]
            m = split_index(costs, 1, len(keys) - 2, middle=True)
            _set_branch(left, keys[:m], children[: m + 1])
            _set_branch(right, keys[m + 1 :], children[m + 1 :])
            parent.keys[li] = keys[m]
            dirty[right.pid] = right
    dirty[left.pid] = left
    parent.used = branch_used(parent.keys)


def _drop(core: TreeCore, parent: Branch, li: int, right: Node, dirty: dict[int, Node]) -> None:
    del parent.keys[li]
    del parent.children[li + 1]
    dirty.pop(right.pid, None)
    core.free(right.pid)


def _push_up(
    core: TreeCore,
    path: list[Any],
    node: Node,
    right: Node,
    sep: bytes,
    dirty: dict[int, Node],
    patched: dict[int, int],
) -> Branch | None:
    """Add ``right`` (split off ``node``) and ``sep`` to ``node``'s parent and return the
    parent, or make a new root over the two (then return None)."""
    if not path:
        level = 1 if isinstance(node, Leaf) else node.level + 1
        root = Branch(core.store.allocate(), level, [sep], [node.pid, right.pid])
        dirty[root.pid] = root
        core.root = root.pid
        core.height += 1
        return None
    parent: Branch
    parent, index = path.pop()
    parent.keys.insert(index, sep)
    parent.children.insert(index + 1, right.pid)
    parent.used += L.BRANCH_KEY_COST + len(sep)
    if parent.pid not in dirty:
        patched[parent.pid] = index
    return parent


def _walk(
    core: TreeCore, path: list[Any], node: Node, dirty: dict[int, Node], patched: dict[int, int]
) -> None:
    """Split, merge or redistribute from ``node`` up while a level is out of bounds."""
    while True:
        if node.used > core.cap:
            patched.pop(node.pid, None)
            right, sep = _split(core, node)
            dirty[right.pid] = right
            parent = _push_up(core, path, node, right, sep, dirty, patched)
            if parent is None:
                return
        elif path and node.used < core.min_fill:
            parent, index = path.pop()
            patched.pop(node.pid, None)
            patched.pop(parent.pid, None)
            _rebalance(core, parent, index, node, dirty)
        else:
            if not path and isinstance(node, Branch) and not node.keys:
                patched.pop(node.pid, None)
                core.root = node.children[0]
                core.height -= 1
                dirty.pop(node.pid, None)
                core.free(node.pid)
            return
        dirty[parent.pid] = parent
        node = parent


def fix_up(
    core: TreeCore, path: list[Any], node: Node, split: tuple[Leaf, bytes] | None = None
) -> None:
    """Restore the size bounds from ``node`` up the ``path``, then write what changed.

    Args:
        core: the tree.
        path: ``[branch, child_index]`` per level from the root down to ``node``'s parent.
        node: the node just changed in memory (its page may not match it yet).
        split: ``(right, separator)`` when ``node`` is a leaf already split in two, both
            halves written (``_split.add_to_full_leaf``): the walk starts at the parent.
    """
    dirty: dict[int, Node] = {}
    patched: dict[int, int] = {}  # branch pid -> index of its one in-place insert
    if split is None:
        dirty[node.pid] = node
        _walk(core, path, node, dirty, patched)
    else:
        parent = _push_up(core, path, node, *split, dirty, patched)
        if parent is not None:
            dirty[parent.pid] = parent
            _walk(core, path, parent, dirty, patched)
    core.shape += 1
    for changed in dirty.values():
        index = patched.get(changed.pid, -1)
        if index >= 0:
            core.patch_branch(changed, index)  # type: ignore[arg-type]
        else:
            core.write_node(changed)
