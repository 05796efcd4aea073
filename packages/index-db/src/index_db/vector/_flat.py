"""FlatIndex: exact similarity search by one matrix product per query.

Theory of operation
-------------------
The vectors live in the shared :class:`~index_db.vector._base.VectorStore` matrix; a search
multiplies the live rows (or only the rows a filter allows) by the query, takes the top
``k`` with ``argpartition`` and sorts those ``k``. Results are therefore exact: the
reference against which HNSWIndex's recall is measured. Ties in score are broken by slot,
which is an implementation detail, not a promise.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import IndexUsageError
from ._base import SearchFilter, VectorIndexBase
from ._common import F32Array, VectorId, check_id
from ._persist import PersistMixin
from ._snapshot import Decoded


class FlatIndex(PersistMixin, VectorIndexBase):
    """Exact (brute-force) vector index.

    Args:
        dim: the dimension of every vector, 1 to 65,536.
        metric: ``"cosine"``, ``"euclidean"`` (alias ``"l2"``) or ``"dot"``.

    Raises:
        IndexUsageError: unknown metric or a dimension out of range.
        TypeError: ``dim`` is not an int.
    """

    kind = "index-db.flat"
    format_version = 1

    def add_batch(self, ids: Iterable[VectorId], vectors: object, *, upsert: bool = False) -> None:
        """Add many vectors at once; all or nothing (everything is checked first).

        Args:
            ids: one distinct id per vector.
            vectors: an array-like of shape ``(n, dim)``.
            upsert: replace existing ids instead of refusing them.

        Raises:
            IndexUsageError: ids repeat within the batch, an id exists and ``upsert`` is
                false, the counts differ, or a vector is NaN/infinite/zero-under-cosine.
            DimensionMismatchError: ``vectors`` is not of shape ``(n, dim)``.
            TypeError: an id is not int/str or the dtype is not a real number.
        """
        id_list, matrix = self._prepare_batch(list(ids), vectors)
        idmap = self._idmap
        if not upsert:
            clash = next((i for i in id_list if i in idmap), None)
            if clash is not None:
                raise IndexUsageError(f"id {clash!r} is already in the index (use upsert)")
        slots = []
        for vector_id in id_list:
            existing = idmap.get(vector_id)
            slots.append(existing if existing is not None else idmap.add(vector_id))
        self._store.write(slots, matrix)

    def remove(self, vector_id: VectorId) -> bool:
        """Remove the vector stored under ``vector_id``; its slot is reused later.

        Returns:
            True if it was present, False if not.

        Raises:
            TypeError: the id is neither int nor str.
        """
        vector_id = check_id(vector_id)
        if vector_id not in self._idmap:
            return False
        slot = self._idmap.remove(vector_id)
        self._store.clear(slot)
        return True

    def search(
        self,
        query: object,
        k: int,
        *,
        filter: SearchFilter = None,
        ef: int | None = None,
    ) -> list[tuple[VectorId, float]]:
        """The ``k`` ids closest to ``query``, best first, with their scores.

        Args:
            query: an array-like of ``dim`` real numbers.
            k: how many results; fewer come back only if fewer vectors qualify.
            filter: None, a predicate called once per stored id, or a collection of allowed
                ids (ids not in the index are ignored).
            ef: accepted for signature compatibility with HNSWIndex and ignored.

        Returns:
            ``[(id, score), ...]`` sorted by score, highest (closest) first.

        Raises:
            DimensionMismatchError: the query does not have shape ``(dim,)``.
            IndexUsageError: ``k < 0``, or the query is NaN/infinite/zero-under-cosine.
            TypeError: bad dtype, non-int ``k``, or a filter of the wrong type.
        """
        del ef
        prepared, k = self._check_search(query, k)
        slots = self._allowed_slots(filter)
        if slots is None:
            return self._exact_all(prepared, k)
        return self._exact(prepared, k, slots)

    def _snapshot_parts(self) -> tuple[list[VectorId], F32Array, None]:
        live = self._idmap.live_slots()
        ids = [self._idmap.ids[s] for s in live.tolist()]
        return ids, self._store.vectors[live], None

    def _restore(self, decoded: Decoded) -> None:
        self._replace_storage(decoded.dim, decoded.metric, decoded.ids, decoded.vectors)
