"""Key and range locks inside the engine: the general request path and releases.

Theory of operation
-------------------
Every key or range request is normalised to a half-open range ``[lo, hi)`` of its space
(a key ``k`` becoming ``[k, k + b"\\x00")``) and then follows one path, the space version
of the resource path in ``_engine``:

1. find the exact lock the owner may already hold (a key's cell, or the cell of exactly
   ``[lo, hi)``); holding a mode that covers the request is re-entry, holding less makes
   the request a conversion to the supremum, ordered ahead of new requests;
2. apply the blocking rule across the space (``_space.space_blockers``); no blocker means
   the grant is installed at once;
3. otherwise the request waits: a key request in its key's queue, a range request in the
   space's range queue, both sorted by order and both part of the one wait-for graph.

An owner's key locks are filed under ``(space, key)`` and its range locks under
``(space, lo, hi)``, so releasing either is one dict lookup. Releasing a key lets the
key's queue move (or the whole space, when range waiters exist, since any of them might
cover the key); releasing a range lets the whole space move. ``release_all`` drops every
key and range lock of the owner first and then lets each touched space move once.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ._engine import Engine
from ._modes import SUPREMUM
from ._records import (
    CONVERSION_OFFSET,
    Cell,
    KeyRange,
    OwnerRecord,
    Waiter,
    add_hold,
    drop_hold,
)
from ._records import enqueue as enqueue_waiter
from ._space import Space, is_point, space_blockers
from .errors import NotHeldError

__all__ = ["SpaceEngine"]


class SpaceEngine(Engine):
    """The engine plus the mechanics of key and range locks."""

    def _request_space(
        self,
        record: OwnerRecord,
        space: Space,
        lo: bytes,
        hi: bytes | None,
        code: int,
        timeout: float | None,
        try_only: bool,
    ) -> bool:
        """A key or range request, with the mutex held (the general path)."""
        owner = record.owner
        point = is_point(lo, hi)
        cell = space.points.get(lo) if point else space.ranges.get((lo, hi))
        hold = None if cell is None else cell.holders.get(owner)
        if hold is None:
            target = code
            order = self._next_order()
        else:
            target = SUPREMUM[hold[0]][code]
            if target == hold[0]:
                hold[1] += 1
                self._grants += 1
                return True
            order = self._next_order() - CONVERSION_OFFSET
        if next(space_blockers(space, owner, lo, hi, point, target, order), None) is None:
            if cell is None:
                cell = space.point_cell(lo) if point else space.range_cell(lo, hi)
            if add_hold(cell, owner, target):
                self._upgrades += 1
            if point:
                record.keys[(space.name, lo)] = cell
            else:
                record.ranges[(space.name, lo, hi)] = cell
            self._grants += 1
            return True
        target_name = KeyRange(space.name, lo, hi)
        if try_only or timeout == 0:
            return self._refuse(record, target_name, code, try_only)
        waiter = Waiter(record, code, target, order, target_name, None)
        waiter.space = space
        waiter.lo = lo
        waiter.hi = hi
        if point:
            waiter.cell = space.point_cell(lo)
            enqueue_waiter(waiter.cell.queue, waiter)
            space.waiting_keys.add(lo)
        else:
            enqueue_waiter(space.range_queue, waiter)
        self._wait(waiter, timeout)
        return True

    def _release_space(self, owner: Hashable, name: Hashable, lo: bytes, hi: bytes | None) -> None:
        point = is_point(lo, hi)
        mutex = self._mutex
        mutex.acquire()
        try:
            record = self._owners.get(owner)
            locks: dict[Any, Cell] = {}
            if record is not None:
                locks = record.keys if point else record.ranges
            lock = (name, lo) if point else (name, lo, hi)
            cell = locks.get(lock)
            if cell is None:
                raise NotHeldError(owner, KeyRange(name, lo, hi))
            assert record is not None
            self._releases += 1
            if not drop_hold(cell, owner, entirely=False):
                return
            del locks[lock]
            space = self._spaces[name]
            if point:
                space.tidy_point(lo, cell)
                self._space_pass(space, lo)
            else:
                space.tidy_range(lo, hi, cell)
                self._space_pass(space, None)
            self._tidy_owner(record)
        finally:
            mutex.release()

    def _release_space_locks(self, record: OwnerRecord) -> None:
        """Drop all of ``record``'s key and range locks, then let each space move once."""
        touched: dict[Hashable, set[bytes] | None] = {}
        for (name, key), cell in record.keys.items():
            drop_hold(cell, record.owner, entirely=True)
            self._spaces[name].tidy_point(key, cell)
            keys = touched.setdefault(name, set())
            if keys is not None:
                keys.add(key)
        for (name, lo, hi), cell in record.ranges.items():
            drop_hold(cell, record.owner, entirely=True)
            self._spaces[name].tidy_range(lo, hi, cell)
            touched[name] = None
        record.keys.clear()
        record.ranges.clear()
        for name, keys in touched.items():
            space = self._spaces[name]
            if keys is None or space.range_queue:
                self._space_pass(space, None)
                continue
            for key in keys:
                self._space_pass(space, key)
                if name not in self._spaces:
                    break
