"""persist_db: snapshots and snapshot-plus-log persistence for the Strata family.

Distribution ``persist-db``. Skeleton: nothing is implemented yet; see Phase 3 of
ROADMAP.md at the repository root. This package will own:

- the snapshot file: a checksummed header, then a payload that may be compressed (zstd, or
  lz4 with the ``lz4`` extra)
- atomic save (temporary file, fsync, rename, directory fsync) and fully validated load
- streaming save and load for payloads larger than memory
- the ``Persistable`` protocol and ``Persisted[T]``: the newest valid snapshot plus an
  operation log on wal-db, with fallback to an older snapshot

Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._version import __version__

__all__ = ["__version__"]
