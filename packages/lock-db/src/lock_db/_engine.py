"""The manager's engine: queueing, blocking, granting, cancelling, detecting deadlocks.

Theory of operation
-------------------
One mutex (a plain ``threading.Lock``) guards every table. A request takes it, decides, and
either returns granted or becomes a :class:`~lock_db._records.Waiter`: queued in order,
checked for deadlock, then parked on its *own* lock (``waiter.signal``, created held) with
the mutex released. Nobody else ever waits on that lock, so waking a waiter wakes exactly
one thread; there is no shared condition variable and no thundering herd.

A waiter's fate is decided by other threads, always under the mutex, and always exactly
once: its status goes from ``WAITING`` to ``GRANTED`` or ``FAILED`` (with the error to
raise) and then its signal is released. The waiting thread wakes on the signal or on its
timeout, retakes the mutex and reads the status. ``WAITING`` then means the timeout won:
it withdraws its own request. A grant that races with the timeout is simply kept, since
the status is read under the mutex.

Grants happen in *passes*. Whenever something that could unblock a waiter happens (a
release, a withdrawn or cancelled request), the engine re-applies the blocking rule to the
affected waiters in order and grants every one the rule no longer blocks, before the
mutex is released. So "a waiter whose rule yields no blocker is never left waiting" holds
whenever the mutex is free: that is the no-lost-wake-up invariant the tests check. One
ordered pass suffices, since a grant only ever unblocks waiters *behind* the granted one:

- a plain resource or a key with no range waiters in its space: grant from the head of
  its queue until the first waiter that stays blocked (everyone behind it is blocked by
  it);
- anything involving a range: every waiter of the space, in order.

Before parking, the waiter runs deadlock detection (``_deadlock``): a cycle, if any, goes
through the new waiter, and one victim per cycle is failed with
:class:`~lock_db.DeadlockError` on the spot, followed by a pass, so the others proceed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable, Iterator

from ._deadlock import VictimPolicy, choose_victim, find_cycle
from ._modes import CONFLICTS, MODES, SUPREMUM
from ._records import (
    CONVERSION_OFFSET,
    FAILED,
    GRANTED,
    POOL_LIMIT,
    WAITING,
    Cell,
    OwnerRecord,
    Waiter,
    add_hold,
    cell_blockers,
    enqueue,
    other_holders_present,
)
from ._space import Space, space_blockers
from .errors import DeadlockError, LockTimeoutError, LockTypeError, LockUsageError, OwnerBusyError

__all__ = ["Engine", "check_timeout"]


def check_timeout(timeout: object) -> float | None:
    """A validated timeout in seconds; ``None`` (or anything past ``TIMEOUT_MAX``) is forever.

    Raises:
        LockTypeError: not an int or float.
        LockUsageError: negative or NaN.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise LockTypeError(
            f"timeout must be a number of seconds or None, got {type(timeout).__name__} {timeout!r}"
        )
    if not timeout >= 0:
        raise LockUsageError(f"timeout must be >= 0 seconds, got {timeout!r}")
    if timeout > threading.TIMEOUT_MAX:
        return None
    return float(timeout)


class Engine:
    """State and mechanics behind :class:`~lock_db.LockManager`; see the module docstring."""

    def __init__(self, victim_policy: VictimPolicy, default_timeout: float | None) -> None:
        self._default_timeout = default_timeout
        self._mutex = threading.Lock()
        self._owners: dict[Hashable, OwnerRecord] = {}
        self._resources: dict[Hashable, Cell] = {}
        self._spaces: dict[Hashable, Space] = {}
        self._victim_policy = victim_policy
        self._next_age = itertools.count(1).__next__
        self._next_order = itertools.count(1).__next__
        self._grants = 0
        self._upgrades = 0
        self._waits = 0
        self._timeouts = 0
        self._deadlocks = 0
        self._cancelled = 0
        self._try_failures = 0
        self._releases = 0
        # Emptied cells and records, kept for reuse: creating one costs more than the rest
        # of an uncontended acquire. A pooled object is clean (empty dicts, zero counts) and
        # nothing outside the tables refers to it except finished waiters, which never
        # touch their record or cell again.
        self._cell_pool: list[Cell] = []
        self._record_pool: list[OwnerRecord] = []
        self._space_pool: list[Space] = []

    # -- owners ------------------------------------------------------------------------

    def _record(self, owner: Hashable) -> OwnerRecord:
        """The owner's record, created on first sight; refuses an owner that waits."""
        record = self._owners.get(owner)
        if record is None:
            return self._new_record(owner)
        if record.waiter is not None:
            raise OwnerBusyError(owner, record.waiter.resource)
        return record

    def _new_record(self, owner: Hashable) -> OwnerRecord:
        pool = self._record_pool
        if pool:
            record = pool.pop()
            record.owner = owner
            record.age = self._next_age()
        else:
            record = OwnerRecord(owner, self._next_age())
        self._owners[owner] = record
        return record

    def _tidy_owner(self, record: OwnerRecord) -> None:
        """Forget an owner that holds and waits for nothing (its age restarts)."""
        if record.is_idle():
            del self._owners[record.owner]
            if len(self._record_pool) < POOL_LIMIT:
                self._record_pool.append(record)

    def _drop_cell(self, resource: Hashable, cell: Cell) -> None:
        del self._resources[resource]
        if len(self._cell_pool) < POOL_LIMIT:
            self._cell_pool.append(cell)

    def _new_space(self, name: Hashable) -> Space:
        pool = self._space_pool
        if pool:
            space = pool.pop()
            space.name = name
        else:
            space = Space(name, self._cell_pool)
        self._spaces[name] = space
        return space

    def _drop_space(self, space: Space) -> None:
        """Forget an idle space (no locks, no waiters)."""
        del self._spaces[space.name]
        space.point_keys = None
        if len(self._space_pool) < POOL_LIMIT:
            self._space_pool.append(space)

    # -- requests ----------------------------------------------------------------------

    def _request(
        self,
        record: OwnerRecord,
        resource: Hashable,
        cell: Cell,
        code: int,
        timeout: float | None,
        try_only: bool,
    ) -> bool:
        """A request on a resource that already has holders or waiters (the slow path)."""
        owner = record.owner
        hold = cell.holders.get(owner)
        if hold is None:
            target = code
            order = self._next_order()
            free = not cell.queue and not cell.present & CONFLICTS[code]
        else:
            target = SUPREMUM[hold[0]][code]
            if target == hold[0]:
                hold[1] += 1
                self._grants += 1
                return True
            order = self._next_order() - CONVERSION_OFFSET
            free = not other_holders_present(cell, owner) & CONFLICTS[target] and not (
                cell.queue and cell.queue[0].order < 0
            )
        if free:
            if add_hold(cell, owner, target):
                self._upgrades += 1
            record.resources[resource] = cell
            self._grants += 1
            return True
        if try_only or timeout == 0:
            return self._refuse(record, resource, code, try_only)
        waiter = Waiter(record, code, target, order, resource, cell)
        enqueue(cell.queue, waiter)
        self._wait(waiter, timeout)
        return True

    def _refuse(self, record: OwnerRecord, resource: Hashable, code: int, try_only: bool) -> bool:
        """A request that may not wait and cannot be granted now: False, or a timeout."""
        owner = record.owner
        self._tidy_owner(record)  # may recycle the record: read nothing from it after this
        if try_only:
            self._try_failures += 1
            return False
        self._timeouts += 1
        raise LockTimeoutError(owner, resource, MODES[code], 0)

    # -- waiting -----------------------------------------------------------------------

    def _wait(self, waiter: Waiter, timeout: float | None) -> None:
        """Park a queued waiter until it is granted; raise if it fails or times out.

        Called and returns with the mutex held.
        """
        waiter.record.waiter = waiter
        self._waits += 1
        try:
            self._detect_deadlocks(waiter)
            if waiter.status == WAITING:
                mutex = self._mutex
                mutex.release()
                try:
                    if timeout is None:
                        waiter.signal.acquire()
                    else:
                        waiter.signal.acquire(True, timeout)
                finally:
                    mutex.acquire()
        except BaseException:
            # A failing victim policy, or an interrupt while parked: take the request back.
            if waiter.status == WAITING:
                self._fail(waiter, None)
            raise
        status = waiter.status
        if status == GRANTED:
            return
        if status == WAITING:
            self._timeouts += 1
            self._fail(waiter, None)
            raise LockTimeoutError(
                waiter.owner, waiter.resource, MODES[waiter.requested], timeout or 0
            )
        # Failed by another thread, which also tidied the record: do not touch it again.
        assert waiter.error is not None
        raise waiter.error

    def _blockers(self, waiter: Waiter) -> Iterator[Hashable]:
        """The owners ``waiter`` waits for: its out-edges in the wait-for graph."""
        space = waiter.space
        if space is None:
            assert waiter.cell is not None
            return cell_blockers(waiter.cell, waiter.owner, waiter.target, waiter.order)
        assert isinstance(space, Space)
        point = waiter.cell is not None
        return space_blockers(
            space, waiter.owner, waiter.lo, waiter.hi, point, waiter.target, waiter.order
        )

    def _edges(self, owner: Hashable) -> Iterator[Hashable] | None:
        record = self._owners.get(owner)
        if record is None or record.waiter is None:
            return None
        return self._blockers(record.waiter)

    def _detect_deadlocks(self, waiter: Waiter) -> None:
        """Fail one victim per wait-for cycle through ``waiter``'s owner."""
        while waiter.status == WAITING:
            cycle = find_cycle(waiter.owner, self._edges)
            if cycle is None:
                return
            victim = choose_victim(cycle, self._age_of, self._victim_policy)
            at = cycle.index(victim)
            victim_waiter = self._owners[victim].waiter
            assert victim_waiter is not None
            error = DeadlockError(
                victim,
                victim_waiter.resource,
                MODES[victim_waiter.requested],
                cycle[at:] + cycle[:at],
            )
            self._deadlocks += 1
            self._fail(victim_waiter, error)

    def _age_of(self, owner: Hashable) -> int:
        return self._owners[owner].age

    # -- deciding a waiter's fate ------------------------------------------------------

    def _grant(self, waiter: Waiter) -> None:
        """Install the waiter's hold, take it off its queue, wake its thread."""
        record = waiter.record
        owner = waiter.owner
        space = waiter.space
        if space is None:
            cell = waiter.cell
            assert cell is not None
            upgraded = add_hold(cell, owner, waiter.target)
            cell.queue.remove(waiter)
            record.resources[waiter.resource] = cell
        else:
            assert isinstance(space, Space)
            cell = waiter.cell
            if cell is None:
                space.range_queue.remove(waiter)
                cell = space.range_cell(waiter.lo, waiter.hi)
                upgraded = add_hold(cell, owner, waiter.target)
                record.ranges[(space.name, waiter.lo, waiter.hi)] = cell
            else:
                upgraded = add_hold(cell, owner, waiter.target)
                cell.queue.remove(waiter)
                space.tidy_point(waiter.lo, cell)
                record.keys[(space.name, waiter.lo)] = cell
        if upgraded:
            self._upgrades += 1
        self._grants += 1
        record.waiter = None
        waiter.status = GRANTED
        waiter.signal.release()

    def _fail(self, waiter: Waiter, error: BaseException | None) -> None:
        """Withdraw a waiting request, wake its thread with ``error``, let others move.

        Also forgets the owner if it is left with nothing, so the woken thread never needs
        to touch its record again.
        """
        record = waiter.record
        record.waiter = None
        waiter.status = FAILED
        waiter.error = error
        waiter.signal.release()
        space = waiter.space
        if space is None:
            cell = waiter.cell
            assert cell is not None
            cell.queue.remove(waiter)
            if cell.queue:
                self._resource_pass(waiter.resource, cell)
            elif not cell.holders:
                self._drop_cell(waiter.resource, cell)
        else:
            assert isinstance(space, Space)
            if waiter.cell is None:
                space.range_queue.remove(waiter)
                self._space_pass(space, None)
            else:
                waiter.cell.queue.remove(waiter)
                space.tidy_point(waiter.lo, waiter.cell)
                self._space_pass(space, waiter.lo)
        self._tidy_owner(record)

    # -- passes ------------------------------------------------------------------------

    def _resource_pass(self, resource: Hashable, cell: Cell) -> None:
        """Grant from the head of a resource's queue while the head is unblocked."""
        queue = cell.queue
        while queue:
            head = queue[0]
            # Nothing is ahead of the head, so only holders can block it.
            if other_holders_present(cell, head.owner) & CONFLICTS[head.target]:
                break
            self._grant(head)
        if not cell.holders and not queue:
            self._drop_cell(resource, cell)

    def _space_pass(self, space: Space, key: bytes | None) -> None:
        """Grant what a change at ``key`` (or anywhere, if ``None``) unblocked in ``space``."""
        if key is not None and not space.range_queue:
            cell = space.points.get(key)
            if cell is not None and cell.queue:
                queue = cell.queue
                while queue:
                    head = queue[0]
                    blockers = space_blockers(
                        space, head.owner, head.lo, head.hi, True, head.target, head.order
                    )
                    if next(blockers, None) is not None:
                        break
                    self._grant(head)
        elif space.range_queue or space.waiting_keys:
            for waiter in space.waiters_in_order():
                blockers = self._blockers(waiter)
                if next(blockers, None) is None:
                    self._grant(waiter)
        if space.is_idle():
            self._drop_space(space)
