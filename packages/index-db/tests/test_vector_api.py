"""Behaviour shared by FlatIndex and HNSWIndex: metrics, ids, upsert/remove, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _vector_helpers import METRICS, clustered, reference_scores

import index_db
from index_db import DimensionMismatchError, FlatIndex, HNSWIndex, IndexUsageError

CLASSES = (FlatIndex, HNSWIndex)


def make(cls, dim=8, metric="euclidean"):
    return cls(dim, metric) if cls is FlatIndex else cls(dim, metric, M=8, ef_construction=64)


def test_public_names():
    assert index_db.FlatIndex is FlatIndex and index_db.HNSWIndex is HNSWIndex
    assert {"FlatIndex", "HNSWIndex"} <= set(index_db.__all__)


@pytest.mark.parametrize("metric", [*METRICS, "l2"])
def test_flat_matches_numpy_reference(metric):
    data = clustered(300, 12, seed=1)
    index = FlatIndex(12, metric)
    index.add_batch(range(300), data)
    rng = np.random.default_rng(2)
    for _ in range(10):
        query = rng.standard_normal(12).astype(np.float32)
        scores = reference_scores(metric, data, query)
        result = index.search(query, 7)
        assert [s for _, s in result] == sorted((s for _, s in result), reverse=True)
        best = np.sort(scores)[::-1][:7]
        np.testing.assert_allclose([s for _, s in result], best, rtol=1e-4, atol=1e-3)
        for vector_id, score in result:
            assert math.isclose(score, scores[vector_id], rel_tol=1e-4, abs_tol=1e-3)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("metric", METRICS)
def test_hnsw_and_flat_agree_on_small_sets(cls, metric):
    data = clustered(150, 8, seed=3)
    index, exact = make(cls, 8, metric), FlatIndex(8, metric)
    index.add_batch(range(150), data)
    exact.add_batch(range(150), data)
    query = data[5] + 0.01
    got, want = index.search(query, 5, ef=150), exact.search(query, 5)
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-4, atol=1e-4)


def test_metric_names_and_aliases():
    assert FlatIndex(4, "l2").metric == "euclidean"
    assert HNSWIndex(4, "cosine").metric == "cosine"
    with pytest.raises(IndexUsageError, match="unknown metric"):
        FlatIndex(4, "manhattan")
    with pytest.raises(IndexUsageError):
        FlatIndex(0, "dot")
    with pytest.raises(TypeError):
        FlatIndex(4.0, "dot")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", CLASSES)
def test_int_and_str_ids_are_distinct(cls):
    index = make(cls, 3)
    index.add(1, [1, 0, 0])
    index.add("1", [0, 1, 0])
    assert len(index) == 2 and 1 in index and "1" in index and 2 not in index
    np.testing.assert_array_equal(index.get(1), [1, 0, 0])
    np.testing.assert_array_equal(index.get("1"), [0, 1, 0])
    assert index.search([0, 1, 0], 1)[0][0] == "1"
    assert set(index.ids()) == {1, "1"}
    assert True not in index and 1.0 not in index


@pytest.mark.parametrize("cls", CLASSES)
def test_add_refuses_existing_id_and_upsert_replaces(cls):
    index = make(cls, 2)
    index.add("a", [1, 0])
    with pytest.raises(IndexUsageError, match="already"):
        index.add("a", [0, 1])
    index.upsert("a", [0, 1])
    index.upsert("b", [5, 5])
    assert len(index) == 2
    np.testing.assert_array_equal(index.get("a"), [0, 1])
    assert index.search([0, 1], 1)[0] == ("a", pytest.approx(0.0))


@pytest.mark.parametrize("cls", CLASSES)
def test_remove_and_slot_reuse(cls):
    data = clustered(100, 8, seed=4)
    index = make(cls, 8)
    index.add_batch(range(100), data)
    assert index.remove(7) is True
    assert index.remove(7) is False
    assert 7 not in index and len(index) == 99
    with pytest.raises(KeyError):
        index.get(7)
    assert all(i != 7 for i, _ in index.search(data[7], 10))
    index.add(1000, data[7])
    assert index._store.vectors.shape[0] >= 100
    assert index._idmap.capacity_used == 100  # the freed slot was reused
    assert index.search(data[7], 1)[0][0] == 1000


@pytest.mark.parametrize("cls", CLASSES)
def test_batch_is_all_or_nothing(cls):
    index = make(cls, 2)
    index.add(1, [1, 1])
    with pytest.raises(IndexUsageError):
        index.add_batch([2, 1], [[0, 1], [1, 0]])
    with pytest.raises(IndexUsageError, match="distinct"):
        index.add_batch([3, 3], [[0, 1], [1, 0]])
    with pytest.raises(IndexUsageError, match="ids for"):
        index.add_batch([3], [[0, 1], [1, 0]])
    with pytest.raises(IndexUsageError, match="NaN"):
        index.add_batch([3, 4], [[0, 1], [np.nan, 0]])
    assert len(index) == 1
    index.add_batch([1, 2], [[0, 1], [1, 0]], upsert=True)
    assert len(index) == 2


@pytest.mark.parametrize("cls", CLASSES)
def test_dimension_and_dtype_errors(cls):
    index = make(cls, 3)
    with pytest.raises(DimensionMismatchError, match=r"shape \(3,\)"):
        index.add(1, [1, 2])
    with pytest.raises(DimensionMismatchError):
        index.add(1, [[1, 2, 3]])
    with pytest.raises(DimensionMismatchError, match=r"\(n, 3\)"):
        index.add_batch([1], np.zeros((1, 4)))
    with pytest.raises(DimensionMismatchError):
        index.search([1, 2, 3, 4], 1)
    with pytest.raises(TypeError, match="real numbers"):
        index.add(1, np.array([1, 2, 3], dtype=complex))
    with pytest.raises(TypeError):
        index.add(1, ["a", "b", "c"])
    with pytest.raises(TypeError):
        index.add(1, np.array([True, False, True]))
    with pytest.raises(TypeError, match="int or str"):
        index.add(1.5, [1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        index.add(True, [1, 2, 3])
    with pytest.raises(IndexUsageError, match="64-bit"):
        index.add(2**63, [1, 2, 3])
    with pytest.raises(IndexUsageError, match="NaN or infinite"):
        index.add(1, [1, np.inf, 3])
    with pytest.raises(IndexUsageError, match="overflows"):
        index.add(1, np.array([1e300, 0, 0]))
    with pytest.raises(IndexUsageError):
        index.search([np.nan, 0, 0], 1)
    with pytest.raises(IndexUsageError):
        index.search([1, 0, 0], -1)
    with pytest.raises(TypeError):
        index.search([1, 0, 0], 1.0)  # type: ignore[arg-type]
    assert len(index) == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_dtypes_accepted_and_caller_array_untouched(cls):
    index = make(cls, 3, "cosine")
    original = np.array([3.0, 4.0, 0.0])
    index.add("f64", original)
    index.add("i32", np.array([0, 2, 0], dtype=np.int32))
    index.add("f16", np.array([0, 0, 1], dtype=np.float16))
    np.testing.assert_array_equal(original, [3.0, 4.0, 0.0])
    np.testing.assert_allclose(index.get("f64"), [0.6, 0.8, 0.0], rtol=1e-6)
    assert index.get("i32").dtype == np.float32


@pytest.mark.parametrize("cls", CLASSES)
def test_zero_vectors_under_cosine_are_refused(cls):
    index = make(cls, 3, "cosine")
    with pytest.raises(IndexUsageError, match="zero vector"):
        index.add(1, [0, 0, 0])
    index.add(1, [1, 0, 0])
    with pytest.raises(IndexUsageError, match="zero vector"):
        index.search([0, 0, 0], 1)
    other = make(cls, 3, "euclidean")
    other.add(1, [0, 0, 0])  # fine under other metrics
    assert other.search([0, 0, 0], 1) == [(1, 0.0)]


@pytest.mark.parametrize("cls", CLASSES)
def test_k_larger_than_index_and_zero(cls):
    index = make(cls, 2)
    assert index.search([1, 0], 3) == []
    index.add_batch([1, 2], [[1, 0], [0, 1]])
    assert [i for i, _ in index.search([1, 0], 10)] == [1, 2]
    assert index.search([1, 0], 0) == []


@pytest.mark.parametrize("cls", CLASSES)
def test_filters_predicate_and_set(cls):
    data = clustered(400, 8, seed=5)
    index = make(cls, 8)
    index.add_batch(range(400), data)
    query = data[0]
    evens = index.search(query, 10, filter=lambda i: i % 2 == 0)
    assert len(evens) == 10 and all(i % 2 == 0 for i, _ in evens)
    allowed = {3, 77, 250, 399, "absent", 10_000, True, 2.0}  # True and 2.0 match nothing
    result = index.search(query, 10, filter=allowed)
    assert {i for i, _ in result} == {3, 77, 250, 399}
    exact = FlatIndex(8, "euclidean")
    exact.add_batch(range(400), data)
    assert [i for i, _ in result] == [i for i, _ in exact.search(query, 10, filter=allowed)]
    assert index.search(query, 5, filter=set()) == []
    with pytest.raises(TypeError):
        index.search(query, 5, filter=42)  # type: ignore[arg-type]
