"""Deadlock detection on the wait-for graph, eagerly, at the moment a request blocks.

Theory of operation
-------------------
The wait-for graph has an edge ``a -> b`` when owner ``a`` has a waiting request that the
blocking rule (see ``_records``) says ``b`` blocks. The graph is never stored: edges are
computed on demand from the current holders and queues, so it cannot go stale.

Every owner waits for at most one request at a time, so an owner with out-edges is exactly
an owner that is waiting, and a cycle can only be made of waiting owners. Edges appear in
only three ways:

1. an owner starts waiting: it gains out-edges, and waiters queued behind a conversion it
   places at the front of a queue gain edges into it;
2. an owner that is *not* waiting is granted a lock, and waiters now conflict with it;
3. nothing else: releases, timeouts and cancellations only remove holders and waiters,
   and a grant turns an edge "waits behind ``b``'s request" into at most "waits for
   ``b``'s hold" for the same ``b``.

Case 2 cannot close a cycle, since the new edges end at an owner without out-edges. So
every cycle is closed by case 1 and passes through the owner that just started waiting: a
depth-first search from that owner, looking for a path back to it, finds every new cycle
at the moment it forms. That is why there is no background detector: detection costs one
search per blocked request (none on the uncontended path), it is deterministic, and the
victim learns its fate within the blocking call of whoever closed the cycle, not after a
polling period.

When a search finds a cycle, the manager passes its owners, sorted from oldest to youngest
(by when the manager first saw each of them), to the victim policy and cancels the chosen
owner's wait with :class:`~lock_db.DeadlockError`. If the victim is not the owner that
just blocked, the search runs again, since the blocked owner may sit on more than one
cycle; it stops when no cycle is left or the blocked owner's request was granted or
cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence

from .errors import LockUsageError

__all__ = ["VictimPolicy", "choose_victim", "find_cycle", "oldest", "youngest"]

#: Chooses the victim of a deadlock: receives the owners of the cycle sorted from oldest
#: to youngest and returns one of them.
VictimPolicy = Callable[[Sequence[Hashable]], Hashable]


def youngest(owners: Sequence[Hashable]) -> Hashable:
    """The default victim policy: the youngest owner of the cycle (the last one).

    The youngest transaction has usually done the least work, so aborting it wastes the
    least.

    Args:
        owners: the cycle's owners, oldest first.

    Returns:
        ``owners[-1]``.
    """
    return owners[-1]


def oldest(owners: Sequence[Hashable]) -> Hashable:
    """A victim policy that aborts the oldest owner of the cycle (the first one).

    Args:
        owners: the cycle's owners, oldest first.

    Returns:
        ``owners[0]``.
    """
    return owners[0]


def find_cycle(
    start: Hashable,
    blockers_of: Callable[[Hashable], Iterable[Hashable] | None],
) -> list[Hashable] | None:
    """A wait-for cycle through ``start``, or ``None``.

    Args:
        start: the owner that just started waiting.
        blockers_of: an owner's out-edges, or ``None`` if it is not waiting.

    Returns:
        The cycle's owners in wait-for order beginning with ``start`` (each waits for the
        next, the last for ``start``), or ``None`` if ``start`` is on no cycle.
    """
    first = blockers_of(start)
    if first is None:
        return None
    path: list[Hashable] = [start]
    pending: list[Iterator[Hashable]] = [iter(first)]
    seen: set[Hashable] = {start}
    while pending:
        successor = next(pending[-1], _DONE)
        if successor is _DONE:
            pending.pop()
            path.pop()
            continue
        if successor == start:
            return list(path)
        if successor in seen:
            continue  # explored already: no path back to start through it
        seen.add(successor)
        edges = blockers_of(successor)
        if edges is not None:
            path.append(successor)
            pending.append(iter(edges))
    return None


_DONE = object()


def choose_victim(
    cycle: Sequence[Hashable], age_of: Callable[[Hashable], int], policy: VictimPolicy
) -> Hashable:
    """Ask ``policy`` for the victim of ``cycle`` and check the answer.

    Args:
        cycle: the cycle's owners in wait-for order.
        age_of: an owner's age (larger is younger).
        policy: the victim policy.

    Returns:
        The victim, one of the cycle's owners.

    Raises:
        LockUsageError: the policy returned an owner that is not on the cycle.
        Exception: whatever the policy raised.
    """
    by_age = tuple(sorted(cycle, key=age_of))
    victim = policy(by_age)
    for member in by_age:
        if member == victim:
            return member
    raise LockUsageError(
        f"victim_policy returned {victim!r}, which is not an owner of the cycle {by_age!r}"
    )
