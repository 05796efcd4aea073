"""Encode and decode the vector snapshot payload and vector operations (pure functions).

Theory of operation
-------------------
The payload (layout in ``_layout``) is a fixed header followed by flat little-endian arrays,
so encoding is a handful of ``tobytes`` calls and decoding is ``np.frombuffer`` plus
checks -- a 100,000-vector HNSW graph reloads as arrays, with no rebuild.

The decoder trusts nothing: it computes the exact payload length from the header fields
(in Python integers, so nothing overflows) and refuses any other length *before* it
allocates, so memory is bounded by the payload's own size. Then it checks every field that
could make the index misbehave: the id types and string lengths, UTF-8, unique ids,
finite vectors (unit length under cosine), levels within range, every neighbour an
existing node or ``-1`` padding at the end of its list, no self links, distances finite
exactly where there is a neighbour, and an entry point at the top level. Any failure is a
:class:`~index_db.errors.CorruptIndexError` naming what failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..errors import CorruptIndexError
from . import _layout as L
from ._common import MAX_DIM, MAX_ID_BYTES, F32Array, I32Array, VectorId

U8Array = npt.NDArray[np.uint8]


@dataclass
class GraphArrays:
    """The HNSW part of a payload, indexed by node number 0..count-1."""

    m: int
    ef_construction: int
    ef_search: int
    entry: int
    max_level: int
    seed: int
    levels: U8Array
    adj0: I32Array
    adj0_d: F32Array
    upper: list[tuple[npt.NDArray[np.int64], I32Array, F32Array]] = field(default_factory=list)


@dataclass
class Decoded:
    """A decoded payload."""

    index_type: int
    metric: int
    dim: int
    ids: list[VectorId]
    vectors: F32Array
    graph: GraphArrays | None


def encode(
    index_type: int,
    metric: int,
    ids: list[VectorId],
    vectors: F32Array,
    graph: GraphArrays | None,
) -> list[bytes]:
    """The payload as a list of chunks (their concatenation is the payload)."""
    count, dim = vectors.shape
    types = np.zeros(count, np.uint8)
    values = np.zeros(count, np.int64)
    strings = []
    for i, vector_id in enumerate(ids):
        if isinstance(vector_id, str):
            raw = vector_id.encode("utf-8")
            types[i], values[i] = L.ID_STR, len(raw)
            strings.append(raw)
        else:
            values[i] = vector_id
    blob = b"".join(strings)
    chunks = [L.HEADER.pack(L.MAGIC, index_type, metric, 0, dim, count, len(blob))]
    if graph is not None:
        chunks.append(
            L.HNSW_PARAMS.pack(
                graph.m, 2 * graph.m, graph.ef_construction, graph.ef_search, graph.entry,
                graph.max_level, 0, 0, graph.seed,
            )
        )  # fmt: skip
    chunks += [types.tobytes(), values.astype("<i8").tobytes(), blob]
    chunks.append(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    if graph is not None:
        chunks += [graph.levels.astype(np.uint8).tobytes(), _i32(graph.adj0), _f32(graph.adj0_d)]
        chunks += [_i32(adj) for _, adj, _ in graph.upper]
        chunks += [_f32(dist) for _, _, dist in graph.upper]
    return chunks


def _i32(array: npt.NDArray[np.int32]) -> bytes:
    return np.ascontiguousarray(array, dtype="<i4").tobytes()


def _f32(array: npt.NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


class _Reader:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.offset = 0

    def take(self, dtype: str, count: int) -> npt.NDArray[np.generic]:
        size = np.dtype(dtype).itemsize * count
        array = np.frombuffer(self.payload, dtype=dtype, count=count, offset=self.offset)
        self.offset += size
        return array


def decode(payload: bytes, expected_type: int) -> Decoded:
    """Decode and fully validate a payload of index type ``expected_type``.

    Raises:
        CorruptIndexError: anything about the bytes does not make sense.
    """
    payload = bytes(payload)
    if len(payload) < L.HEADER.size:
        raise CorruptIndexError(f"payload of {len(payload)} bytes is shorter than its header")
    magic, index_type, metric, flags, dim, count, strings_length = L.HEADER.unpack_from(payload)
    if magic != L.MAGIC:
        raise CorruptIndexError(f"bad magic {magic!r}, expected {L.MAGIC!r}")
    if index_type != expected_type:
        raise CorruptIndexError(f"payload is of index type {index_type}, not {expected_type}")
    if metric > 2 or flags != 0:
        raise CorruptIndexError(f"bad metric {metric} or flags {flags}")
    if not 1 <= dim <= MAX_DIM:
        raise CorruptIndexError(f"dimension {dim} out of range")
    offset = L.HEADER.size
    params = None
    if index_type == L.TYPE_HNSW:
        if len(payload) < offset + L.HNSW_PARAMS.size:
            raise CorruptIndexError("payload too short for the HNSW parameters")
        params = L.HNSW_PARAMS.unpack_from(payload, offset)
        offset += L.HNSW_PARAMS.size
    fixed = offset + count * (1 + 8 + 4 * dim) + strings_length
    if len(payload) < fixed:
        raise CorruptIndexError(f"payload of {len(payload)} bytes is too short for {count} ids")
    reader = _Reader(payload)
    reader.offset = offset
    ids = _decode_ids(reader, count, strings_length)
    vectors = reader.take("<f4", count * dim).reshape(count, dim).astype(np.float32)
    _check_vectors(vectors, metric)
    graph = None
    if params is not None:
        graph = _decode_graph(reader, params, count)
    if reader.offset != len(payload):
        raise CorruptIndexError(f"payload is {len(payload)} bytes, expected {reader.offset}")
    return Decoded(index_type, metric, dim, ids, vectors, graph)


def _decode_ids(reader: _Reader, count: int, strings_length: int) -> list[VectorId]:
    types = reader.take("u1", count)
    values = reader.take("<i8", count)
    blob = reader.take("u1", strings_length).tobytes()
    if count and int(types.max()) > L.ID_STR:
        raise CorruptIndexError("bad id type byte")
    is_str = types == L.ID_STR
    lengths = values[is_str]
    if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > MAX_ID_BYTES):
        raise CorruptIndexError("str id length out of range")
    if int(lengths.sum()) != strings_length:
        raise CorruptIndexError("str id lengths do not add up to the string section")
    ids: list[VectorId] = values.tolist()
    position = 0
    for index, size in zip(np.nonzero(is_str)[0].tolist(), lengths.tolist(), strict=True):
        try:
            ids[index] = blob[position : position + size].decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptIndexError(f"str id {index} is not valid UTF-8") from None
        position += size
    if len(set(ids)) != count:
        raise CorruptIndexError("duplicate ids")
    return ids


def _check_vectors(vectors: F32Array, metric: int) -> None:
    if not np.isfinite(vectors).all():
        raise CorruptIndexError("a vector has a NaN or infinite component")
    if metric == 0 and vectors.shape[0]:
        norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
        if not np.allclose(norms, 1.0, atol=1e-3):
            raise CorruptIndexError("a cosine vector is not of unit length")


def _decode_graph(reader: _Reader, params: tuple[int, ...], count: int) -> GraphArrays:
    m, m0, ef_construction, ef_search, entry, max_level, pad8, pad16, seed = params
    if not 2 <= m <= L.MAX_WIDTH // 2 or m0 != 2 * m or pad8 or pad16:
        raise CorruptIndexError(f"bad HNSW parameters M={m} M0={m0}")
    if ef_construction < 1 or ef_search < 1 or max_level > L.MAX_LEVELS:
        raise CorruptIndexError("bad ef or level parameters")
    remaining = len(reader.payload) - reader.offset
    if remaining < count * (1 + 8 * m0):
        raise CorruptIndexError("payload too short for the layer-0 lists")
    levels = reader.take("u1", count).copy()
    if count and int(levels.max()) != max_level:
        raise CorruptIndexError(f"max level {max_level} but the top node is at {levels.max()}")
    if count == 0 and (entry != -1 or max_level != 0):
        raise CorruptIndexError("an empty graph with an entry point")
    if count and not (0 <= entry < count and levels[entry] == max_level):
        raise CorruptIndexError(f"entry point {entry} is not a node of the top level")
    upper_rows = int(levels.sum(dtype=np.int64))
    expected = reader.offset + count * 8 * m0 + upper_rows * 8 * m
    if expected != len(reader.payload):
        raise CorruptIndexError(f"payload is {len(reader.payload)} bytes, expected {expected}")
    adj0 = reader.take("<i4", count * m0).reshape(count, m0).astype(np.int32)
    adj0_d = reader.take("<f4", count * m0).reshape(count, m0).astype(np.float32)
    _check_lists(adj0, adj0_d, np.arange(count), count, 0)
    layers = []
    for level in range(1, max_level + 1):
        nodes = np.nonzero(levels >= level)[0].astype(np.int64)
        layers.append(nodes)
    adjs = [reader.take("<i4", n.size * m).reshape(n.size, m).astype(np.int32) for n in layers]
    dists = [reader.take("<f4", n.size * m).reshape(n.size, m).astype(np.float32) for n in layers]
    upper = []
    for level, (nodes, adj, dist) in enumerate(zip(layers, adjs, dists, strict=True), start=1):
        member = np.zeros(count + 1, dtype=bool)
        member[nodes] = True
        _check_lists(adj, dist, nodes, count, level, member)
        upper.append((nodes, adj, dist))
    return GraphArrays(
        m, ef_construction, ef_search, entry, max_level, seed, levels, adj0, adj0_d, upper
    )


def _check_lists(
    adj: I32Array,
    dist: F32Array,
    owners: npt.NDArray[np.int64],
    count: int,
    level: int,
    member: npt.NDArray[np.bool_] | None = None,
) -> None:
    where = f"layer {level}"
    if adj.size == 0:
        return
    if int(adj.min()) < -1 or int(adj.max()) >= count:
        raise CorruptIndexError(f"{where}: a neighbour is not a node")
    valid = adj >= 0
    if (valid[:, 1:] & ~valid[:, :-1]).any():
        raise CorruptIndexError(f"{where}: a neighbour list has a gap")
    if (adj == owners[:, None]).any():
        raise CorruptIndexError(f"{where}: a node links to itself")
    if member is not None and not member[adj[valid]].all():
        raise CorruptIndexError(f"{where}: a link to a node not in the layer")
    if not np.isfinite(dist[valid]).all() or not np.isposinf(dist[~valid]).all():
        raise CorruptIndexError(f"{where}: a neighbour distance is not finite")
    ordered = np.sort(np.where(valid, adj, -1 - np.arange(adj.shape[1])), axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise CorruptIndexError(f"{where}: a neighbour appears twice in one list")
