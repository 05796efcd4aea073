"""The public lock manager: requests, releases and introspection.

Theory of operation
-------------------
:class:`LockManager` is the engine (``_engine``) behind a typed, validated surface. Every
public method checks its arguments first (mode type, key types, range bounds, timeout) so
nothing is half done when a :class:`~lock_db.LockUsageError` is raised, then takes the one
mutex for a short, bounded critical section.

The uncontended paths are written out inline, because at a microsecond or two per call
the cost is the number of Python operations: ``acquire`` on a resource nobody holds or
waits for is one mutex round trip (``acquire``/``release`` calls, which cost half of a
``with`` block here), a few dict operations, and a cell and (for a new owner) an owner
record taken from the engine's pools; ``release`` of the last hold is the mirror image.
Everything else (re-entry, upgrades, contention) goes through the engine's general path.

Lifetimes: a resource's cell exists while someone holds or waits for it, an owner's record
while it holds or waits for something, a space while it has any lock or waiter. Memory is
therefore proportional to what is locked now, never to what was locked once; the price is
that an owner that releases everything and comes back is "first seen" again, younger than
before (see the victim policy).
"""

from __future__ import annotations

from collections.abc import Hashable

from ._deadlock import VictimPolicy, youngest
from ._engine import check_timeout
from ._modes import BITS, MODES, LockMode, mode_error
from ._records import POOL_LIMIT, Cell, SpaceLock, drop_hold
from ._spaceops import SpaceOps
from .errors import LockCancelledError, LockTypeError, NotHeldError

__all__ = ["LockManager"]


class LockManager(SpaceOps):
    """A lock manager for one database: modes, queues, key ranges, deadlock detection.

    Thread-safe: every method may be called from any thread. Owners are any hashable ids
    (transaction ids); resources are any hashable names; key and range locks live in named
    spaces, a separate namespace from resources. See ``docs/API.md`` for the semantics.

    Args:
        default_timeout: seconds a blocking request waits when it is given no timeout;
            ``None`` waits until granted or chosen as a deadlock victim.
        victim_policy: chooses the victim of a deadlock from the cycle's owners, given
            oldest first; the default, :func:`~lock_db.youngest`, picks the youngest. It
            runs with the manager's mutex held and must not call the manager.

    Raises:
        LockTypeError: ``default_timeout`` is not a number, or ``victim_policy`` is not
            callable.
        LockUsageError: ``default_timeout`` is negative.
    """

    def __init__(
        self, *, default_timeout: float | None = None, victim_policy: VictimPolicy = youngest
    ) -> None:
        if not callable(victim_policy):
            raise LockTypeError(f"victim_policy must be callable, got {victim_policy!r}")
        super().__init__(victim_policy, check_timeout(default_timeout))

    # -- resources ---------------------------------------------------------------------

    def acquire(
        self, owner: Hashable, resource: Hashable, mode: LockMode, timeout: float | None = None
    ) -> None:
        """Lock ``resource`` for ``owner`` in ``mode``, waiting if needed.

        Re-entrant: asking for a mode the owner's hold already covers succeeds at once and
        counts one more grant. Asking for more upgrades the hold to the supremum of the two
        modes, ahead of new requests in the queue.

        Args:
            owner: the owner (a transaction id); any hashable.
            resource: what to lock; any hashable.
            mode: the mode to lock in.
            timeout: seconds to wait; ``None`` uses the manager's ``default_timeout``; ``0``
                never waits (raises at once instead).

        Raises:
            LockTimeoutError: not granted within the timeout (an upgrade keeps the old mode).
            DeadlockError: the owner was chosen as the victim of a deadlock.
            LockCancelledError: ``release_all(owner)`` ran in another thread meanwhile.
            OwnerBusyError: the owner already has a request waiting in another thread.
            LockTypeError: ``mode`` is not a ``LockMode``, or ``timeout`` not a number.
            LockUsageError: ``timeout`` is negative.
        """
        if type(mode) is not LockMode:
            raise mode_error(mode)
        timeout = self._default_timeout if timeout is None else check_timeout(timeout)
        code = mode._value_
        mutex = self._mutex
        mutex.acquire()
        try:
            cell = self._resources.get(resource)
            record = self._owners.get(owner)
            if record is None:
                records = self._record_pool
                if records:
                    record = records.pop()
                    record.owner = owner
                    record.age = self._next_age()
                    self._owners[owner] = record
                else:
                    record = self._new_record(owner)
            elif record.waiter is not None:
                self._record(owner)  # raises OwnerBusyError
            if cell is None:
                pool = self._cell_pool
                cell = self._resources[resource] = pool.pop() if pool else Cell()
                cell.holders[owner] = [code, 1]
                cell.counts[code] = 1
                cell.present = BITS[code]
                record.resources[resource] = cell
                self._grants += 1
                return
            self._request(record, resource, cell, code, timeout, False)
        finally:
            mutex.release()

    def try_acquire(self, owner: Hashable, resource: Hashable, mode: LockMode) -> bool:
        """Lock ``resource`` if that is possible without waiting.

        Same rules as :meth:`acquire` (a request is granted only if it would be granted
        at once, so it never overtakes a waiter).

        Args:
            owner: the owner.
            resource: what to lock.
            mode: the mode to lock in.

        Returns:
            ``True`` if granted (the owner now holds it and must release it), ``False`` if
            it would have to wait; nothing changed then.

        Raises:
            OwnerBusyError: the owner already has a request waiting in another thread.
            LockTypeError: ``mode`` is not a ``LockMode``.
        """
        if type(mode) is not LockMode:
            raise mode_error(mode)
        code = mode._value_
        mutex = self._mutex
        mutex.acquire()
        try:
            cell = self._resources.get(resource)
            record = self._record(owner)
            if cell is None:
                pool = self._cell_pool
                cell = self._resources[resource] = pool.pop() if pool else Cell()
                cell.holders[owner] = [code, 1]
                cell.counts[code] = 1
                cell.present = BITS[code]
                record.resources[resource] = cell
                self._grants += 1
                return True
            return self._request(record, resource, cell, code, None, True)
        finally:
            mutex.release()

    def release(self, owner: Hashable, resource: Hashable) -> None:
        """Undo one grant of ``owner``'s lock on ``resource``.

        The lock is freed when every grant (every successful ``acquire``/``try_acquire``,
        re-entrant ones included) has been undone; its mode never goes down while held.
        Freeing it grants, in queue order, every waiter that can now proceed.

        Args:
            owner: the owner.
            resource: the resource.

        Raises:
            NotHeldError: ``owner`` holds no lock on ``resource``.
        """
        mutex = self._mutex
        mutex.acquire()
        try:
            cell = self._resources.get(resource)
            hold = None if cell is None else cell.holders.get(owner)
            if hold is None:
                raise NotHeldError(owner, resource)
            assert cell is not None
            self._releases += 1
            if hold[1] > 1:
                hold[1] -= 1
                return
            del cell.holders[owner]
            code = hold[0]
            count = cell.counts[code] - 1
            cell.counts[code] = count
            if not count:
                cell.present &= ~BITS[code]
            record = self._owners[owner]
            del record.resources[resource]
            if cell.queue:
                self._resource_pass(resource, cell)
            elif not cell.holders:
                self._drop_cell(resource, cell)
            if not (record.resources or record.keys or record.ranges or record.waiter):
                del self._owners[owner]
                if len(self._record_pool) < POOL_LIMIT:
                    self._record_pool.append(record)
        finally:
            mutex.release()

    def release_all(self, owner: Hashable) -> int:
        """Release every lock of ``owner`` (resources, keys and ranges), whatever the counts.

        The end of a transaction (commit or abort). If the owner has a request waiting in
        another thread, that request fails with :class:`~lock_db.LockCancelledError`
        first. The owner is then forgotten (if it comes back, it is "first seen" again).

        Args:
            owner: the owner; an owner the manager does not know is not an error.

        Returns:
            The number of locks released (each resource, key or range counts once).
        """
        with self._mutex:
            record = self._owners.get(owner)
            if record is None:
                return 0
            waiter = record.waiter
            if waiter is not None:
                self._cancelled += 1
                self._fail(
                    waiter,
                    LockCancelledError(owner, waiter.resource, MODES[waiter.requested]),
                )
                if self._owners.get(owner) is not record:
                    return 0  # it held nothing, so failing its wait forgot it
            released = len(record.resources) + len(record.keys) + len(record.ranges)
            for resource, cell in record.resources.items():
                drop_hold(cell, owner, entirely=True)
                if cell.queue:
                    self._resource_pass(resource, cell)
                elif not cell.holders:
                    self._drop_cell(resource, cell)
            record.resources.clear()
            self._release_space_locks(record)
            self._tidy_owner(record)
            self._releases += released
            return released

    # -- introspection -----------------------------------------------------------------

    def holders(self, resource: Hashable) -> dict[Hashable, LockMode]:
        """Who holds ``resource``, and in which mode (empty if nobody).

        Args:
            resource: the resource.

        Returns:
            A new dict ``owner -> mode``, in the order the owners were first granted it.
        """
        with self._mutex:
            cell = self._resources.get(resource)
            if cell is None:
                return {}
            return {owner: MODES[hold[0]] for owner, hold in cell.holders.items()}

    def waiters(self, resource: Hashable) -> list[tuple[Hashable, LockMode]]:
        """Who waits for ``resource``, in grant order (conversions first).

        Args:
            resource: the resource.

        Returns:
            A new list of ``(owner, mode)``, where ``mode`` is what the owner will hold once
            granted (for an upgrade, the supremum of its held and requested modes).
        """
        with self._mutex:
            cell = self._resources.get(resource)
            if cell is None:
                return []
            return [(waiter.owner, MODES[waiter.target]) for waiter in cell.queue]

    def space_holders(self, space: Hashable) -> list[SpaceLock]:
        """Every key and range lock held in ``space``, sorted by ``(lo, hi)``.

        Args:
            space: the space.

        Returns:
            A new list of :class:`~lock_db.SpaceLock`; a key lock on ``k`` appears as
            ``lo=k, hi=k + b"\\x00"``.
        """
        with self._mutex:
            found = self._spaces.get(space)
            if found is None:
                return []
            locks = [
                SpaceLock(owner, key, key + b"\x00", MODES[hold[0]])
                for key, cell in found.points.items()
                for owner, hold in cell.holders.items()
            ]
            locks.extend(
                SpaceLock(owner, lo, hi, MODES[hold[0]])
                for (lo, hi), cell in found.ranges.items()
                for owner, hold in cell.holders.items()
            )
        locks.sort(key=_range_order)
        return locks

    def space_waiters(self, space: Hashable) -> list[SpaceLock]:
        """Every waiting key and range request in ``space``, in grant order.

        Args:
            space: the space.

        Returns:
            A new list of :class:`~lock_db.SpaceLock` whose ``mode`` is what each owner
            will hold once granted.
        """
        with self._mutex:
            found = self._spaces.get(space)
            if found is None:
                return []
            return [
                SpaceLock(waiter.owner, waiter.lo, waiter.hi, MODES[waiter.target])
                for waiter in found.waiters_in_order()
            ]

    def wait_for_graph(self) -> dict[Hashable, frozenset[Hashable]]:
        """The wait-for graph now: each waiting owner and the owners it waits for.

        Returns:
            A new dict ``waiting owner -> owners blocking it`` (holders of conflicting locks
            and owners queued ahead of it on overlapping locks). It has no cycles: a cycle
            is broken the moment it forms.
        """
        with self._mutex:
            return {
                owner: frozenset(self._blockers(record.waiter))
                for owner, record in self._owners.items()
                if record.waiter is not None
            }

    def stats(self) -> dict[str, int]:
        """Counters since creation and gauges of the current state.

        Returns:
            A new dict with the counters ``grants`` (requests granted, re-entrant ones
            included), ``upgrades`` (grants that raised a held mode), ``waits`` (requests
            that had to wait), ``timeouts``, ``deadlocks`` (victims chosen),
            ``cancelled`` (waits cancelled by ``release_all``), ``try_failures``
            (``try_acquire*`` calls that returned False) and ``releases`` (grants undone),
            and the gauges ``owners``, ``resources``, ``spaces`` and ``waiting`` (requests
            waiting now).
        """
        with self._mutex:
            return {
                "grants": self._grants,
                "upgrades": self._upgrades,
                "waits": self._waits,
                "timeouts": self._timeouts,
                "deadlocks": self._deadlocks,
                "cancelled": self._cancelled,
                "try_failures": self._try_failures,
                "releases": self._releases,
                "owners": len(self._owners),
                "resources": len(self._resources),
                "spaces": len(self._spaces),
                "waiting": sum(1 for r in self._owners.values() if r.waiter is not None),
            }

    def __repr__(self) -> str:
        stats = self.stats()
        return (
            f"<LockManager owners={stats['owners']} resources={stats['resources']} "
            f"spaces={stats['spaces']} waiting={stats['waiting']}>"
        )


def _range_order(lock: SpaceLock) -> tuple[bytes, bool, bytes]:
    return lock.lo, lock.hi is None, lock.hi or b""
