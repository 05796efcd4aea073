"""The B+tree of index-db: ordered bytes keys to bytes values on page-db pages.

See ``docs/API.md`` for the surface and ``docs/FORMAT.md`` for the
page formats.
"""

from __future__ import annotations

from ._layout import MAX_VALUE_SIZE, META_SIZE
from ._tree import BTree

__all__ = ["BTree", "MAX_VALUE_SIZE", "META_SIZE"]
