"""wal_db: the write-ahead log of the Strata family.

Distribution ``wal-db``. Skeleton: nothing is implemented yet; see Phase 2 of
ROADMAP.md at the repository root. This package will own:

- segment files with a checksummed header (magic, format version, segment number, log id)
- record framing ``[length][CRC32C][payload]`` and a configurable maximum record size
- LSNs: monotonically increasing, never 0, stable across reopen
- sync policies ``always`` (group commit), ``interval`` and ``never``; ``durable_lsn``
- replay from an LSN; detection and truncation of a torn tail on open
- crash-safe ``truncate_before(lsn)``, fsync poisoning, an advisory writer lock

Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._version import __version__

__all__ = ["__version__"]
