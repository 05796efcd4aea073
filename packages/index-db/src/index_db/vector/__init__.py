"""Vector indexes on numpy: :class:`FlatIndex` (exact) and :class:`HNSWIndex` (approximate).

Both map int or str ids to float32 vectors under a metric (``"cosine"``, ``"euclidean"``
alias ``"l2"``, ``"dot"``) and answer ``search(query, k, *, filter=None, ef=None)`` with
``(id, score)`` pairs, best first, where a higher score is closer. Both implement
``persist_db.Persistable`` and save/load through persist-db. Modules:

- ``_common``: metrics, input checks, the id-to-slot map;
- ``_base``: the float32 matrix and the surface both indexes share;
- ``_flat``: FlatIndex;
- ``_graph``: HNSW layers, beam search, insertion, removal with reconnection;
- ``_batch``: the lock-step batch builder behind ``HNSWIndex.add_batch``;
- ``_hnsw``: HNSWIndex and filtered search;
- ``_layout``, ``_snapshot``, ``_persist``: payload and operation bytes, persist-db glue.
"""

from ._flat import FlatIndex
from ._hnsw import HNSWIndex

__all__ = ["FlatIndex", "HNSWIndex"]
