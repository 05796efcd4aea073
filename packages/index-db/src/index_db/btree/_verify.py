"""``verify()``: a full structural check of the tree from its pages.

Theory of operation
-------------------
Verification trusts no cache. It reads every reachable page through page-db (so each
page's checksum is checked), decodes it afresh and checks:

* every node decodes (kinds, levels, slots, lengths, key order within the node);
* keys respect their parent's separators, so the whole tree is in key order;
* every node but the root is at least a quarter full (``min_fill``) and none overflows;
  a root branch has at least two children;
* the sibling links chain the leaves left to right, the last one ending in 0;
* every overflow chain holds exactly its value's length;
* no page is reached twice, the number of keys equals the tree's count, and any decoded
  node cached in memory equals the one on the page;
* no page is leaked: the pages reached plus ``other_pages`` (pages of the same store that
  belong to something else) equal the store's allocated pages (``stats()["pages"]``).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from page_db import InvalidPageIdError

from ..errors import CorruptIndexError
from . import _layout as L
from ._core import TreeCore, _TreeDroppedError
from ._node import Leaf, OverflowRef, decode_branch, decode_leaf, slot_offsets
from ._overflow import chain_pages

__all__ = ["verify_tree", "drop_tree"]


def _differs(cached: Leaf, leaf: Leaf, raw: bytes) -> bool:
    """Whether the cached leaf's entries or bookkeeping (sizes, heap top, garbage, the
    slot array when it holds one) are not those of ``leaf``, decoded from ``raw``."""
    return (
        cached.keys != leaf.keys
        or cached.vals != leaf.vals
        or cached.next != leaf.next
        or (cached.used, cached.top, cached.garbage, cached.overflows)
        != (leaf.used, leaf.top, leaf.garbage, leaf.overflows)
        or (cached.offs is not None and cached.offs != slot_offsets(raw, len(leaf.keys)))
    )


class _Walk:
    def __init__(self, core: TreeCore) -> None:
        self.core = core
        self.reached: set[int] = set()
        self.leaves: list[Leaf] = []
        self.branches = 0
        self.overflow_pages = 0
        self.keys = 0

    def reach(self, pid: int, owner: int | None) -> None:
        if pid in self.reached:
            raise CorruptIndexError(f"page {pid} is reached twice", page_id=owner)
        self.reached.add(pid)

    def raw(self, pid: int, owner: int | None) -> tuple[bytes, Any]:
        try:
            page = self.core.store.read(pid)
        except InvalidPageIdError:
            raise CorruptIndexError(f"child {pid} is not allocated", page_id=owner) from None
        with page:
            return bytes(page.payload), page.extra

    def node(
        self, pid: int, level: int, lo: bytes | None, hi: bytes | None, owner: int | None
    ) -> None:
        core = self.core
        self.reach(pid, owner)
        raw, extra = self.raw(pid, owner)
        is_root = owner is None
        if level == 0:
            leaf = decode_leaf(raw, pid)
            self._bounds(leaf.keys, lo, hi, pid)
            self._fill(leaf.used, is_root, pid)
            if isinstance(extra, Leaf) and _differs(extra, leaf, raw):
                raise CorruptIndexError("cached leaf differs from its page", page_id=pid)
            for val in leaf.vals:
                if isinstance(val, OverflowRef):
                    for opid in chain_pages(core.store, val.first, val.length, pid):
                        self.reach(opid, pid)
                        self.overflow_pages += 1
            self.leaves.append(leaf)
            self.keys += len(leaf.keys)
            return
        node = decode_branch(raw, pid, level)
        self.branches += 1
        cached = core.branches.get(pid)
        if cached is not None and (cached.keys != node.keys or cached.children != node.children):
            raise CorruptIndexError("cached branch differs from its page", page_id=pid)
        self._bounds(node.keys, lo, hi, pid, strict=True)
        self._fill(node.used, is_root, pid)
        if is_root and not node.keys:
            raise CorruptIndexError("root branch has a single child", page_id=pid)
        bounds = [lo, *node.keys, hi]
        for index, child in enumerate(node.children):
            self.node(child, level - 1, bounds[index], bounds[index + 1], pid)

    def _bounds(
        self, keys: list[bytes], lo: bytes | None, hi: bytes | None, pid: int, strict: bool = False
    ) -> None:
        if not keys:
            return
        if lo is not None and (keys[0] < lo or (strict and keys[0] == lo)):
            raise CorruptIndexError("key below its parent's separator", page_id=pid)
        if hi is not None and keys[-1] >= hi:
            raise CorruptIndexError("key at or above its parent's separator", page_id=pid)

    def _fill(self, used: int, is_root: bool, pid: int) -> None:
        if used > self.core.cap:
            raise CorruptIndexError("node overflows its page", page_id=pid)
        if not is_root and used < self.core.min_fill:
            raise CorruptIndexError(
                f"node is {used} bytes full, under the minimum {self.core.min_fill}",
                page_id=pid,
            )


def verify_tree(core: TreeCore, other_pages: int | None) -> dict[str, Any]:
    """Check the whole tree; see the module docstring. Returns figures about it."""
    if not 1 <= core.height <= L.MAX_HEIGHT:
        raise CorruptIndexError(f"tree height {core.height} out of range")
    walk = _Walk(core)
    walk.node(core.root, core.height - 1, None, None, None)
    leaves = walk.leaves
    for left, right in pairwise(leaves):
        if left.next != right.pid:
            raise CorruptIndexError(
                f"sibling link points to {left.next}, expected {right.pid}", page_id=left.pid
            )
    if leaves[-1].next != 0:
        raise CorruptIndexError("last leaf has a sibling link", page_id=leaves[-1].pid)
    if walk.keys != core.count:
        raise CorruptIndexError(f"tree holds {walk.keys} keys, its count says {core.count}")
    pages = core.store.stats()["pages"]
    if other_pages is not None and len(walk.reached) + other_pages != pages:
        raise CorruptIndexError(
            f"{pages - other_pages - len(walk.reached)} allocated pages are not reachable "
            f"from the tree (reached {len(walk.reached)}, store has {pages}, "
            f"other_pages={other_pages})"
        )
    leaf_bytes = sum(leaf.used for leaf in leaves)
    return {
        "keys": walk.keys,
        "height": core.height,
        "leaves": len(leaves),
        "branches": walk.branches,
        "overflow_pages": walk.overflow_pages,
        "pages": len(walk.reached),
        "leaf_fill": leaf_bytes / (len(leaves) * core.cap),
    }


def drop_tree(core: TreeCore) -> int:
    """Free every page of the tree — nodes and overflow chains, found by the same walk as
    ``verify`` (so a damaged tree raises before anything is freed) — and mark the tree
    unusable. Returns the number of pages freed."""
    walk = _Walk(core)
    walk.node(core.root, core.height - 1, None, None, None)
    core.broken = _TreeDroppedError()  # from here on the tree is gone, even if freeing fails
    for pid in sorted(walk.reached):
        core.free(pid)
    return len(walk.reached)
