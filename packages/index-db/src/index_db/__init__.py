"""index_db: the indexes of the Strata family.

Distribution ``index-db``. Three families of indexes, each in its own subpackage:

- ``btree`` -- :class:`BTree`, an ordered map of bytes keys to bytes values on page-db
  pages, with overflow pages, range and prefix scans, bulk load and ``verify()``
- ``hash`` -- :class:`HashIndex`, extendible hashing on page-db pages for exact matches
- ``vector`` -- :class:`FlatIndex` and :class:`HNSWIndex` on numpy, saved and loaded
  through persist-db

The surface is frozen for 1.x (docs/API.md); the bytes are in docs/FORMAT.md.

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
