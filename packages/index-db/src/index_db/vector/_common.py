"""Metrics, input validation and the id map shared by FlatIndex and HNSWIndex.

Theory of operation
-------------------
Every vector is stored as one row of a contiguous float32 matrix. Internally both indexes
rank by a *distance* where lower is closer, because that is what the HNSW algorithm is
written in; the public API reports a *score* where higher is closer:

============  ==========================  =======================================
metric        internal distance           public score
============  ==========================  =======================================
cosine        ``-dot(u, v)`` (unit rows)  cosine similarity, in [-1, 1]
euclidean     ``||u - v||**2``            ``-||u - v||`` (negative L2 distance)
dot           ``-dot(u, v)``              dot product
============  ==========================  =======================================

Under ``cosine`` rows are normalised to unit length on insertion (the stored vector is
the unit vector) and queries are normalised before search; a zero vector has no direction,
so it is rejected with :class:`~index_db.errors.IndexUsageError`, as is any NaN or infinite
component under every metric.

Ids are Python ``int`` (fitting in a signed 64-bit integer; ``bool`` is refused) or
``str`` (at most :data:`MAX_ID_BYTES` bytes of UTF-8). ``1`` and ``"1"`` are different ids.
The :class:`IdMap` maps each id to a *slot* (a row of the matrix) and back; freed slots are
reused by later insertions, so removed space is not leaked.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from ..errors import DimensionMismatchError, IndexUsageError

VectorId = Union[int, str]  # noqa: UP007 - a runtime alias usable on Python 3.10
F32Array = npt.NDArray[np.float32]
I32Array = npt.NDArray[np.int32]
I8Array = npt.NDArray[np.int8]

METRICS: dict[str, int] = {"cosine": 0, "euclidean": 1, "l2": 1, "dot": 2}
METRIC_NAMES: tuple[str, str, str] = ("cosine", "euclidean", "dot")
MAX_ID_BYTES = 65_535
MAX_DIM = 65_536
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def parse_metric(metric: str) -> int:
    """The metric code for a metric name (``"l2"`` is an alias of ``"euclidean"``).

    Raises:
        IndexUsageError: the name is not one of ``cosine``, ``euclidean``, ``l2``, ``dot``.
    """
    code = METRICS.get(metric) if isinstance(metric, str) else None
    if code is None:
        raise IndexUsageError(
            f"unknown metric {metric!r}: use 'cosine', 'euclidean' (alias 'l2') or 'dot'"
        )
    return code


def check_dim(dim: int) -> int:
    """Validate a vector dimension given to a constructor."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int, not {type(dim).__name__}")
    if not 1 <= int(dim) <= MAX_DIM:
        raise IndexUsageError(f"dim must be between 1 and {MAX_DIM}, got {dim}")
    return int(dim)


def check_id(vector_id: object) -> VectorId:
    """Validate one id and return it in canonical form (numpy integers become ``int``).

    Raises:
        TypeError: the id is neither an ``int`` nor a ``str`` (``bool`` is refused).
        IndexUsageError: an int outside the signed 64-bit range, or a str longer than
            :data:`MAX_ID_BYTES` bytes of UTF-8 (or not encodable as UTF-8).
    """
    if isinstance(vector_id, str):
        try:
            size = len(vector_id.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise IndexUsageError(f"str id is not valid UTF-8: {exc}") from None
        if size > MAX_ID_BYTES:
            raise IndexUsageError(f"str id is {size} bytes of UTF-8; the limit is {MAX_ID_BYTES}")
        return vector_id
    if isinstance(vector_id, bool) or not isinstance(vector_id, (int, np.integer)):
        raise TypeError(f"vector ids are int or str, not {type(vector_id).__name__}")
    value = int(vector_id)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise IndexUsageError(f"int id {value} does not fit in a signed 64-bit integer")
    return value


def as_matrix(vectors: object, dim: int, *, what: str = "vectors") -> F32Array:
    """Convert ``vectors`` to a C-contiguous float32 matrix of shape (n, dim), checked.

    Accepts a 2-D array-like of real numbers (integers or floats of any width).

    Raises:
        TypeError: the dtype is not a real number type (bool, complex, str, object).
        DimensionMismatchError: the shape is not (n, dim).
        IndexUsageError: a component is NaN or infinite, or overflows float32.
    """
    array = np.asarray(vectors)
    _check_dtype(array, what)
    if array.ndim != 2 or array.shape[1] != dim:
        raise DimensionMismatchError(
            f"{what} must have shape (n, {dim}), got shape {tuple(array.shape)}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    if matrix.size and not np.isfinite(matrix).all():
        bad = int(np.nonzero(~np.isfinite(matrix).all(axis=1))[0][0])
        raise IndexUsageError(f"{what}[{bad}] has a NaN or infinite component (or overflows)")
    return matrix


def as_vector(vector: object, dim: int, *, what: str = "vector") -> F32Array:
    """Convert one vector to a float32 array of shape (dim,), checked like :func:`as_matrix`."""
    array = np.asarray(vector)
    _check_dtype(array, what)
    if array.ndim != 1 or array.shape[0] != dim:
        raise DimensionMismatchError(
            f"{what} must have shape ({dim},), got shape {tuple(array.shape)}"
        )
    row: F32Array = as_matrix(array.reshape(1, dim), dim, what=what)[0]
    return row


def _check_dtype(array: npt.NDArray[Any], what: str) -> None:
    kind = array.dtype.kind
    if kind not in "iuf":
        raise TypeError(
            f"{what} must hold real numbers (int or float dtype), got dtype {array.dtype}"
        )


def normalise_rows(matrix: F32Array, *, what: str = "vectors") -> F32Array:
    """Scale every row to unit length in place (cosine metric); zero rows are refused."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    if matrix.shape[0] and not (norms > 0).all():
        bad = int(np.nonzero(~(norms > 0))[0][0])
        raise IndexUsageError(f"{what}[{bad}] is a zero vector, which has no cosine direction")
    matrix /= norms[:, None].astype(np.float32)
    return matrix


def distances_to_scores(metric_code: int, distances: npt.NDArray[Any]) -> list[float]:
    """Convert internal distances (lower is closer) to public scores (higher is closer)."""
    if metric_code == 1:
        return [-float(x) for x in np.sqrt(np.maximum(distances, 0.0))]
    return [-float(x) for x in distances]


def check_k(k: int) -> int:
    """Validate the ``k`` of a search."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, not {type(k).__name__}")
    if k < 0:
        raise IndexUsageError(f"k must be >= 0, got {k}")
    return int(k)


class IdMap:
    """Bidirectional map between vector ids and matrix slots, with slot reuse.

    Slots are handed out in increasing order; a freed slot goes on a free list and is the
    next one reused, so the matrix never holds more rows than the peak live count.
    """

    __slots__ = ("_free", "_live", "_slot_of", "ids")

    def __init__(self) -> None:
        self._slot_of: dict[VectorId, int] = {}
        self.ids: list[VectorId | None] = []  # slot -> id, None for a free slot
        self._free: list[int] = []
        self._live: npt.NDArray[np.int64] | None = None  # cache of live_slots()

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, vector_id: Hashable) -> bool:
        return vector_id in self._slot_of

    def __iter__(self) -> Iterator[VectorId]:
        return (i for i in self.ids if i is not None)

    @property
    def capacity_used(self) -> int:
        """Number of slots ever handed out (live plus free)."""
        return len(self.ids)

    def get(self, vector_id: VectorId) -> int | None:
        """The slot of ``vector_id``, or None."""
        return self._slot_of.get(vector_id)

    def slot(self, vector_id: VectorId) -> int:
        """The slot of ``vector_id``. Raises KeyError if absent."""
        try:
            return self._slot_of[vector_id]
        except KeyError:
            raise KeyError(vector_id) from None

    @property
    def free_slots(self) -> list[int]:
        """The slots handed out and since freed (waiting for reuse)."""
        return self._free

    def add(self, vector_id: VectorId) -> int:
        """Give ``vector_id`` (which must be absent) a slot and return it."""
        self._live = None
        if self._free:
            slot = self._free.pop()
            self.ids[slot] = vector_id
        else:
            slot = len(self.ids)
            self.ids.append(vector_id)
        self._slot_of[vector_id] = slot
        return slot

    def remove(self, vector_id: VectorId) -> int:
        """Free the slot of ``vector_id`` and return it. Raises KeyError if absent."""
        slot = self._slot_of.pop(vector_id)
        self._live = None
        self.ids[slot] = None
        self._free.append(slot)
        return slot

    def live_slots(self) -> npt.NDArray[np.int64]:
        """The occupied slots in increasing order (cached until the next change)."""
        if self._live is None:
            if self._free:
                live = np.ones(len(self.ids), dtype=bool)
                live[self._free] = False
                self._live = np.nonzero(live)[0].astype(np.int64)
            else:
                self._live = np.arange(len(self.ids), dtype=np.int64)
        return self._live

    def next_slots(self, count: int) -> list[int]:
        """The slots the next ``count`` calls of :meth:`add` will return, in order."""
        reused = self._free[::-1][:count]
        fresh = range(len(self.ids), len(self.ids) + count - len(reused))
        return [*reused, *fresh]

    @classmethod
    def from_ids(cls, ids: Sequence[VectorId]) -> IdMap:
        """A map with ``ids[i]`` in slot ``i``. Raises ValueError on a duplicate id."""
        idmap = cls()
        idmap.ids = list(ids)
        idmap._slot_of = {vector_id: slot for slot, vector_id in enumerate(ids)}
        if len(idmap._slot_of) != len(ids):
            raise ValueError("duplicate id")
        return idmap
