"""The storage and public surface shared by FlatIndex and HNSWIndex.

Theory of operation
-------------------
:class:`VectorStore` keeps the vectors in one preallocated, C-contiguous float32 matrix
that grows by doubling, so adding a vector is a row copy and a distance evaluation is a
fancy-index gather plus a matrix product. Under ``euclidean`` it also keeps each row's
squared norm, so that ``||q - v||**2 = ||v||**2 - 2 q.v + ||q||**2`` costs one product.
For HNSW searches it also keeps, once the first search asks for it, an int8 copy of the
matrix (``codes``: each row divided by its own ``code_step`` and rounded; see
:meth:`VectorStore.traversal_codes`), which every write keeps up to date.

:class:`VectorIndexBase` holds what both indexes expose the same way: ``len``, ``in``,
:meth:`~VectorIndexBase.get`, :meth:`~VectorIndexBase.ids`, input checking, the
resolution of a search ``filter`` and the exact (brute-force) search over a set of slots
that FlatIndex uses for everything and HNSWIndex uses as its fallback for selective
filters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from ..errors import IndexUsageError
from ._common import (
    METRIC_NAMES,
    F32Array,
    I8Array,
    IdMap,
    VectorId,
    as_matrix,
    as_vector,
    check_dim,
    check_id,
    check_k,
    distances_to_scores,
    normalise_rows,
    parse_metric,
)

SearchFilter = Union[Callable[[VectorId], bool], Collection[VectorId], None]  # noqa: UP007
SlotArray = npt.NDArray[np.int64]
_QUANTIZE_ROWS = 4096


class VectorStore:
    """A growable float32 matrix of vectors plus, for euclidean, their squared norms, and
    (once asked for) their int8 traversal codes."""

    __slots__ = ("code_step", "codes", "dim", "metric", "sqnorm", "vectors")

    def __init__(self, dim: int, metric: int, capacity: int = 64) -> None:
        self.dim = dim
        self.metric = metric
        self.vectors: F32Array = np.zeros((capacity, dim), dtype=np.float32)
        self.sqnorm: F32Array = np.zeros(capacity, dtype=np.float32)
        self.codes: I8Array | None = None
        self.code_step: F32Array | None = None

    def reserve(self, rows: int) -> None:
        """Make room for at least ``rows`` rows (doubling, so amortised O(1) per row)."""
        capacity = self.vectors.shape[0]
        if rows <= capacity:
            return
        new_capacity = max(rows, capacity * 2)
        grown = np.zeros((new_capacity, self.dim), dtype=np.float32)
        grown[:capacity] = self.vectors
        self.vectors = grown
        norms = np.zeros(new_capacity, dtype=np.float32)
        norms[:capacity] = self.sqnorm
        self.sqnorm = norms
        if self.codes is not None and self.code_step is not None:
            codes = np.zeros((new_capacity, self.dim), dtype=np.int8)
            codes[:capacity] = self.codes
            step = np.zeros(new_capacity, dtype=np.float32)
            step[:capacity] = self.code_step
            self.codes, self.code_step = codes, step

    def write(self, slots: npt.ArrayLike, rows: F32Array) -> None:
        """Store prepared ``rows`` (already normalised for cosine) at ``slots``."""
        slot_array = np.asarray(slots, dtype=np.int64)
        if slot_array.size:
            self.reserve(int(slot_array.max()) + 1)
        self.vectors[slot_array] = rows
        if self.metric == 1:
            self.sqnorm[slot_array] = np.einsum("ij,ij->i", rows, rows)
        if self.codes is not None and self.code_step is not None:
            self.codes[slot_array], self.code_step[slot_array] = _quantize(rows)

    def clear(self, slot: int) -> None:
        """Zero the row of a freed ``slot`` (and its norm and code)."""
        self.vectors[slot] = 0.0
        self.sqnorm[slot] = 0.0
        if self.codes is not None and self.code_step is not None:
            self.codes[slot] = 0
            self.code_step[slot] = 0.0

    def traversal_codes(self) -> tuple[I8Array, F32Array]:
        """The int8 copy of the vectors an HNSW search traverses with, and each row's step:
        ``vectors[i] ~ codes[i] * step[i]``, so ``(codes @ q) * step ~ vectors @ q``.

        Each row has its own step (its largest component maps to 127), so every row keeps
        8 bits of resolution whatever the spread of norms. Built on the first call (in
        blocks of rows, about 0.05 s at 100,000 x 128) and kept up to date by
        :meth:`write`, :meth:`clear` and :meth:`reserve` afterwards.
        """
        if self.codes is None or self.code_step is None:
            rows = self.vectors.shape[0]
            codes: I8Array = np.empty((rows, self.dim), dtype=np.int8)
            step: F32Array = np.empty(rows, dtype=np.float32)
            for start in range(0, rows, _QUANTIZE_ROWS):  # blocks that stay in cache
                block = slice(start, start + _QUANTIZE_ROWS)
                codes[block], step[block] = _quantize(self.vectors[block])
            self.codes, self.code_step = codes, step
        return self.codes, self.code_step

    def distances(self, query: F32Array, slots: npt.NDArray[Any] | slice) -> F32Array:
        """Internal distances (lower is closer) from one prepared query to ``slots``."""
        dots = self.vectors[slots] @ query
        if self.metric == 1:
            result: F32Array = self.sqnorm[slots] - 2.0 * dots + np.float32(query @ query)
            return result
        negated: F32Array = -dots
        return negated

    def prepare(self, vectors: object, *, what: str = "vectors") -> F32Array:
        """Check and convert a batch of vectors; normalise them under cosine."""
        matrix = as_matrix(vectors, self.dim, what=what)
        if self.metric == 0:
            matrix = normalise_rows(matrix.copy(), what=what)  # never scale the caller's array
        return matrix

    def prepare_one(self, vector: object, *, what: str = "vector") -> F32Array:
        """Check and convert one vector (or query); normalise it under cosine."""
        row = as_vector(vector, self.dim, what=what)
        prepared: F32Array = self.prepare(row.reshape(1, self.dim), what=what)[0]
        return prepared


def _quantize(rows: F32Array) -> tuple[I8Array, F32Array]:
    """Per-row int8 codes of ``rows`` and each row's step (largest component / 127; 0 for a
    zero row)."""
    peak = np.abs(rows).max(axis=1) if rows.shape[0] else np.zeros(0, np.float32)
    step = (peak / np.float32(127.0)).astype(np.float32)
    inverse = np.divide(np.float32(1.0), step, out=np.zeros_like(step), where=step > 0)
    scaled = rows * inverse[:, None]
    np.rint(scaled, out=scaled)
    np.clip(scaled, -127, 127, out=scaled)  # float rounding can pass 127 by an ulp
    return scaled.astype(np.int8), step


class VectorIndexBase:
    """Common surface of the vector indexes. Not instantiated directly."""

    def __init__(self, dim: int, metric: str) -> None:
        self._dim = check_dim(dim)
        self._metric = parse_metric(metric)
        self._store = VectorStore(self._dim, self._metric)
        self._idmap = IdMap()

    def add(self, vector_id: VectorId, vector: object) -> None:
        """Add a vector under a new id (HNSW: and link it into the graph).

        Args:
            vector_id: an int (signed 64-bit) or a str (at most 65,535 bytes of UTF-8).
            vector: an array-like of ``dim`` real numbers.

        Raises:
            IndexUsageError: the id is already present (use :meth:`upsert` to replace), or
                the vector has a NaN/infinite component, or is zero under cosine.
            DimensionMismatchError: the vector does not have shape ``(dim,)``.
            TypeError: the id is not int/str, or the vector's dtype is not a real number.
        """
        self.add_batch([vector_id], [self._store.prepare_one(vector)])

    def upsert(self, vector_id: VectorId, vector: object) -> None:
        """Add a vector, replacing (remove, then insert) any vector under ``vector_id``.

        Raises:
            Same as :meth:`add`, except that an existing id is not an error.
        """
        self.add_batch([vector_id], [self._store.prepare_one(vector)], upsert=True)

    def add_batch(self, ids: Iterable[VectorId], vectors: object, *, upsert: bool = False) -> None:
        """Add many vectors at once, all or nothing (each index defines it)."""
        raise TypeError(f"{type(self).__name__} does not define add_batch")

    @property
    def dim(self) -> int:
        """The dimension every vector and query must have."""
        return self._dim

    @property
    def metric(self) -> str:
        """The metric's canonical name: ``"cosine"``, ``"euclidean"`` or ``"dot"``."""
        return METRIC_NAMES[self._metric]

    def __len__(self) -> int:
        return len(self._idmap)

    def __contains__(self, vector_id: object) -> bool:
        if isinstance(vector_id, bool) or not isinstance(vector_id, (int, str, np.integer)):
            return False
        return check_id(vector_id) in self._idmap

    def ids(self) -> Iterator[VectorId]:
        """Iterate over the ids in the index (in slot order, which is not insertion order)."""
        return iter(self._idmap)

    def get(self, vector_id: VectorId) -> F32Array:
        """A copy of the stored vector of ``vector_id``.

        Under ``cosine`` this is the unit vector that was stored, not the original input.

        Raises:
            KeyError: no vector has this id.
            TypeError: the id is neither int nor str.
        """
        slot = self._idmap.slot(check_id(vector_id))
        vector: F32Array = self._store.vectors[slot].copy()
        return vector

    def _replace_storage(
        self, dim: int, metric: int, ids: list[VectorId], vectors: F32Array
    ) -> None:
        """Replace the whole state with ``ids[i]`` stored in slot ``i`` (a snapshot load)."""
        self._dim, self._metric = dim, metric
        self._store = VectorStore(dim, metric, max(64, len(ids)))
        self._store.write(np.arange(len(ids)), vectors)
        self._idmap = IdMap.from_ids(ids)

    def _prepare_batch(
        self, ids: Collection[VectorId], vectors: object
    ) -> tuple[list[VectorId], F32Array]:
        id_list = [check_id(i) for i in ids]
        matrix = self._store.prepare(vectors)
        if len(id_list) != matrix.shape[0]:
            raise IndexUsageError(f"{len(id_list)} ids for {matrix.shape[0]} vectors")
        if len(set(id_list)) != len(id_list):
            raise IndexUsageError("the ids of one batch must be distinct")
        return id_list, matrix

    def _allowed_slots(self, search_filter: SearchFilter) -> SlotArray | None:
        """Slots passing ``search_filter``; None when there is no filter.

        A callable is called once per live id; a collection is intersected with the index.
        """
        if search_filter is None:
            return None
        idmap = self._idmap
        if callable(search_filter):
            live = idmap.live_slots()
            ids = idmap.ids
            keep = [slot for slot in live.tolist() if search_filter(ids[slot])]
            return np.asarray(keep, dtype=np.int64)
        if isinstance(search_filter, (str, bytes)) or not isinstance(search_filter, Collection):
            raise TypeError("filter must be a predicate, a collection of ids or None")
        slots = [idmap.get(i) for i in search_filter if _is_id(i)]
        return np.unique(np.asarray([s for s in slots if s is not None], dtype=np.int64))

    def _exact(self, query: F32Array, k: int, slots: SlotArray) -> list[tuple[VectorId, float]]:
        """Brute-force top ``k`` of ``slots`` for a prepared query, best first."""
        if k == 0 or slots.size == 0:
            return []
        distances = self._store.distances(query, slots)
        whole = k >= slots.size
        part = np.arange(slots.size) if whole else np.argpartition(distances, k - 1)[:k]
        order = part[np.lexsort((slots[part], distances[part]))]
        ids = self._idmap.ids
        scores = distances_to_scores(self._metric, distances[order])
        return [(ids[s], sc) for s, sc in zip(slots[order].tolist(), scores, strict=True)]

    def _exact_all(self, query: F32Array, k: int) -> list[tuple[VectorId, float]]:
        """Brute-force top ``k`` of the whole index: one product over a view of the matrix."""
        k = min(k, len(self))
        if k == 0:
            return []
        used = self._idmap.capacity_used
        distances = self._store.distances(query, slice(0, used))
        distances[self._idmap.free_slots] = np.inf
        whole = k >= used
        part = np.arange(used) if whole else np.argpartition(distances, k - 1)[:k]
        order = part[np.lexsort((part, distances[part]))]
        ids = self._idmap.ids
        scores = distances_to_scores(self._metric, distances[order])
        return [(ids[s], sc) for s, sc in zip(order.tolist(), scores, strict=True)]

    def _check_search(self, query: object, k: int) -> tuple[F32Array, int]:
        return self._store.prepare_one(query, what="query"), check_k(k)


def _is_id(value: object) -> bool:
    """Whether ``value`` can be an id (``True`` must not match id ``1`` in a filter)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)
