"""strata: the Strata engine.

Distribution ``strata-db``. Skeleton: nothing is implemented yet; see Phase 4 of
ROADMAP.md at the repository root. This package will own:

- ``strata.open`` and ``strata.open_memory``; durability modes ``cache``, ``standard``,
  ``always``
- MVCC transactions (snapshot, serializable; optimistic or pessimistic through lock-db)
- the KV primitive with time travel (``as_of``) and version history
- recovery (last page-db checkpoint + wal-db replay), retention and garbage collection
- online backup and restore, ``stats()`` and ``verify()``
- the only place where the packages of the family are wired together

Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._version import __version__

__all__ = ["__version__"]
