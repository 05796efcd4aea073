"""Errors raised by lock-db.

Two families, as in h11. The first says *the lock was not granted*: a timeout
(:class:`LockTimeoutError`), a deadlock victim (:class:`DeadlockError`), or a wait
cancelled because the owner's locks were released from another thread
(:class:`LockCancelledError`). The caller is expected to handle these, usually by
aborting the transaction with ``release_all(owner)`` and retrying it.

The second, :class:`LockUsageError` (also a ``ValueError``), says *you called me wrong*:
a mode that is not a :class:`~lock_db.LockMode`, keys that are not bytes, an empty or
inverted range, a negative timeout, releasing a lock that is not held, or a second request
from an owner that is already waiting. Retrying will not help; the code must change.

Everything lock-db raises on purpose derives from :class:`LockError`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._modes import LockMode

__all__ = [
    "LockError",
    "LockTimeoutError",
    "DeadlockError",
    "LockCancelledError",
    "LockUsageError",
    "LockTypeError",
    "InvalidRangeError",
    "NotHeldError",
    "OwnerBusyError",
]


class LockError(Exception):
    """Root of every error lock-db raises on purpose."""


class LockTimeoutError(LockError):
    """The lock was not granted within the timeout; nothing changed.

    A conversion (upgrade) that times out leaves the lock held in its previous mode.

    Attributes:
        owner: the owner that asked.
        resource: the resource, or a :class:`~lock_db.KeyRange` for key and range locks.
        mode: the mode asked for.
        timeout: the timeout in seconds that expired (``0`` for a request that could not
            be granted at once).
    """

    def __init__(self, owner: Hashable, resource: Hashable, mode: LockMode, timeout: float):
        self.owner = owner
        self.resource = resource
        self.mode = mode
        self.timeout = timeout
        super().__init__(
            f"owner {owner!r} was not granted {mode.name} on {resource!r} within {timeout}s"
        )


class DeadlockError(LockError):
    """The owner was chosen as the victim of a deadlock; its wait was cancelled.

    Its other locks are still held: abort the transaction (``release_all(owner)``) so the
    other owners of the cycle can proceed. A conversion leaves the lock in its previous mode.

    Attributes:
        owner: the victim.
        resource: what the victim was waiting for (a :class:`~lock_db.KeyRange` for key
            and range locks).
        mode: the mode the victim asked for.
        cycle: the owners of the cycle in wait-for order, the victim first: each waits
            for the next, and the last waits for the victim.
    """

    def __init__(
        self, owner: Hashable, resource: Hashable, mode: LockMode, cycle: Sequence[Hashable]
    ):
        self.owner = owner
        self.resource = resource
        self.mode = mode
        self.cycle = tuple(cycle)
        path = " -> ".join(repr(member) for member in (*self.cycle, self.cycle[0]))
        super().__init__(
            f"deadlock: owner {owner!r} chosen as victim while waiting for {mode.name} on "
            f"{resource!r}; wait-for cycle {path}"
        )


class LockCancelledError(LockError):
    """The owner's wait was cancelled by ``release_all(owner)`` from another thread.

    Attributes:
        owner: the owner whose wait was cancelled.
        resource: what it was waiting for.
        mode: the mode it asked for.
    """

    def __init__(self, owner: Hashable, resource: Hashable, mode: LockMode):
        self.owner = owner
        self.resource = resource
        self.mode = mode
        super().__init__(
            f"owner {owner!r}'s wait for {mode.name} on {resource!r} was cancelled by release_all"
        )


class LockUsageError(LockError, ValueError):
    """The caller asked for something impossible (a usage error; retrying cannot help)."""


class LockTypeError(LockUsageError, TypeError):
    """An argument has the wrong type: a mode that is not a ``LockMode``, a key that is
    not ``bytes``, a timeout that is not a number."""


class InvalidRangeError(LockUsageError):
    """A key range is empty or inverted (``lo >= hi``)."""


class NotHeldError(LockUsageError):
    """``release`` of a lock the owner does not hold.

    Attributes:
        owner: the owner named in the call.
        resource: the resource, or a :class:`~lock_db.KeyRange`.
    """

    def __init__(self, owner: Hashable, resource: Hashable):
        self.owner = owner
        self.resource = resource
        super().__init__(f"owner {owner!r} does not hold a lock on {resource!r}")


class OwnerBusyError(LockUsageError):
    """The owner already has a request waiting (in another thread).

    An owner is one logical transaction and makes one request at a time; a second request
    while the first waits could deadlock the owner with itself in ways no wait-for graph
    between owners can see.

    Attributes:
        owner: the owner.
        waiting_for: the resource its pending request waits for.
    """

    def __init__(self, owner: Hashable, waiting_for: Hashable):
        self.owner = owner
        self.waiting_for = waiting_for
        super().__init__(
            f"owner {owner!r} is already waiting for {waiting_for!r} in another thread; "
            f"an owner makes one request at a time"
        )
