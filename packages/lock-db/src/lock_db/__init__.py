"""lock_db: the lock manager of the Strata family.

A pessimistic transaction layer's lock manager, usable on its own: multi-granularity modes
(IS, IX, S, SIX, X), re-entrant locks with upgrades, strict FIFO queues that never starve
a writer, blocking acquires with timeouts, key and range locks over ordered byte keys for
phantom protection, and eager deadlock detection on one wait-for graph with a pluggable
victim policy. Thread-safe; standard library only.

    from lock_db import LockManager, LockMode

    locks = LockManager(default_timeout=5.0)
    locks.acquire("tx1", "table:users", LockMode.IX)
    locks.acquire_key("tx1", "users", b"alice", LockMode.X)
    locks.release_all("tx1")

The public API is the names in ``__all__``, documented in ``docs/API.md`` and frozen for
1.x; modules whose names start with ``_`` are private.
"""

from ._deadlock import VictimPolicy, oldest, youngest
from ._manager import LockManager
from ._modes import LockMode
from ._records import KeyRange, SpaceLock
from ._version import __version__
from .errors import (
    DeadlockError,
    InvalidRangeError,
    LockCancelledError,
    LockError,
    LockTimeoutError,
    LockTypeError,
    LockUsageError,
    NotHeldError,
    OwnerBusyError,
)

__all__ = [
    "LockManager",
    "LockMode",
    "KeyRange",
    "SpaceLock",
    "VictimPolicy",
    "youngest",
    "oldest",
    "LockError",
    "LockTimeoutError",
    "DeadlockError",
    "LockCancelledError",
    "LockUsageError",
    "LockTypeError",
    "InvalidRangeError",
    "NotHeldError",
    "OwnerBusyError",
    "__version__",
]
