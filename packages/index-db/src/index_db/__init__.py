"""index_db: the indexes of the Strata family.

Distribution ``index-db``. Skeleton: nothing is implemented yet; see Phase 3 of
ROADMAP.md at the repository root. This package will own:

- a B+tree of bytes keys to bytes values on page-db pages, with overflow pages, range and
  prefix scans, bulk load and ``verify()``
- a hash index on page-db pages for exact-match lookups
- vector indexes (``FlatIndex``, ``HNSWIndex``) on numpy, saved and loaded through
  persist-db

Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._version import __version__
from .btree import BTree
from .errors import (
    CorruptIndexError,
    DimensionMismatchError,
    IndexDbError,
    IndexUsageError,
    IteratorInvalidatedError,
    KeyTooLargeError,
    ValueTooLargeError,
)
from .hash import HashIndex, HashVerifyReport
from .vector import FlatIndex, HNSWIndex

__all__ = [
    "__version__",
    "BTree",
    "HashIndex",
    "HashVerifyReport",
    "FlatIndex",
    "HNSWIndex",
    "CorruptIndexError",
    "DimensionMismatchError",
    "IndexDbError",
    "IndexUsageError",
    "IteratorInvalidatedError",
    "KeyTooLargeError",
    "ValueTooLargeError",
]
