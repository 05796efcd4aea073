"""lock_db: the lock manager of the Strata family.

Distribution ``lock-db``. Skeleton: nothing is implemented yet; see Phase 2 of
ROADMAP.md at the repository root. This package will own:

- multi-granularity lock modes IS, IX, S, SIX, X and their compatibility matrix
- re-entrant locking and upgrades; FIFO queues per resource without writer starvation
- blocking ``acquire`` with timeouts, ``try_acquire``, ``release``, ``release_all``
- key-range locks over ordered byte keys within a named space
- deadlock detection on one wait-for graph with a pluggable victim policy
- introspection: holders, waiters, the wait-for graph, counters

Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._version import __version__

__all__ = ["__version__"]
