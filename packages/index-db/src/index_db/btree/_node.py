"""Leaf and branch nodes: the decoded objects and their pure encode / decode functions.

Theory of operation
-------------------
A *leaf* page is slotted, as in SQLite: after the 16-byte header comes an array of u16
slots, one per entry in key order, each the offset of the entry's *cell*; cells live in a
heap that grows down from the end of the payload. A cell is ``u16 key length, u32 value
length, key, value``; a value too big for the page is stored in an overflow chain and the
cell holds its first page id (4 bytes) with the top bit of the value length set. The
layout lets the writer insert, replace or delete an entry *in place* — a cell appended to
the heap and a ``memmove`` of the slot array — instead of re-encoding the page, which is
what keeps random puts fast in Python. Dead cells are counted in ``garbage`` and
reclaimed when the page is rewritten whole (``encode_leaf`` packs the heap).

A *branch* page is packed: header, ``count + 1`` u32 child ids, ``count`` u16 key lengths,
then the separator keys back to back. Child ``i`` holds the keys ``k`` with
``sep[i-1] <= k < sep[i]``. Separators are *suffix truncated*: the separator between two
leaves is the shortest prefix of the right leaf's first key that is greater than the left
leaf's last key, so branches hold a few bytes per child and fan out wide. Branches are
rewritten whole; they change only on splits and merges.

Decoded nodes are plain objects with parallel ``keys`` / ``vals`` (or ``children``) lists
and ``used``, the bytes their slots and cells take. Decoding checks every offset and
length against the page and the key order, so bad bytes raise ``CorruptIndexError``
instead of producing wrong answers.
"""

from __future__ import annotations

import functools
import operator
import struct
import sys
from array import array
from itertools import accumulate, islice, pairwise
from typing import Any, Union

from ..errors import CorruptIndexError
from . import _layout as L

__all__ = [
    "Branch",
    "Leaf",
    "OverflowRef",
    "Value",
    "branch_insert_in_place",
    "branch_used",
    "cell_size",
    "decode_branch",
    "decode_leaf",
    "encode_branch",
    "encode_leaf",
    "leaf_delete_in_place",
    "leaf_insert_in_place",
    "lay_out_leaf",
    "leaf_cell",
    "slot_offsets",
]

_CELL_PACK = L.CELL.pack
_CELL_UNPACK = L.CELL.unpack_from
_SLOT_PACK_INTO = L.SLOT.pack_into
_HDR_PACK_INTO = L.NODE_HEADER.pack_into
_COUNT_PACK_INTO = L.COUNT_STRUCT.pack_into
_REF_PACK = L.OVERFLOW_REF.pack
_REF_UNPACK = L.OVERFLOW_REF.unpack_from
_H = L.HEADER_SIZE
_CHILD_PACK = struct.Struct("<I").pack
_KEYLEN_PACK = struct.Struct("<H").pack


class OverflowRef:
    """A value stored in an overflow chain: its first page and its length."""

    __slots__ = ("first", "length")

    def __init__(self, first: int, length: int) -> None:
        self.first = first
        self.length = length

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, OverflowRef)
            and other.first == self.first
            and other.length == self.length
        )

    def __hash__(self) -> int:
        return hash((self.first, self.length))

    def __repr__(self) -> str:
        return f"OverflowRef(first={self.first}, length={self.length})"


Value = Union[bytes, OverflowRef]  # noqa: UP007 - a runtime alias, 3.10-safe


class Leaf:
    """A decoded leaf: parallel sorted ``keys`` and ``vals`` plus page bookkeeping."""

    __slots__ = (
        "garbage",
        "keys",
        "latch",
        "next",
        "offs",
        "overflows",
        "pending",
        "pid",
        "top",
        "used",
        "vals",
    )

    def __init__(
        self,
        pid: int,
        keys: list[bytes],
        vals: list[Value],
        nxt: int,
        used: int = -1,
        overflows: int = -1,
    ) -> None:
        self.pid = pid
        self.keys = keys
        self.vals = vals
        self.next = nxt
        if used < 0:
            used = sum(map(cell_size, keys, vals)) + L.SLOT_SIZE * len(keys)
        self.used = used
        if overflows < 0:
            overflows = sum(1 for v in vals if type(v) is not bytes)
        self.overflows = overflows
        self.top = 0  # set by encode / decode; 0 means "not laid out yet"
        self.garbage = 0
        # The page's slot array (cell offsets), read on demand by a same-size overwrite
        # and dropped by every change that moves slots (lay-out, insert, delete).
        self.offs: array[int] | None = None
        # True while the page's bytes lag this object: a put or delete changed the lists
        # alone and page-db holds a deferred write (``TreeCore.defer``) that encodes them.
        # ``top``, ``garbage`` and ``offs`` describe the page and mean nothing meanwhile.
        self.pending = False
        self.latch: Any = None  # the tree latch, set when the leaf is first deferred

    def __call__(self, payload: memoryview) -> bool:
        """page-db's settle for a deferred leaf: encode it into ``payload`` if pending.

        page-db calls it with its pool lock held, from the writing thread (inside one of
        its own page-db calls, between changes) or from another (an eviction, a
        checkpoint). It encodes only when it can take the tree latch at once — which the
        writing thread, already holding it, can — and otherwise declines (returns False),
        so no thread ever encodes a leaf another thread is changing.
        """
        latch = self.latch
        if not latch.acquire(False):
            return False
        try:
            if self.pending:
                encode_leaf(payload, self)
                self.pending = False
        finally:
            latch.release()
        return True


class Branch:
    """A decoded branch: ``len(keys) + 1`` children and the separators between them."""

    __slots__ = ("children", "keys", "level", "pid", "used")

    def __init__(self, pid: int, level: int, keys: list[bytes], children: list[int]) -> None:
        self.pid = pid
        self.level = level
        self.keys = keys
        self.children = children
        self.used = branch_used(keys)


def cell_size(key: bytes, val: Value) -> int:
    """Bytes of the leaf cell for ``key`` / ``val`` (its slot not included)."""
    if type(val) is bytes:
        return L.CELL_HEADER_SIZE + len(key) + len(val)
    return L.CELL_HEADER_SIZE + len(key) + L.OVERFLOW_REF_SIZE


def branch_used(keys: list[bytes]) -> int:
    """Bytes a branch with these separators takes after its header."""
    return L.CHILD_SIZE + L.BRANCH_KEY_COST * len(keys) + sum(map(len, keys))


def leaf_cell(key: bytes, val: Value) -> bytes:
    """The encoded leaf cell of ``key`` / ``val``."""
    if type(val) is bytes:
        return _CELL_PACK(len(key), len(val)) + key + val
    assert isinstance(val, OverflowRef)
    return _CELL_PACK(len(key), L.OVERFLOW_FLAG | val.length) + key + _REF_PACK(val.first)


# --- leaves ------------------------------------------------------------------------------
def encode_leaf(payload: memoryview, leaf: Leaf) -> None:
    """Write ``leaf`` whole into ``payload``: slots in order, a packed heap, no garbage."""
    if leaf.overflows:
        cells = list(map(leaf_cell, leaf.keys, leaf.vals))
    else:
        keys, vals = leaf.keys, leaf.vals
        heads = map(_CELL_PACK, map(len, keys), map(len, vals))  # type: ignore[arg-type]
        cells = list(map(operator.add, map(operator.add, heads, keys), vals))
    lay_out_leaf(payload, leaf, cells)


def lay_out_leaf(payload: memoryview, leaf: Leaf, cells: list[bytes]) -> None:
    """Write ``leaf`` into ``payload`` from its already encoded ``cells`` (in key order)."""
    end = len(payload)
    n = len(cells)
    blob = b"".join(cells)
    top = end - len(blob)
    slots_end = _H + L.SLOT_SIZE * n
    if top < slots_end:
        raise AssertionError("leaf does not fit its page")  # callers split first
    _HDR_PACK_INTO(payload, 0, L.KIND_LEAF, 0, n, top, 0, leaf.next, 0)
    widths = list(map(len, cells))
    if n and widths.count(widths[0]) == n:
        # Every cell one width (fixed-size records, the common bulk-load case): the slot
        # array and the gap after it depend only on (n, width, end), so build them once.
        payload[_H:top] = _fixed_slots(n, widths[0], end)
    else:
        if n:
            offsets = accumulate(widths[:-1], initial=top)
            payload[_H:slots_end] = struct.pack(f"<{n}H", *offsets)
        payload[slots_end:top] = bytes(top - slots_end)
    payload[top:end] = blob
    leaf.top = top
    leaf.garbage = 0
    leaf.offs = None
    leaf.used = len(blob) + L.SLOT_SIZE * n


@functools.lru_cache(maxsize=256)
def _fixed_slots(n: int, width: int, end: int) -> bytes:
    """The slot array of ``n`` cells of ``width`` bytes packed down from ``end``, followed
    by the zero gap up to the heap's top."""
    top = end - n * width
    return struct.pack(f"<{n}H", *range(top, end, width)) + bytes(top - _H - L.SLOT_SIZE * n)


def slot_offsets(payload: memoryview | bytes, count: int) -> array[int]:
    """The ``count`` slots (cell offsets) of the leaf page ``payload``."""
    return _u16s(payload, _H, count)


def _u16s(payload: memoryview | bytes, start: int, count: int) -> array[int]:
    """The ``count`` little-endian u16 of ``payload`` from ``start``."""
    values = array("H")
    values.frombytes(payload[start : start + 2 * count])
    if sys.byteorder == "big":
        values.byteswap()
    return values


def leaf_insert_in_place(payload: memoryview, leaf: Leaf, i: int, key: bytes, val: Value) -> None:
    """Insert ``key`` / ``val`` as entry ``i`` of ``leaf`` and of its page.

    The caller has checked that the entry fits the page (``leaf.used`` plus the new cell
    and slot is at most the capacity). The cell is appended to the heap when the gap
    between slots and heap has room, otherwise the page is rewritten packed.
    """
    cell = leaf_cell(key, val)
    size = len(cell)
    n = len(leaf.keys)
    leaf.offs = None
    leaf.keys.insert(i, key)
    leaf.vals.insert(i, val)
    if type(val) is not bytes:
        leaf.overflows += 1
    top = leaf.top - size
    slots_end = _H + L.SLOT_SIZE * n
    if top < slots_end + L.SLOT_SIZE:
        leaf.used += size + L.SLOT_SIZE
        encode_leaf(payload, leaf)
        return
    payload[top : top + size] = cell
    slot = _H + L.SLOT_SIZE * i
    if i < n:
        payload[slot + L.SLOT_SIZE : slots_end + L.SLOT_SIZE] = payload[slot:slots_end]
    _SLOT_PACK_INTO(payload, slot, top)
    _COUNT_PACK_INTO(payload, L.COUNT_OFFSET, n + 1, top)
    leaf.top = top
    leaf.used += size + L.SLOT_SIZE


def leaf_delete_in_place(payload: memoryview, leaf: Leaf, i: int) -> Value:
    """Remove entry ``i`` of ``leaf`` and of its page; its cell becomes garbage.

    Returns:
        The removed value (an :class:`OverflowRef` whose chain the caller frees).
    """
    n = len(leaf.keys)
    leaf.offs = None
    key = leaf.keys.pop(i)
    val = leaf.vals.pop(i)
    size = cell_size(key, val)
    if type(val) is not bytes:
        leaf.overflows -= 1
    slot = _H + L.SLOT_SIZE * i
    slots_end = _H + L.SLOT_SIZE * n
    if i < n - 1:
        payload[slot : slots_end - L.SLOT_SIZE] = payload[slot + L.SLOT_SIZE : slots_end]
    payload[slots_end - L.SLOT_SIZE : slots_end] = b"\0\0"
    leaf.used -= size + L.SLOT_SIZE
    leaf.garbage += size
    _COUNT_PACK_INTO(payload, L.COUNT_OFFSET, n - 1, leaf.top)
    L.GARBAGE_STRUCT.pack_into(payload, L.GARBAGE_OFFSET, leaf.garbage)
    return val


def _corrupt(pid: int, reason: str) -> CorruptIndexError:
    return CorruptIndexError(reason, page_id=pid)


def decode_leaf(payload: memoryview | bytes, pid: int) -> Leaf:
    """Decode and check a leaf page.

    Raises:
        CorruptIndexError: not a leaf, a slot or length outside the page, cells that
            overlap or do not add up with ``garbage``, or keys not strictly ascending.
    """
    raw = bytes(payload)
    end = len(raw)
    kind, level, n, top, garbage, nxt, reserved = L.NODE_HEADER.unpack_from(raw, 0)
    if kind != L.KIND_LEAF or level != 0:
        raise _corrupt(pid, f"expected a leaf page, found kind {kind:#x} level {level}")
    slots_end = _H + L.SLOT_SIZE * n
    if not slots_end <= top <= end or reserved:
        raise _corrupt(pid, f"leaf header out of range (count {n}, top {top})")
    keys: list[bytes] = []
    vals: list[Value] = []
    cells = 0
    overflows = 0
    for off in struct.unpack_from(f"<{n}H", raw, _H):
        if off < top or off + L.CELL_HEADER_SIZE > end:
            raise _corrupt(pid, f"leaf slot points outside the heap ({off})")
        klen, vlen = _CELL_UNPACK(raw, off)
        kend = off + L.CELL_HEADER_SIZE + klen
        if vlen & L.OVERFLOW_FLAG:
            vend = kend + L.OVERFLOW_REF_SIZE
            if vend > end:
                raise _corrupt(pid, "leaf cell runs past the page")
            vals.append(OverflowRef(_REF_UNPACK(raw, kend)[0], vlen & L.LENGTH_MASK))
            overflows += 1
        else:
            vend = kend + vlen
            if vend > end:
                raise _corrupt(pid, "leaf cell runs past the page")
            vals.append(raw[kend:vend])
        keys.append(raw[off + L.CELL_HEADER_SIZE : kend])
        cells += vend - off
    if cells + garbage != end - top:
        raise _corrupt(pid, "leaf cells and garbage do not fill the heap")
    _check_ascending(keys, pid)
    # the sizes were summed while decoding: Leaf need not measure every cell again
    leaf = Leaf(pid, keys, vals, nxt, cells + L.SLOT_SIZE * n, overflows)
    leaf.top = top
    leaf.garbage = garbage
    return leaf


def _check_ascending(keys: list[bytes], pid: int) -> None:
    if not all(map(operator.lt, keys, islice(keys, 1, None))):
        raise _corrupt(pid, "keys out of order")


# --- branches ----------------------------------------------------------------------------
def encode_branch(payload: memoryview, node: Branch) -> None:
    """Write ``node`` whole into ``payload``."""
    n = len(node.keys)
    body = b"".join(
        (
            struct.pack(f"<{n + 1}I{n}H", *node.children, *map(len, node.keys)),
            *node.keys,
        )
    )
    end = _H + len(body)
    if end > len(payload):
        raise AssertionError("branch does not fit its page")  # callers split first
    _HDR_PACK_INTO(payload, 0, L.KIND_BRANCH, node.level, n, 0, 0, 0, 0)
    payload[_H:end] = body
    payload[end:] = bytes(len(payload) - end)
    node.used = len(body)


def branch_insert_in_place(payload: memoryview, node: Branch, index: int) -> None:
    """Bring ``payload`` up to date after separator ``index`` and child ``index + 1`` were
    inserted into ``node`` (``node.used`` already counting them).

    ``payload`` must hold ``node`` as it was before the insert; it then holds exactly the
    bytes :func:`encode_branch` would write, for a few slices' copy instead of a re-encode.
    """
    n = len(node.keys)
    sep = node.keys[index]
    grow = L.BRANCH_KEY_COST + len(sep)
    old_end = _H + node.used - grow
    kids_end = _H + L.CHILD_SIZE * n  # the old node's n children
    cut_kid = _H + L.CHILD_SIZE * (index + 1)
    cut_len = kids_end + L.KEYLEN_SIZE * index
    # The old separators before ``index`` are the new ones; their lengths are on the page
    # already (reading them there touches no key object).
    skipped = sum(_u16s(payload, kids_end, index))
    cut_key = kids_end + L.KEYLEN_SIZE * (n - 1) + skipped
    tail = b"".join(
        (
            _CHILD_PACK(node.children[index + 1]),
            payload[cut_kid:cut_len],
            _KEYLEN_PACK(len(sep)),
            payload[cut_len:cut_key],
            sep,
            payload[cut_key:old_end],
        )
    )
    if old_end + grow > len(payload):
        raise AssertionError("branch does not fit its page")  # callers split first
    payload[cut_kid : old_end + grow] = tail
    _SLOT_PACK_INTO(payload, L.COUNT_OFFSET, n)


def decode_branch(payload: memoryview | bytes, pid: int, level: int) -> Branch:
    """Decode and check a branch page expected at ``level``.

    Raises:
        CorruptIndexError: not a branch of that level, lengths outside the page, a zero
            or repeated child id, or separators not strictly ascending.
    """
    raw = bytes(payload)
    kind, got_level, n, top, garbage, nxt, reserved = L.NODE_HEADER.unpack_from(raw, 0)
    if kind != L.KIND_BRANCH or got_level != level:
        raise _corrupt(
            pid, f"expected a branch of level {level}, found kind {kind:#x} level {got_level}"
        )
    fixed = _H + L.CHILD_SIZE * (n + 1) + L.KEYLEN_SIZE * n
    if fixed > len(raw) or top or garbage or nxt or reserved:
        raise _corrupt(pid, f"branch header out of range (count {n})")
    fields = struct.unpack_from(f"<{n + 1}I{n}H", raw, _H)
    children = list(fields[: n + 1])
    if 0 in children or len(set(children)) != n + 1:
        raise _corrupt(pid, "branch has a zero or repeated child id")
    ends = list(accumulate(fields[n + 1 :], initial=fixed))
    if ends[-1] > len(raw):
        raise _corrupt(pid, "branch keys run past the page")
    keys = [raw[a:b] for a, b in pairwise(ends)]
    _check_ascending(keys, pid)
    return Branch(pid, level, keys, children)
