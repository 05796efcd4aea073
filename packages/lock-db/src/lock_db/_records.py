"""The manager's records: owners, lockable cells, waiters, and the blocking rule.

Theory of operation
-------------------
A **cell** (:class:`Cell`) is one thing that can be locked: a plain resource, one key of a
key space, or one exact ``[lo, hi)`` range of a key space. It maps each holding owner to a
*hold*, a two-item list ``[mode code, count]``: the mode is the supremum of everything the
owner was granted on the cell, the count how many grants ``release`` must undo. Beside the
holders a cell keeps ``counts`` (holders per mode) and ``present`` (a bit per mode with a
nonzero count), so "is mode ``m`` compatible with every holder?" is one mask test.

A **waiter** (:class:`Waiter`) is one blocked request. Every waiter carries an ``order``:
new requests take increasing numbers, and *conversions* (upgrades of a held lock) take the
same number minus :data:`CONVERSION_OFFSET`, so they sort ahead of every new request and
in arrival order among themselves. Queues are kept sorted by order.

**The blocking rule** is the one place that decides who waits for whom. A request
(granted at once or waiting) by owner ``o`` for target mode ``t`` with order ``n`` is
blocked by

1. every *other* owner holding an overlapping cell in a mode incompatible with ``t``, and
2. every *other* owner with a waiting request that overlaps it and has a smaller order
   (strict FIFO among overlapping requests: no overtaking, so writers do not starve).

A request is granted exactly when the rule yields no owner, and the owners it yields are
the request's out-edges in the wait-for graph, so the grant decision and deadlock detection
can never disagree. :func:`cell_blockers` applies the rule to one cell; the key-space
module applies it across cells. The rule is a generator: asking for the first blocker is
the grant test, listing them all is the graph.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from typing import NamedTuple

from ._modes import BITS, COMPATIBLE, LockMode

__all__ = [
    "CONVERSION_OFFSET",
    "POOL_LIMIT",
    "FAILED",
    "GRANTED",
    "WAITING",
    "Cell",
    "KeyRange",
    "OwnerRecord",
    "SpaceLock",
    "Waiter",
    "add_hold",
    "cell_blockers",
    "drop_hold",
    "enqueue",
    "other_holders_present",
]

#: How many emptied cells (and, separately, owner records) a manager keeps for reuse.
POOL_LIMIT = 1024

#: Subtracted from a conversion's order so it sorts ahead of every new request.
CONVERSION_OFFSET = 1 << 62

WAITING, GRANTED, FAILED = 0, 1, 2


class KeyRange(NamedTuple):
    """A half-open key range ``[lo, hi)`` of a key space; ``hi=None`` is unbounded.

    Names the target of key and range locks in errors and introspection. A key lock on
    ``k`` is the range ``[k, k + b"\\x00")``, the one-key range.
    """

    space: Hashable
    lo: bytes
    hi: bytes | None


class SpaceLock(NamedTuple):
    """One key or range lock of a key space, as reported by introspection.

    ``mode`` is the mode held or, for a waiter, the mode it will hold once granted.
    """

    owner: Hashable
    lo: bytes
    hi: bytes | None
    mode: LockMode


class Cell:
    """One lockable thing: a resource, a key of a space, or an exact range of a space."""

    __slots__ = ("counts", "holders", "present", "queue")

    def __init__(self) -> None:
        self.holders: dict[Hashable, list[int]] = {}
        self.counts = [0, 0, 0, 0, 0]
        self.present = 0
        #: Waiters on this cell, sorted by order (unused for range cells: ranges queue in
        #: their space).
        self.queue: list[Waiter] = []


class OwnerRecord:
    """What the manager knows about one owner: its age, its locks, its pending request.

    The record exists while the owner holds or waits for something; ``age`` numbers
    records in creation order, so a larger age is a younger owner.
    """

    __slots__ = ("age", "keys", "owner", "ranges", "resources", "waiter")

    def __init__(self, owner: Hashable, age: int) -> None:
        self.owner = owner
        self.age = age
        #: ``resource -> cell`` of the resources it holds.
        self.resources: dict[Hashable, Cell] = {}
        #: ``(space, key) -> cell`` of the keys it holds.
        self.keys: dict[tuple[Hashable, bytes], Cell] = {}
        #: ``(space, lo, hi) -> cell`` of the ranges it holds (never one-key ranges).
        self.ranges: dict[tuple[Hashable, bytes, bytes | None], Cell] = {}
        self.waiter: Waiter | None = None

    def is_idle(self) -> bool:
        """Holds nothing and waits for nothing."""
        return not (self.resources or self.keys or self.ranges or self.waiter)


class Waiter:
    """One blocked request, woken through its own lock (``signal``), never a shared one.

    For a plain resource ``resource`` is its key and ``space`` is ``None``; for a key or
    range lock ``space`` is the space record (typed loosely to keep this module below the
    space module) and ``lo``/``hi`` the bounds. ``cell`` is the cell a grant installs the
    hold in: the resource's or the key's cell; it is ``None`` exactly for range waiters,
    whose cell is found (or made) when they are granted.
    """

    __slots__ = (
        "cell",
        "error",
        "hi",
        "lo",
        "order",
        "owner",
        "record",
        "requested",
        "resource",
        "signal",
        "space",
        "status",
        "target",
    )

    def __init__(
        self,
        record: OwnerRecord,
        requested: int,
        target: int,
        order: int,
        resource: Hashable,
        cell: Cell | None,
    ) -> None:
        self.record = record
        self.owner = record.owner
        self.requested = requested
        self.target = target
        self.order = order
        self.resource = resource
        self.cell = cell
        self.space: object = None
        self.lo = b""
        self.hi: bytes | None = None
        self.status = WAITING
        self.error: BaseException | None = None
        self.signal = threading.Lock()
        self.signal.acquire()


def add_hold(cell: Cell, owner: Hashable, code: int) -> bool:
    """Grant ``code`` to ``owner`` on ``cell`` (count one more grant).

    ``code`` must already be the supremum of the owner's held mode and the request.
    Returns whether the owner's mode on the cell went up (an upgrade).
    """
    hold = cell.holders.get(owner)
    if hold is None:
        cell.holders[owner] = [code, 1]
        _count_in(cell, code)
        return False
    hold[1] += 1
    if hold[0] == code:
        return False
    _count_out(cell, hold[0])
    _count_in(cell, code)
    hold[0] = code
    return True


def drop_hold(cell: Cell, owner: Hashable, *, entirely: bool) -> bool:
    """Undo one grant of ``owner``'s hold (all of them if ``entirely``).

    Returns whether the hold is gone. The caller checked that the owner holds the cell.
    """
    hold = cell.holders[owner]
    if hold[1] > 1 and not entirely:
        hold[1] -= 1
        return False
    del cell.holders[owner]
    _count_out(cell, hold[0])
    return True


def _count_in(cell: Cell, code: int) -> None:
    count = cell.counts[code]
    cell.counts[code] = count + 1
    if not count:
        cell.present |= BITS[code]


def _count_out(cell: Cell, code: int) -> None:
    count = cell.counts[code] - 1
    cell.counts[code] = count
    if not count:
        cell.present &= ~BITS[code]


def other_holders_present(cell: Cell, owner: Hashable) -> int:
    """The "modes present" mask of ``cell`` without ``owner``'s own hold."""
    hold = cell.holders.get(owner)
    if hold is None or cell.counts[hold[0]] > 1:
        return cell.present
    return cell.present & ~BITS[hold[0]]


def cell_blockers(cell: Cell, owner: Hashable, target: int, order: int) -> Iterator[Hashable]:
    """The blocking rule on one cell: incompatible holders, then waiters ahead.

    Yields other owners, possibly repeated.
    """
    compatible = COMPATIBLE[target]
    for holder, hold in cell.holders.items():
        if holder != owner and not compatible[hold[0]]:
            yield holder
    for waiter in cell.queue:
        if waiter.order >= order:
            break
        if waiter.owner != owner:
            yield waiter.owner


def enqueue(queue: list[Waiter], waiter: Waiter) -> None:
    """Insert ``waiter`` into ``queue`` keeping it sorted by order."""
    if not queue or queue[-1].order < waiter.order:
        queue.append(waiter)
        return
    index = len(queue)
    while index and queue[index - 1].order > waiter.order:
        index -= 1
    queue.insert(index, waiter)
