"""Vector indexes: FlatIndex (exact) and HNSWIndex (approximate), on numpy."""

from ._flat import FlatIndex
from ._hnsw import HNSWIndex

__all__ = ["FlatIndex", "HNSWIndex"]
