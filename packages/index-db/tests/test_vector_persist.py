"""Snapshot payloads and operations of the vector indexes: golden bytes, round trips,
corruption giving typed errors, and replay determinism."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from _vector_helpers import METRICS, clustered, unit_vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persist_db
from index_db import CorruptIndexError, FlatIndex, HNSWIndex
from index_db.vector import _layout
from index_db.vector._snapshot import GraphArrays, decode, encode

GOLDEN_FLAT = bytes.fromhex(
    "495856530101000002000000020000000100000000000000"  # header
    "0001"  # id types: int, str
    "07000000000000000100000000000000"  # id values: 7, len("a")
    "61"  # "a"
    "0000803f000000400000003f000080bf"  # vectors [1, 2], [0.5, -1]
)
GOLDEN_HNSW = bytes.fromhex(
    "495856530201000002000000020000000100000000000000"
    "02000400080000000400000001000000010000000500000000000000"  # M=2 M0=4 efc=8 efs=4 ...
    "0001" "07000000000000000100000000000000" "61"
    "0000803f000000400000003f000080bf"
    "0001"  # levels
    "01000000ffffffffffffffffffffffff00000000ffffffffffffffffffffffff"  # adj0
    "0000803e0000807f0000807f0000807f0000803e0000807f0000807f0000807f"  # adj0_d
    "ffffffffffffffff"  # layer 1: node 1 has no neighbours
    "0000807f0000807f"
)  # fmt: skip
# code "A", str id of 1 byte "a", dim 2, [1.0, 2.0]
GOLDEN_OP_ADD = bytes.fromhex(
    "41" "01" "01000000" "61" "02000000" "0000803f" "00000040"
)  # fmt: skip
GOLDEN_OP_REMOVE = bytes.fromhex("52" "00" "fdffffffffffffff")  # fmt: skip


def golden_graph() -> GraphArrays:
    inf = np.inf
    return GraphArrays(
        m=2,
        ef_construction=8,
        ef_search=4,
        entry=1,
        max_level=1,
        seed=5,
        levels=np.array([0, 1], np.uint8),
        adj0=np.array([[1, -1, -1, -1], [0, -1, -1, -1]], np.int32),
        adj0_d=np.array([[0.25, inf, inf, inf], [0.25, inf, inf, inf]], np.float32),
        upper=[(np.array([1]), np.array([[-1, -1]], np.int32), np.full((1, 2), inf, np.float32))],
    )


def test_golden_flat_payload():
    index = FlatIndex(2, "euclidean")
    index.add(7, [1.0, 2.0])
    index.add("a", [0.5, -1.0])
    assert b"".join(index.to_snapshot()) == GOLDEN_FLAT
    decoded = decode(GOLDEN_FLAT, _layout.TYPE_FLAT)
    assert decoded.ids == [7, "a"] and decoded.metric == 1 and decoded.graph is None
    np.testing.assert_array_equal(decoded.vectors, [[1, 2], [0.5, -1]])


def test_golden_hnsw_payload():
    vectors = np.array([[1, 2], [0.5, -1]], np.float32)
    assert b"".join(encode(2, 1, [7, "a"], vectors, golden_graph())) == GOLDEN_HNSW
    index = HNSWIndex(3, "dot")
    index.load_snapshot(GOLDEN_HNSW, 1)
    assert (index.dim, index.metric, index.M, index.ef_search) == (2, "euclidean", 2, 4)
    assert index.search([0.5, -1], 2) == [("a", 0.0), (7, pytest.approx(-((0.25 + 9) ** 0.5)))]
    assert b"".join(index.to_snapshot()) == GOLDEN_HNSW


def test_golden_operations():
    index = FlatIndex(2, "euclidean")
    assert index.op_add("a", [1, 2]) == GOLDEN_OP_ADD
    assert index.op_remove(-3) == GOLDEN_OP_REMOVE
    index.apply(GOLDEN_OP_ADD)
    np.testing.assert_array_equal(index.get("a"), [1, 2])
    index.apply(GOLDEN_OP_ADD)  # an upsert: replaying is harmless
    index.apply(index.op_remove("a"))
    index.apply(index.op_remove("a"))  # removing an absent id is a no-op
    assert len(index) == 0


@pytest.mark.parametrize("cls", [FlatIndex, HNSWIndex])
@pytest.mark.parametrize("metric", METRICS)
def test_save_load_round_trip(tmp_path, cls, metric):
    data = clustered(700, 16, seed=30)
    index = cls(16, metric)
    ids = [f"doc-{i}" if i % 2 else i for i in range(700)]
    index.add_batch(ids, data)
    for i in ids[::9]:
        index.remove(i)
    assert isinstance(index, persist_db.Persistable)
    path = tmp_path / "v.snap"
    index.save(path, meta={"n": len(index)})
    loaded = cls.load(path)
    assert type(loaded) is cls and len(loaded) == len(index) and loaded.metric == metric
    for query in clustered(20, 16, seed=31):
        assert loaded.search(query, 10) == index.search(query, 10)
    assert b"".join(loaded.to_snapshot()) == b"".join(index.to_snapshot())
    loaded.add("new", data[0])  # the loaded index stays fully usable
    assert loaded.search(data[0], 1, filter={"new"})[0][0] == "new"
    assert persist_db.load(path).meta == {"n": len(index)}


def test_save_compressed_and_wrong_kind(tmp_path):
    index = HNSWIndex(8, "cosine")
    index.add_batch(range(100), unit_vectors(100, 8, seed=32))
    index.save(tmp_path / "z.snap", compression="zstd")
    assert HNSWIndex.load(tmp_path / "z.snap").search(np.ones(8), 3) == index.search(np.ones(8), 3)
    with pytest.raises(persist_db.WrongKindError):
        FlatIndex.load(tmp_path / "z.snap")
    with pytest.raises(CorruptIndexError, match="index type"):
        FlatIndex(8, "cosine").load_snapshot(b"".join(index.to_snapshot()), 1)


def test_unknown_payload_version_is_refused():
    with pytest.raises(persist_db.UnsupportedFormatError):
        FlatIndex(2, "dot").load_snapshot(GOLDEN_FLAT, 2)


@pytest.mark.parametrize("golden, kind", [(GOLDEN_FLAT, FlatIndex), (GOLDEN_HNSW, HNSWIndex)])
def test_every_truncation_is_a_typed_error(golden, kind):
    for size in range(len(golden)):
        with pytest.raises(CorruptIndexError):
            kind(2, "euclidean").load_snapshot(golden[:size], 1)
    with pytest.raises(CorruptIndexError):
        kind(2, "euclidean").load_snapshot(golden + b"\0", 1)


def test_every_byte_flip_is_refused_or_gives_a_sound_index():
    for position in range(len(GOLDEN_HNSW)):
        for mask in (0x01, 0x80, 0xFF):
            payload = bytearray(GOLDEN_HNSW)
            payload[position] ^= mask
            index = HNSWIndex(2, "euclidean")
            try:
                index.load_snapshot(bytes(payload), 1)
            except CorruptIndexError:
                continue
            index.verify()
            assert len(index) == 2


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda g: g.adj0.__setitem__((0, 0), 0), "itself"),
        (lambda g: g.adj0.__setitem__((0, 0), 9), "not a node"),
        (lambda g: g.adj0.__setitem__((0, slice(0, 2)), [-1, 1]), "gap"),
        (lambda g: g.adj0_d.__setitem__((0, 0), np.nan), "distance"),
        (lambda g: setattr(g, "entry", 0), "entry point"),
        (lambda g: g.upper[0][1].__setitem__((0, 0), 0), "not in the layer"),
    ],
)
def test_graph_corruptions_are_named(mutate, reason):
    graph = golden_graph()
    mutate(graph)
    payload = b"".join(encode(2, 1, [7, "a"], np.array([[1, 2], [0.5, -1]], np.float32), graph))
    with pytest.raises(CorruptIndexError, match=reason):
        HNSWIndex(2, "euclidean").load_snapshot(payload, 1)


def test_payload_level_corruptions_are_named():
    twins = b"".join(encode(1, 1, [7, 7], np.zeros((2, 2), np.float32), None))
    with pytest.raises(CorruptIndexError, match="duplicate"):
        decode(twins, _layout.TYPE_FLAT)
    bad_utf8 = GOLDEN_FLAT.replace(b"\x61\x00\x00\x80\x3f", b"\xff\x00\x00\x80\x3f")
    with pytest.raises(CorruptIndexError, match="UTF-8"):
        decode(bad_utf8, _layout.TYPE_FLAT)
    nan_vector = GOLDEN_FLAT[:-4] + np.float32(np.nan).tobytes()
    with pytest.raises(CorruptIndexError, match="NaN"):
        decode(nan_vector, _layout.TYPE_FLAT)
    cosine = bytearray(GOLDEN_FLAT)
    cosine[5] = 0  # metric byte: cosine, but the vectors are not unit length
    with pytest.raises(CorruptIndexError, match="unit length"):
        decode(bytes(cosine), _layout.TYPE_FLAT)
    huge = bytearray(GOLDEN_FLAT)
    huge[12:16] = (2**32 - 1).to_bytes(4, "little")  # count: would be 4 billion ids
    with pytest.raises(CorruptIndexError, match="too short"):
        decode(bytes(huge), _layout.TYPE_FLAT)


@pytest.mark.parametrize(
    "op",
    [b"", b"A", b"X\x00" + bytes(8), b"R\x02", b"R\x00\x01", b"R\x01\xff\xff\xff\xff",
     b"R\x01\x01\x00\x00\x00\xff", GOLDEN_OP_ADD[:-1], GOLDEN_OP_ADD + b"\0",
     GOLDEN_OP_REMOVE + b"\0", GOLDEN_OP_ADD.replace(b"\x02\x00\x00\x00", b"\x03\x00\x00\x00"),
     GOLDEN_OP_ADD[:-4] + np.float32(np.inf).tobytes()],
)  # fmt: skip
def test_malformed_operations_are_typed_errors(op):
    index = FlatIndex(2, "euclidean")
    with pytest.raises(CorruptIndexError):
        index.apply(op)
    assert len(index) == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_payloads_only_raise_corrupt_index_error(payload):
    for kind in (FlatIndex, HNSWIndex):
        with contextlib.suppress(CorruptIndexError):
            kind(2, "dot").load_snapshot(payload, 1)


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove"]),
        st.one_of(st.integers(0, 30), st.sampled_from(["x", "y", "ü"])),
        st.lists(st.floats(-10, 10, width=32), min_size=4, max_size=4),
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, st.sampled_from(METRICS))
def test_replay_is_deterministic_and_matches_flat_model(ops, metric):
    index = HNSWIndex(4, metric, M=3, ef_construction=10)
    model = FlatIndex(4, metric)
    start = HNSWIndex(4, metric, M=3, ef_construction=10)
    start.load_snapshot(b"".join(index.to_snapshot()), 1)
    log = []
    for name, vector_id, raw in ops:
        vector = [1.0, 0.0, 0.0, 0.0] if metric == "cosine" and not any(raw) else raw
        op = index.op_add(vector_id, vector) if name == "add" else index.op_remove(vector_id)
        log.append(op)
        index.apply(op)
        model.apply(op)
        index.verify()
    assert set(index.ids()) == set(model.ids())
    for vector_id in model.ids():
        np.testing.assert_array_equal(index.get(vector_id), model.get(vector_id))
    if len(model):
        query = np.array([1.0, 0.5, -0.25, 2.0])
        got = index.search(query, 3, ef=64)
        want = model.search(query, 3)
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    for op in log:
        start.apply(op)
    assert b"".join(start.to_snapshot()) == b"".join(index.to_snapshot())
