"""Key and range lock operations of the manager: acquire, try, release, release all.

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

A key request in a space with no range locks and no range waiters, for a key nobody
holds, skips straight to the grant: that is the uncontended fast path for key locks.

Releasing a key lets the key's queue move (or the whole space, when range waiters exist,
since any of them might cover the key); releasing a range lets the whole space move.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Hashable
from typing import Any

from ._engine import Engine, check_timeout
from ._modes import BITS, SUPREMUM, LockMode, mode_error
from ._records import (
    CONVERSION_OFFSET,
    POOL_LIMIT,
    Cell,
    KeyRange,
    OwnerRecord,
    Waiter,
    add_hold,
    drop_hold,
)
from ._records import enqueue as enqueue_waiter
from ._space import Space, check_key, check_range, is_point, space_blockers
from .errors import NotHeldError

__all__ = ["SpaceOps"]


class SpaceOps(Engine):
    """The key and range half of :class:`~lock_db.LockManager`'s public surface."""

    def acquire_key(
        self,
        owner: Hashable,
        space: Hashable,
        key: bytes,
        mode: LockMode,
        timeout: float | None = None,
    ) -> None:
        """Lock one key of ``space``, waiting if needed.

        The same lock as ``acquire_range(owner, space, key, key + b"\\x00", mode)``. It
        conflicts with other owners' incompatible locks on the key and on every range
        covering it. Re-entry and upgrades work as for :meth:`acquire`.

        Args:
            owner: the owner.
            space: the key space; any hashable (a separate namespace from resources).
            key: the key.
            mode: the mode to lock in.
            timeout: as for :meth:`acquire`.

        Raises:
            LockTimeoutError, DeadlockError, LockCancelledError, OwnerBusyError: as for
                :meth:`acquire`.
            LockTypeError: ``key`` is not bytes, ``mode`` not a ``LockMode``, ``timeout``
                not a number.
            LockUsageError: ``timeout`` is negative.
        """
        if type(mode) is not LockMode:
            raise mode_error(mode)
        if type(key) is not bytes:
            check_key(key)
        timeout = self._default_timeout if timeout is None else check_timeout(timeout)
        code = mode._value_
        mutex = self._mutex
        mutex.acquire()
        try:
            found = self._spaces.get(space)
            record = self._owners.get(owner)
            if record is None:
                record = self._new_record(owner)
            elif record.waiter is not None:
                self._record(owner)  # raises OwnerBusyError
            if found is None:
                found = self._new_space(space)
            elif found.ranges or found.range_queue or key in found.points:
                self._request_space(record, found, key, key + b"\x00", code, timeout, False)
                return
            # Fast path: nobody holds or waits for the key and no range lock can cover it.
            pool = self._cell_pool
            cell = found.points[key] = pool.pop() if pool else Cell()
            if found.point_keys is not None:
                insort(found.point_keys, key)
            cell.holders[owner] = [code, 1]
            cell.counts[code] = 1
            cell.present = BITS[code]
            record.keys[(space, key)] = cell
            self._grants += 1
        finally:
            mutex.release()

    def try_acquire_key(self, owner: Hashable, space: Hashable, key: bytes, mode: LockMode) -> bool:
        """Lock one key of ``space`` if that is possible without waiting.

        Args:
            owner: the owner.
            space: the key space.
            key: the key.
            mode: the mode to lock in.

        Returns:
            ``True`` if granted, ``False`` if it would have to wait (nothing changed).

        Raises:
            OwnerBusyError: the owner already has a request waiting in another thread.
            LockTypeError: ``key`` is not bytes or ``mode`` not a ``LockMode``.
        """
        if type(mode) is not LockMode:
            raise mode_error(mode)
        check_key(key)
        with self._mutex:
            found = self._spaces.get(space)
            record = self._record(owner)
            if found is None:
                found = self._new_space(space)
            return self._request_space(record, found, key, key + b"\x00", mode._value_, None, True)

    def release_key(self, owner: Hashable, space: Hashable, key: bytes) -> None:
        """Undo one grant of ``owner``'s lock on ``key`` of ``space`` (as :meth:`release`).

        Args:
            owner: the owner.
            space: the key space.
            key: the key.

        Raises:
            NotHeldError: the owner holds no lock on exactly this key.
            LockTypeError: ``key`` is not bytes.
        """
        if type(key) is not bytes:
            check_key(key)
        lock = (space, key)
        mutex = self._mutex
        mutex.acquire()
        try:
            record = self._owners.get(owner)
            cell = None if record is None else record.keys.get(lock)
            if cell is None:
                raise NotHeldError(owner, KeyRange(space, key, key + b"\x00"))
            assert record is not None
            self._releases += 1
            hold = cell.holders[owner]
            if hold[1] > 1:
                hold[1] -= 1
                return
            del cell.holders[owner]
            code = hold[0]
            count = cell.counts[code] - 1
            cell.counts[code] = count
            if not count:
                cell.present &= ~BITS[code]
            del record.keys[lock]
            found = self._spaces[space]
            if cell.queue or found.range_queue:
                found.tidy_point(key, cell)
                self._space_pass(found, key)
            elif not cell.holders:
                # Fast path: the key is free and nobody waits in the space.
                del found.points[key]
                if found.point_keys is not None:
                    del found.point_keys[bisect_left(found.point_keys, key)]
                pool = self._cell_pool
                if len(pool) < POOL_LIMIT:
                    pool.append(cell)
                if not found.points and not found.ranges:
                    self._drop_space(found)
            if not (record.resources or record.keys or record.ranges or record.waiter):
                del self._owners[owner]
                if len(self._record_pool) < POOL_LIMIT:
                    self._record_pool.append(record)
        finally:
            mutex.release()

    def acquire_range(
        self,
        owner: Hashable,
        space: Hashable,
        lo: bytes | None,
        hi: bytes | None,
        mode: LockMode,
        timeout: float | None = None,
    ) -> None:
        """Lock the keys ``[lo, hi)`` of ``space``, present and future (phantom protection).

        Conflicts with other owners' incompatible key locks on keys in the range and range
        locks overlapping it. Each exact ``[lo, hi)`` is its own lock: re-entry and upgrades
        apply to the same bounds; other bounds take another lock.

        Args:
            owner: the owner.
            space: the key space.
            lo: first key of the range (inclusive); ``None`` for no lower bound (``b""``).
            hi: end of the range (exclusive); ``None`` for no upper bound.
            mode: the mode to lock in.
            timeout: as for :meth:`acquire`.

        Raises:
            LockTimeoutError, DeadlockError, LockCancelledError, OwnerBusyError: as for
                :meth:`acquire`.
            InvalidRangeError: ``lo >= hi`` (empty or inverted).
            LockTypeError: a bound is neither bytes nor None, ``mode`` is not a
                ``LockMode``, ``timeout`` is not a number.
            LockUsageError: ``timeout`` is negative.
        """
        if type(mode) is not LockMode:
            raise mode_error(mode)
        low, high = check_range(lo, hi)
        timeout = self._default_timeout if timeout is None else check_timeout(timeout)
        with self._mutex:
            found = self._spaces.get(space)
            record = self._record(owner)
            if found is None:
                found = self._new_space(space)
            self._request_space(record, found, low, high, mode._value_, timeout, False)

    def try_acquire_range(
        self,
        owner: Hashable,
        space: Hashable,
        lo: bytes | None,
        hi: bytes | None,
        mode: LockMode,
    ) -> bool:
        """Lock ``[lo, hi)`` of ``space`` if that is possible without waiting.

        Args:
            owner: the owner.
            space: the key space.
            lo: first key (inclusive) or ``None``.
            hi: end (exclusive) or ``None``.
            mode: the mode to lock in.

        Returns:
            ``True`` if granted, ``False`` if it would have to wait (nothing changed).

        Raises:
            OwnerBusyError: the owner already has a request waiting in another thread.
            InvalidRangeError: ``lo >= hi``.
            LockTypeError: a bound is neither bytes nor None, or ``mode`` not a ``LockMode``.
        """
        if type(mode) is not LockMode:
            raise mode_error(mode)
        low, high = check_range(lo, hi)
        with self._mutex:
            found = self._spaces.get(space)
            record = self._record(owner)
            if found is None:
                found = self._new_space(space)
            return self._request_space(record, found, low, high, mode._value_, None, True)

    def release_range(
        self, owner: Hashable, space: Hashable, lo: bytes | None, hi: bytes | None
    ) -> None:
        """Undo one grant of ``owner``'s lock on exactly ``[lo, hi)`` of ``space``.

        Args:
            owner: the owner.
            space: the key space.
            lo: the bounds the lock was acquired with (``None`` and ``b""`` are the same).
            hi: the bounds the lock was acquired with.

        Raises:
            NotHeldError: the owner holds no lock on exactly these bounds.
            InvalidRangeError: ``lo >= hi``.
            LockTypeError: a bound is neither bytes nor None.
        """
        low, high = check_range(lo, hi)
        self._release_space(owner, space, low, high)

    # -- mechanics ---------------------------------------------------------------------

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
        if next(space_blockers(space, owner, lo, hi, target, order), None) is None:
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
        with self._mutex:
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
