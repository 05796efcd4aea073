"""The public key and range operations: acquire, try, release for keys and ranges.

Theory of operation
-------------------
These methods validate their arguments, take the mutex and hand the request to the
general path of ``_spaceengine``, except in the two uncontended cases that are common
enough to deserve an inline fast path, mirroring ``acquire`` and ``release`` of
resources:

- a key nobody holds or waits for, in a space without range locks or range waiters (no
  range can cover it and nothing can be queued ahead of it): the cell is taken from the
  pool and the grant installed directly;
- a range in a space without range locks or range waiters, covering no key that anybody
  holds or waits for (checked by bisecting the space's sorted key index): likewise.

Releasing the last grant of a key or range nobody waits behind takes the mirror-image
path. Everything else (re-entry, upgrades, contention, ranges among ranges) goes through
the general path, which applies the full blocking rule.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Hashable

from ._engine import check_timeout
from ._modes import BITS, LockMode, mode_error
from ._records import POOL_LIMIT, Cell, KeyRange
from ._space import check_key, check_range, covers_a_key, is_point
from ._spaceengine import SpaceEngine
from .errors import NotHeldError

__all__ = ["SpaceOps"]


class SpaceOps(SpaceEngine):
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
                # Fast path: the key is free, nobody queues for it, no range waiter can
                # cover it (waiters on other keys cannot be waiting for this one).
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
        if type(lo) is not bytes or type(hi) is not bytes or lo >= hi:
            lo, hi = check_range(lo, hi)
        timeout = self._default_timeout if timeout is None else check_timeout(timeout)
        code = mode._value_
        mutex = self._mutex
        mutex.acquire()
        try:
            found = self._spaces.get(space)
            record = self._record(owner)
            if found is None:
                found = self._new_space(space)
            elif found.ranges or found.range_queue or covers_a_key(found, lo, hi):
                self._request_space(record, found, lo, hi, code, timeout, False)
                return
            if hi is not None and len(hi) == len(lo) + 1 and is_point(lo, hi):
                self._request_space(record, found, lo, hi, code, timeout, False)
                return
            # Fast path: no range lock in the space and no locked key inside [lo, hi).
            pool = self._cell_pool
            cell = found.ranges[(lo, hi)] = pool.pop() if pool else Cell()
            cell.holders[owner] = [code, 1]
            cell.counts[code] = 1
            cell.present = BITS[code]
            record.ranges[(space, lo, hi)] = cell
            self._grants += 1
        finally:
            mutex.release()

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
        if type(lo) is not bytes or type(hi) is not bytes or lo >= hi:
            lo, hi = check_range(lo, hi)
        if hi is not None and len(hi) == len(lo) + 1 and is_point(lo, hi):
            self._release_space(owner, space, lo, hi)
            return
        lock = (space, lo, hi)
        mutex = self._mutex
        mutex.acquire()
        try:
            record = self._owners.get(owner)
            cell = None if record is None else record.ranges.get(lock)
            if cell is None:
                raise NotHeldError(owner, KeyRange(space, lo, hi))
            assert record is not None
            self._releases += 1
            hold = cell.holders[owner]
            if hold[1] > 1:
                hold[1] -= 1
                return
            del record.ranges[lock]
            del cell.holders[owner]
            code = hold[0]
            count = cell.counts[code] - 1
            cell.counts[code] = count
            if not count:
                cell.present &= ~BITS[code]
            found = self._spaces[space]
            if not cell.holders:
                del found.ranges[(lo, hi)]
                pool = self._cell_pool
                if len(pool) < POOL_LIMIT:
                    pool.append(cell)
            if found.range_queue or found.waiting_keys:
                self._space_pass(found, None)
            elif not found.points and not found.ranges:
                self._drop_space(found)
            if not (record.resources or record.keys or record.ranges or record.waiter):
                del self._owners[owner]
                if len(self._record_pool) < POOL_LIMIT:
                    self._record_pool.append(record)
        finally:
            mutex.release()
