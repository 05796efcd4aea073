"""Key spaces: key locks and range locks over ordered byte keys, for phantom protection.

Theory of operation
-------------------
A *space* is a named, ordered keyspace (a collection, an index). Its locks cover half-open
ranges ``[lo, hi)`` of byte strings in ``bytes`` order; ``lo=None`` means ``b""`` (nothing
sorts below it) and ``hi=None`` means unbounded above. A *key lock* on ``k`` is the
one-key range ``[k, k + b"\\x00")`` (no byte string lies strictly between ``k`` and
``k + b"\\x00"``), so "a key lock conflicts with a range lock that covers the key" is just
range overlap, and ``acquire_range(o, s, k, k + b"\\x00", m)`` *is* ``acquire_key(o, s, k,
m)``: the same lock, released by either call.

Two locks of different owners conflict when their ranges overlap and their modes are
incompatible; locks of one owner never conflict with each other. Each exact range an owner
locks is its own lock with its own mode and count (re-entry and upgrades apply to the same
exact range; an owner holding ``S`` on ``[a, c)`` that asks for ``X`` on ``[b, d)`` takes
a second lock).

Storage is shaped for the common case, many key locks and few range locks:

- ``points``: key -> :class:`~lock_db._records.Cell` holding that key's holders and its
  FIFO queue of key waiters; ``point_keys`` is the same keys sorted, so a range finds the
  keys it covers by bisection. It is built the first time a range request needs it and
  kept (insort on each new key) until the space goes idle, so spaces that only ever see
  key locks never maintain it.
- ``ranges``: ``(lo, hi)`` -> cell of holders of exactly that range; ``range_queue`` holds
  every waiting range request of the space, sorted by order.

:func:`space_blockers` applies the blocking rule of ``_records`` across all of them: a key
request scans its key's cell and the range locks; a range request scans the range locks,
the range queue and the keys it covers. Point and range waiters share the manager's one
wait-for graph, since the rule yields owners whatever the cell.

Complexity: a key request with no range locks in its space costs a dict lookup; a request
that must consider range locks is linear in the space's range locks and range waiters plus,
for a range, the number of locked keys it covers.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Hashable, Iterator

from ._modes import COMPATIBLE
from ._records import POOL_LIMIT, Cell, Waiter, cell_blockers
from .errors import InvalidRangeError, LockTypeError

__all__ = [
    "Space",
    "check_key",
    "check_range",
    "covers_a_key",
    "is_point",
    "overlaps",
    "space_blockers",
]


class Space:
    """The locks and waiters of one key space."""

    __slots__ = ("name", "point_keys", "points", "pool", "range_queue", "ranges", "waiting_keys")

    def __init__(self, name: Hashable, pool: list[Cell]) -> None:
        self.name = name
        #: The manager's pool of emptied cells, shared by its spaces.
        self.pool = pool
        self.points: dict[bytes, Cell] = {}
        #: The keys of ``points``, sorted; built when a range request first needs it and
        #: kept until the space is dropped, so key-only spaces never pay for it.
        self.point_keys: list[bytes] | None = None
        self.ranges: dict[tuple[bytes, bytes | None], Cell] = {}
        self.range_queue: list[Waiter] = []
        #: Keys whose cell has a non-empty queue.
        self.waiting_keys: set[bytes] = set()

    def point_cell(self, key: bytes) -> Cell:
        """The cell of ``key``, created (and indexed) if missing."""
        cell = self.points.get(key)
        if cell is None:
            cell = self.points[key] = self.pool.pop() if self.pool else Cell()
            if self.point_keys is not None:
                insort(self.point_keys, key)
        return cell

    def sorted_keys(self) -> list[bytes]:
        """``point_keys``, built if needed."""
        if self.point_keys is None:
            self.point_keys = sorted(self.points)
        return self.point_keys

    def range_cell(self, lo: bytes, hi: bytes | None) -> Cell:
        """The cell of exactly ``[lo, hi)``, created if missing."""
        cell = self.ranges.get((lo, hi))
        if cell is None:
            cell = self.ranges[(lo, hi)] = self.pool.pop() if self.pool else Cell()
        return cell

    def tidy_point(self, key: bytes, cell: Cell) -> None:
        """Forget ``key``'s cell once nobody holds or waits for it."""
        if cell.queue:
            self.waiting_keys.add(key)
            return
        self.waiting_keys.discard(key)
        if not cell.holders:
            del self.points[key]
            keys = self.point_keys
            if keys is not None:
                del keys[bisect_left(keys, key)]
            self._recycle(cell)

    def tidy_range(self, lo: bytes, hi: bytes | None, cell: Cell) -> None:
        """Forget the range cell once nobody holds it."""
        if not cell.holders:
            del self.ranges[(lo, hi)]
            self._recycle(cell)

    def _recycle(self, cell: Cell) -> None:
        if len(self.pool) < POOL_LIMIT:
            self.pool.append(cell)

    def is_idle(self) -> bool:
        return not self.points and not self.ranges and not self.range_queue

    def waiters_in_order(self) -> list[Waiter]:
        """Every waiter of the space (key and range), in grant order."""
        waiters = list(self.range_queue)
        for key in self.waiting_keys:
            waiters.extend(self.points[key].queue)
        waiters.sort(key=_order)
        return waiters


def _order(waiter: Waiter) -> int:
    return waiter.order


def check_key(key: object, what: str = "key") -> bytes:
    """Return ``key`` if it is ``bytes``; raise :class:`LockTypeError` otherwise."""
    if not isinstance(key, bytes):
        raise LockTypeError(f"{what} must be bytes, got {type(key).__name__} {key!r}")
    return key


def check_range(lo: object, hi: object) -> tuple[bytes, bytes | None]:
    """Validate and normalise range bounds (``lo=None`` becomes ``b""``).

    Raises:
        LockTypeError: a bound is neither bytes nor None.
        InvalidRangeError: ``lo >= hi`` (an empty or inverted range).
    """
    low = b"" if lo is None else check_key(lo, "lo")
    if hi is None:
        return low, None
    high = check_key(hi, "hi")
    if low >= high:
        raise InvalidRangeError(
            f"range [lo, hi) must be non-empty: lo={low!r} is not below hi={high!r}"
        )
    return low, high


def covers_a_key(space: Space, lo: bytes, hi: bytes | None) -> bool:
    """Whether some key of ``space`` that is held or waited for lies in ``[lo, hi)``."""
    if not space.points:
        return False
    keys = space.sorted_keys()
    index = bisect_left(keys, lo)
    return index < len(keys) and (hi is None or keys[index] < hi)


def is_point(lo: bytes, hi: bytes | None) -> bool:
    """Whether ``[lo, hi)`` holds exactly one key (``hi == lo + b"\\x00"``)."""
    return hi is not None and len(hi) == len(lo) + 1 and hi[-1] == 0 and hi.startswith(lo)


def overlaps(lo: bytes, hi: bytes | None, other_lo: bytes, other_hi: bytes | None) -> bool:
    """Whether ``[lo, hi)`` and ``[other_lo, other_hi)`` share a key."""
    return (other_hi is None or lo < other_hi) and (hi is None or other_lo < hi)


def space_blockers(
    space: Space,
    owner: Hashable,
    lo: bytes,
    hi: bytes | None,
    point: bool,
    target: int,
    order: int,
) -> Iterator[Hashable]:
    """The blocking rule for a key (``point``) or range request in ``space``.

    Yields the other owners that hold an overlapping lock in an incompatible mode or wait
    (ahead, by order) for an overlapping one; possibly repeated.
    """
    compatible = COMPATIBLE[target]
    if point:
        cell = space.points.get(lo)
        if cell is not None:
            yield from cell_blockers(cell, owner, target, order)
    for (range_lo, range_hi), cell in space.ranges.items():
        if overlaps(lo, hi, range_lo, range_hi):
            for holder, hold in cell.holders.items():
                if holder != owner and not compatible[hold[0]]:
                    yield holder
    for waiter in space.range_queue:
        if waiter.order >= order:
            break
        if waiter.owner != owner and overlaps(lo, hi, waiter.lo, waiter.hi):
            yield waiter.owner
    if not point:
        keys = space.sorted_keys()
        start = bisect_left(keys, lo)
        stop = len(keys) if hi is None else bisect_left(keys, hi)
        points = space.points
        for index in range(start, stop):
            yield from cell_blockers(points[keys[index]], owner, target, order)
