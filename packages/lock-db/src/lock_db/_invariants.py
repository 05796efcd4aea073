"""A full consistency check of a manager's tables, for tests and debugging.

Theory of operation
-------------------
The engine keeps the same facts in several places for speed: holds in cells and in owner
records, per-mode counts and masks beside the holders, a sorted key index beside the key
cells, waiting keys beside the queues. :func:`check_invariants` recomputes every derived
fact from the primary ones and checks the properties the design promises, under the
manager's mutex, so it can run from a checker thread while other threads hammer the
manager:

- **safety**: no two owners hold incompatible modes on overlapping locks (a resource, a
  key, a range over a key, two overlapping ranges);
- **liveness**: every queued waiter is still ``WAITING`` and the blocking rule yields at
  least one owner for it, so no waiter is left parked when it could run (no lost
  wake-up); the wait-for graph has no cycle (every deadlock was broken as it formed);
- **bookkeeping**: owner records and cells agree, counts and masks match the holders,
  queues are sorted by order, nothing idle is kept, pooled objects are clean.

It raises ``AssertionError`` describing the first broken property. It costs time linear
in the size of the tables (quadratic in the locks of one space), so it is for tests.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import combinations
from typing import TYPE_CHECKING

from ._deadlock import find_cycle
from ._modes import BITS, COMPATIBLE
from ._records import WAITING, Cell, Waiter
from ._space import Space, is_point, overlaps

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["check_invariants"]


def check_invariants(manager: Engine) -> None:
    """Check every invariant of ``manager``'s tables; raise ``AssertionError`` if broken."""
    with manager._mutex:
        _check_locked(manager)


def _check_locked(manager: Engine) -> None:
    held: dict[Hashable, int] = {}  # owner -> number of holds found in cells
    waiters: list[Waiter] = []
    for resource, cell in manager._resources.items():
        assert cell.holders or cell.queue, f"idle cell kept for {resource!r}"
        _check_cell(cell, f"resource {resource!r}")
        for owner in cell.holders:
            assert manager._owners[owner].resources.get(resource) is cell, (owner, resource)
            held[owner] = held.get(owner, 0) + 1
        for waiter in cell.queue:
            assert waiter.space is None and waiter.cell is cell and waiter.resource == resource
        waiters.extend(cell.queue)
    for name, space in manager._spaces.items():
        assert space.name == name and not space.is_idle(), f"idle space kept: {name!r}"
        waiters.extend(_check_space(manager, space, held))
    for owner, record in manager._owners.items():
        assert record.owner == owner
        assert not record.is_idle(), f"idle owner record kept for {owner!r}"
        count = len(record.resources) + len(record.keys) + len(record.ranges)
        assert held.get(owner, 0) == count, f"owner {owner!r} holds {count} by its record"
    waiting = {waiter.owner: waiter for waiter in waiters}
    assert len(waiting) == len(waiters), "an owner waits twice"
    for owner, record in manager._owners.items():
        assert record.waiter is waiting.get(owner), f"record of {owner!r} disagrees on its wait"
    for waiter in waiters:
        assert waiter.status == WAITING, f"finished waiter still queued: {waiter.owner!r}"
        assert manager._owners.get(waiter.owner) is waiter.record
        assert next(manager._blockers(waiter), None) is not None, (
            f"lost wake-up: {waiter.owner!r} waits for {waiter.resource!r} but nothing blocks it"
        )
    for owner in waiting:
        cycle = find_cycle(owner, manager._edges)
        assert cycle is None, f"undetected deadlock: {cycle!r}"
    for cell in manager._cell_pool:
        assert not cell.holders and not cell.queue and not cell.present and not any(cell.counts)
    for record in manager._record_pool:
        assert record.is_idle()
    for pooled in manager._space_pool:
        assert pooled.is_idle() and not pooled.waiting_keys and pooled.point_keys is None


def _check_cell(cell: Cell, where: str) -> None:
    counts = [0] * 5
    for hold in cell.holders.values():
        assert hold[1] >= 1, f"{where}: hold with count {hold[1]}"
        counts[hold[0]] += 1
    assert counts == cell.counts, f"{where}: counts {cell.counts} != {counts}"
    present = sum(BITS[code] for code in range(5) if counts[code])
    assert present == cell.present, f"{where}: present mask out of date"
    for (_, first), (_, second) in combinations(cell.holders.items(), 2):
        assert COMPATIBLE[first[0]][second[0]], f"{where}: incompatible holders"
    orders = [waiter.order for waiter in cell.queue]
    assert orders == sorted(orders), f"{where}: queue out of order"


def _check_space(manager: Engine, space: Space, held: dict[Hashable, int]) -> list[Waiter]:
    name = space.name
    locks: list[tuple[Hashable, bytes, bytes | None, int]] = []
    waiters: list[Waiter] = list(space.range_queue)
    for key, cell in space.points.items():
        assert cell.holders or cell.queue, f"idle key cell kept: {key!r}"
        _check_cell(cell, f"key {key!r} of {name!r}")
        assert (key in space.waiting_keys) == bool(cell.queue), f"waiting_keys wrong: {key!r}"
        for owner, hold in cell.holders.items():
            assert manager._owners[owner].keys.get((name, key)) is cell, (owner, key)
            held[owner] = held.get(owner, 0) + 1
            locks.append((owner, key, key + b"\x00", hold[0]))
        for waiter in cell.queue:
            assert waiter.space is space and waiter.cell is cell and waiter.lo == key
        waiters.extend(cell.queue)
    assert space.waiting_keys <= set(space.points), "waiting key without a cell"
    if space.point_keys is not None:
        assert space.point_keys == sorted(space.points), "point_keys out of date"
    for (lo, hi), cell in space.ranges.items():
        assert cell.holders and not cell.queue and not is_point(lo, hi), (lo, hi)
        _check_cell(cell, f"range [{lo!r}, {hi!r}) of {name!r}")
        for owner, hold in cell.holders.items():
            assert manager._owners[owner].ranges.get((name, lo, hi)) is cell, (owner, lo, hi)
            held[owner] = held.get(owner, 0) + 1
            locks.append((owner, lo, hi, hold[0]))
    orders = [waiter.order for waiter in space.range_queue]
    assert orders == sorted(orders), f"range queue of {name!r} out of order"
    for waiter in space.range_queue:
        assert waiter.space is space and waiter.cell is None
    for first, second in combinations(locks, 2):
        if first[0] != second[0] and overlaps(first[1], first[2], second[1], second[2]):
            assert COMPATIBLE[first[3]][second[3]], (
                f"incompatible overlapping locks {first} {second}"
            )
    return waiters
