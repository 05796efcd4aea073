"""HNSWIndex: recall against FlatIndex, removal keeping the graph navigable, filters."""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
import pytest
from _vector_helpers import (
    METRICS,
    clustered,
    recall_at,
    reference_scores,
    unit_vectors,
    unreachable_nodes,
)

from index_db import CorruptIndexError, FlatIndex, HNSWIndex, IndexUsageError
from index_db.vector import _batch, _lockstep, _search, _workers


@pytest.fixture(scope="module")
def built():
    data = unit_vectors(2000, 32, seed=11)
    index = HNSWIndex(32, "cosine", seed=3)
    index.add_batch(range(2000), data)
    exact = FlatIndex(32, "cosine")
    exact.add_batch(range(2000), data)
    return data, index, exact


def test_recall_at_10_against_flat(built):
    _, index, exact = built
    queries = unit_vectors(100, 32, seed=12)
    assert recall_at(index, exact, queries, 10) >= 0.95
    index.verify()
    assert unreachable_nodes(index) == 0


@pytest.mark.parametrize("metric", METRICS)
def test_recall_each_metric_sequential_and_batch(metric):
    data = clustered(600, 16, seed=13)
    exact = FlatIndex(16, metric)
    exact.add_batch(range(600), data)
    batch = HNSWIndex(16, metric, M=12, ef_construction=100)
    batch.add_batch(range(600), data)
    single = HNSWIndex(16, metric, M=12, ef_construction=100)
    for i in range(600):
        single.add(i, data[i])
    queries = clustered(40, 16, seed=14)
    for index in (batch, single):
        index.verify()
        assert recall_at(index, exact, queries, 10, ef=64) >= 0.9


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_batch_build_leaves_no_node_unreachable_on_clustered_data(metric):
    # With a small M on clustered data the batch builder used to strand a few nodes with
    # no in-link (9 of 5 x 2,000 under cosine); the repair walk links them back.
    for seed in range(5):
        index = HNSWIndex(16, metric, M=8, ef_construction=64, seed=seed)
        index.add_batch(range(2000), clustered(2000, 16, seed=50 + seed))
        index.verify()
        assert unreachable_nodes(index) == 0


def test_dot_metric_recall_on_clustered_data():
    # Raw inner products leave most small vectors without an in-link (3,390 of 5,000 at
    # M=8) and recall@10 at 0.74; with the repair it is above 0.95.
    data, queries = clustered(5000, 16, seed=60), clustered(200, 16, seed=61)
    exact = FlatIndex(16, "dot")
    exact.add_batch(range(5000), data)
    index = HNSWIndex(16, "dot", M=16, ef_construction=100, seed=1)
    index.add_batch(range(5000), data)
    index.verify()
    assert unreachable_nodes(index) == 0
    assert recall_at(index, exact, queries, 10, ef=256) >= 0.95


def test_link_unreachable_relinks_stranded_nodes():
    index = HNSWIndex(16, "euclidean", M=6, ef_construction=40, seed=2)
    index.add_batch(range(800), unit_vectors(800, 16, seed=70))
    graph = index._graph
    adj = graph.layers[0].adj
    stranded = [s for s in (5, 6, 7) if s != graph.entry]
    for slot in stranded:  # cut every in-link: the lists keep -1 padding at the end
        for row in np.flatnonzero((adj == slot).any(axis=1)).tolist():
            kept = [n for n in adj[row].tolist() if n not in (slot, -1)]
            graph.layers[0].set_list(row, kept, np.ones(len(kept), np.float32))
    assert unreachable_nodes(index) >= len(stranded)
    assert _batch.link_unreachable(graph) >= len(stranded)
    assert unreachable_nodes(index) == 0
    index.verify()
    for slot in stranded:
        assert index.search(index.get(slot), 1, ef=64)[0][0] == slot


def test_batch_builder_links_chunks_both_ways():
    data = unit_vectors(1000, 16, seed=15)
    index = HNSWIndex(16, "euclidean", M=8, ef_construction=40)
    index.add_batch(range(1000), data)
    index.verify()
    adj = index._graph.layers[0].adj[:1000]
    assert ((adj >= 0).sum(axis=1) >= 1).all()
    assert unreachable_nodes(index) == 0
    assert index._graph.max_level >= 1


def test_removal_keeps_recall_and_navigability():
    data = unit_vectors(1000, 24, seed=16)
    index = HNSWIndex(24, "cosine", M=12, ef_construction=100, seed=1)
    index.add_batch(range(1000), data)
    rng = np.random.default_rng(17)
    gone = rng.choice(1000, 400, replace=False)
    entry_id = index._idmap.ids[index._graph.entry]
    for i in [entry_id, *gone.tolist()]:
        index.remove(i)
    index.verify()
    assert unreachable_nodes(index) == 0
    kept = np.setdiff1d(np.arange(1000), [*gone, entry_id])
    exact = FlatIndex(24, "cosine")
    exact.add_batch(kept.tolist(), data[kept])
    assert len(index) == len(exact)
    queries = unit_vectors(60, 24, seed=18)
    assert recall_at(index, exact, queries, 10, ef=80) >= 0.93
    for i in gone[:5].tolist():
        assert i not in index


def test_remove_everything_then_reuse():
    data = unit_vectors(80, 8, seed=19)
    index = HNSWIndex(8, "dot", M=4, ef_construction=16)
    index.add_batch(range(80), data)
    for i in range(80):
        assert index.remove(i)
    assert len(index) == 0 and index.search(data[0], 3) == []
    assert index._graph.entry == -1
    index.add("again", data[0])
    assert index.search(data[0], 3) == [("again", pytest.approx(1.0, rel=1e-5))]


def test_upsert_moves_a_vector():
    data = unit_vectors(300, 8, seed=20)
    index = HNSWIndex(8, "euclidean", M=6, ef_construction=32)
    index.add_batch(range(300), data)
    index.upsert(5, data[200] * 1.0001)
    assert index.search(data[200], 2, ef=100)[1][0] in (5, 200)
    assert {i for i, _ in index.search(data[200], 2, ef=100)} == {5, 200}
    index.add_batch(range(250, 350), unit_vectors(100, 8, seed=21), upsert=True)
    assert len(index) == 350
    index.verify()


@pytest.mark.parametrize("fraction", [0.002, 0.03, 0.3])
def test_selective_filters_still_return_k(built, fraction):
    data, index, exact = built
    rng = np.random.default_rng(22)
    allowed = set(rng.choice(2000, int(2000 * fraction), replace=False).tolist())
    k = min(10, len(allowed))
    query = data[1]
    for flt in (allowed, allowed.__contains__):
        result = index.search(query, k, filter=flt)
        assert len(result) == k
        assert all(i in allowed for i, _ in result)
    want = [i for i, _ in exact.search(query, k, filter=allowed)]
    assert [i for i, _ in index.search(query, k, filter=allowed)][:3] == want[:3]


def test_filter_with_fewer_qualifying_than_k(built):
    data, index, _ = built
    result = index.search(data[0], 10, filter=lambda i: i in (4, 9, 1999))
    assert sorted(i for i, _ in result) == [4, 9, 1999]


def test_large_allowed_set_uses_the_graph(built):
    data, index, exact = built
    assert data.shape[0] == len(index)
    allowed = set(range(0, 2000, 1)) - {int(i) for i, _ in exact.search(data[3], 3)}
    result = index.search(data[3], 10, filter=allowed)
    assert len(result) == 10 and all(i in allowed for i, _ in result)


def test_parameters_are_checked():
    with pytest.raises(IndexUsageError):
        HNSWIndex(4, "cosine", M=1)
    with pytest.raises(IndexUsageError):
        HNSWIndex(4, "cosine", ef_construction=0)
    with pytest.raises(TypeError):
        HNSWIndex(4, "cosine", ef_search=1.5)  # type: ignore[arg-type]
    index = HNSWIndex(4, "cosine", M=5, ef_construction=7, ef_search=9)
    assert (index.M, index.ef_construction, index.ef_search) == (5, 7, 9)
    index.ef_search = 20
    assert index.ef_search == 20
    with pytest.raises(IndexUsageError):
        index.search([1, 0, 0, 0], 1, ef=0)


def test_levels_depend_only_on_id_and_seed():
    a = HNSWIndex(4, "cosine", seed=7)
    b = HNSWIndex(4, "cosine", seed=7)
    c = HNSWIndex(4, "cosine", seed=8)
    ids = [*range(500), *(f"k{i}" for i in range(500))]
    levels = a._graph.levels_for(ids)
    assert (levels == b._graph.levels_for(ids)).all()
    assert not (levels == c._graph.levels_for(ids)).all()
    assert 0.8 < (levels == 0).mean() < 1.0  # about 1 - 1/M of the nodes stay in layer 0


def test_a_search_keeping_the_top_k_returns_the_head_of_the_full_result(built):
    """search() asks the beam for only its k best (no sort and conversion of all ef): the
    same k entries, in the same order, as the head of the full result."""
    _, index, _ = built
    graph = index._graph
    for query in unit_vectors(50, 32, seed=24):
        full = _search.search(graph, query, 96)
        for top in (1, 10, 95, 96, 200):
            assert _search.search(graph, query, 96, top) == full[:top]


def _expected_codes(store) -> tuple[np.ndarray, np.ndarray]:
    """Each row divided by its own step (largest component / 127) and rounded."""
    peak = np.abs(store.vectors).max(axis=1)
    step = (peak / np.float32(127.0)).astype(np.float32)
    safe = np.where(step > 0, step, 1)
    codes = np.clip(np.rint(store.vectors / safe[:, None]), -127, 127).astype(np.int8)
    return codes, step


def _assert_codes_current(store) -> None:
    expected_codes, expected_step = _expected_codes(store)
    assert np.abs(store.codes.astype(int) - expected_codes).max() <= 1  # divide vs multiply
    np.testing.assert_allclose(store.code_step, expected_step, rtol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_traversal_codes_follow_every_change_and_scores_stay_exact(metric):
    """Searches traverse with an int8 copy of the vectors (a step per row), built on the
    first search and kept equal to a fresh quantisation through adds (single, batch,
    upsert), removals and growth; rows of very different norms all keep full resolution;
    the scores returned are the exact ones, not the codes'."""
    data = clustered(600, 16, seed=25)
    data[::7] *= 1000.0  # norms far apart: one scale for all would flatten the small rows
    index = HNSWIndex(16, metric, M=8, ef_construction=40, seed=9)
    index.add_batch(range(300), data[:300])
    store = index._store
    assert store.codes is None  # nothing built before a search
    query = data[450]
    index.search(query, 5)
    codes, step = store.traversal_codes()
    assert codes is store.codes and step is store.code_step
    _assert_codes_current(store)
    index.add(300, data[300])
    index.add_batch(range(301, 500), data[301:500])  # grows the matrix
    index.upsert(7, data[510])
    index.remove(3)
    index.remove(250)
    codes, step = store.traversal_codes()
    _assert_codes_current(store)
    live = step > 0
    assert (np.abs(codes[live]).max(axis=1) >= 126).all()  # every live row uses the range
    assert not codes[~live].any()
    assert live.sum() == len(index)
    ids = [i for i in range(500) if i not in (3, 250)]
    found = index.search(query, 10, ef=64)
    scores = reference_scores(metric, np.stack([index.get(i) for i in ids]), query)
    exact = dict(zip(ids, scores, strict=True))
    for vector_id, score in found:
        assert score == pytest.approx(exact[vector_id], rel=1e-4, abs=1e-4)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_chunk_search_matches_sequential_search_on_a_fixed_graph(built):
    _, index, _ = built
    graph = index._graph
    queries = unit_vectors(8, 32, seed=23)
    visited = np.zeros((8, graph.levels.shape[0] + 1), dtype=bool)
    visited[:, -1] = True
    entries = np.array([graph.descend(q, 0)[0][1] for q in queries])
    ids, dists = _lockstep.beam(
        _batch.view_of(graph), queries, np.arange(8), entries, 40, 0, visited, 1
    )
    assert not visited[:, :-1].any()  # cleared on return
    for row, query in enumerate(queries):
        found = graph.search_layer(query, [(float(dists[row, 0]), int(ids[row, 0]))], 40, 0)
        overlap = len({n for _, n in found} & set(ids[row].tolist()))
        assert overlap >= 36
        assert (np.diff(dists[row]) >= 0).all()


def test_verify_detects_a_broken_graph():
    index = HNSWIndex(4, "euclidean", M=4, ef_construction=8)
    index.add_batch(range(100), unit_vectors(100, 4, seed=24))
    index._graph.layers[0].adj[3, 0] = 3  # a self link
    with pytest.raises(CorruptIndexError, match="itself"):
        index.verify()


def test_predicate_called_at_most_once_per_id_per_search(built):
    data, index, _ = built
    calls: dict[int, int] = {}

    def rare(vector_id):
        calls[vector_id] = calls.get(vector_id, 0) + 1
        return vector_id % 500 == 7  # 4 of 2000 ids qualify: the exact fallback runs

    result = index.search(data[0], 10, filter=rare)
    assert sorted(i for i, _ in result) == [7, 507, 1007, 1507]
    assert max(calls.values()) == 1


@pytest.mark.parametrize("metric", METRICS)
def test_batched_expansion_matches_one_at_a_time(metric):
    """The layer-0 search expanding B nodes per step returns what B=1 and the classic
    heap search return: the same exhaustive result when ef covers the graph, and the same
    (or better) recall at a small ef."""
    data = clustered(400, 16, seed=31)
    index = HNSWIndex(16, metric, M=6, ef_construction=40, seed=5)
    index.add_batch(range(400), data)
    exact = FlatIndex(16, metric)
    exact.add_batch(range(400), data)
    graph = index._graph
    queries = [index._store.prepare_one(q) for q in clustered(20, 16, seed=32)]
    for query in queries:
        entries = graph.descend(query, 0)
        classic = graph.search_layer(query, entries, 400, 0)
        for batch in (1, 3, 16, 64):
            got = _search.beam_search(graph, query, entries, 400, 0, batch)
            assert [n for _, n in got] == [n for _, n in classic]
            assert np.allclose([d for d, _ in got], [d for d, _ in classic], atol=1e-4)
        small = graph.search_layer(query, entries, 12, 0)
        one = _search.beam_search(graph, query, entries, 12, 0, 1)
        assert len({n for _, n in one} & {n for _, n in small}) >= 11
        assert all(np.diff([d for d, _ in one]) >= 0)
    for ef in (10, 40, 160):
        batched = recall_at(index, exact, np.asarray(queries), 10, ef=ef)  # B = ef // 8
        want = [{n for _, n in exact.search(q, 10)} for q in queries]
        classic = [{index._idmap.ids[n] for _, n in graph.search(q, ef)[:10]} for q in queries]
        classic_recall = sum(len(c & w) for c, w in zip(classic, want, strict=True)) / 200
        assert batched >= classic_recall - 0.02
    assert _search.batch_for(_search.EF_PER_BATCH - 1) == 1
    assert _search.batch_for(4 * _search.EF_PER_BATCH) == 4
    assert _search.batch_for(10_000) == _search.BATCH_MAX


def test_batched_search_keeps_visited_stamps_consistent(built):
    _, index, exact = built
    graph = index._graph
    queries = unit_vectors(30, 32, seed=33)
    base = recall_at(index, exact, queries, 10, ef=64)
    assert base >= 0.9
    for query in queries[:5]:
        entries = graph.descend(query, 0)
        first = _search.beam_search(graph, query, entries, 64, 0, 8)
        again = _search.beam_search(graph, query, entries, 64, 0, 8)
        assert first == again  # a fresh epoch per search: nothing left marked
        assert len({n for _, n in first}) == len(first) == 64  # no duplicate slots


def _layer_arrays(index: HNSWIndex) -> list[np.ndarray]:
    graph = index._graph
    arrays = [graph.levels, graph.layers[0].adj, graph.layers[0].adj_d]
    for layer in graph.layers[1:]:
        assert layer.row_of is not None
        arrays += [layer.row_of, layer.adj[: layer.used_rows], layer.adj_d[: layer.used_rows]]
    return arrays


@pytest.mark.parametrize("metric", METRICS)
def test_threaded_batch_build_gives_the_same_graph(metric):
    """Splitting each chunk's beam searches over threads changes nothing in the graph."""
    data = clustered(1500, 16, seed=40)
    one = HNSWIndex(16, metric, M=8, ef_construction=48, seed=2)
    one.add_batch(range(1500), data)
    two = HNSWIndex(16, metric, M=8, ef_construction=48, seed=2)
    two.add_batch(range(1500), data, threads=3)
    for left, right in zip(_layer_arrays(one), _layer_arrays(two), strict=True):
        np.testing.assert_array_equal(left, right)
    assert (one._graph.entry, one._graph.max_level) == (two._graph.entry, two._graph.max_level)
    two.verify()
    with pytest.raises(IndexUsageError):
        two.add_batch([9999], data[:1], threads=0)
    with pytest.raises(TypeError):
        two.add_batch([9999], data[:1], threads=2.0)  # type: ignore[arg-type]


def _spy_helpers(monkeypatch) -> tuple[list, list]:
    """Helpers start for any batch of 64+; record the helpers spawned and, per search
    request, the helper it went to."""
    monkeypatch.setattr(_batch, "WORKERS_MIN", 64)
    spawned: list = []
    requests: list = []
    spawn, send = _workers._spawn, _workers._Helper.send

    def spying_spawn(fd):
        helper = spawn(fd)
        spawned.append(helper)
        return helper

    def spying_send(self, message):
        if isinstance(message, tuple):  # a search request, not the start-up spec
            requests.append(self)
        send(self, message)

    monkeypatch.setattr(_workers, "_spawn", spying_spawn)
    monkeypatch.setattr(_workers._Helper, "send", spying_send)
    return spawned, requests


posix_only = pytest.mark.skipif(os.name != "posix", reason="build helpers are POSIX-only")


@posix_only
@pytest.mark.parametrize("metric", METRICS)
def test_helper_processes_build_the_same_graph(metric, monkeypatch):
    """Splitting each chunk's searches with helper processes changes nothing in the graph;
    the helpers really search (requests go out), stop afterwards, and leave the graph on
    private arrays that later adds and a save/load handle as usual."""
    data = clustered(1500, 16, seed=40)
    one = HNSWIndex(16, metric, M=8, ef_construction=48, seed=2)
    one.add_batch(range(1500), data)
    spawned, requests = _spy_helpers(monkeypatch)
    two = HNSWIndex(16, metric, M=8, ef_construction=48, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        two.add_batch(range(1500), data, workers=2)
    assert len(spawned) == 2
    assert all(requests.count(helper) >= 5 for helper in spawned)  # both took parts
    for left, right in zip(_layer_arrays(one), _layer_arrays(two), strict=True):
        np.testing.assert_array_equal(left, right)
    assert all(helper.process.poll() is not None for helper in spawned)
    assert all(layer.adj.flags.owndata for layer in two._graph.layers)
    two.verify()
    two.add_batch(range(1500, 1600), data[:100] + 0.01)
    two.verify()


@posix_only
def test_helpers_share_a_temporary_file_where_there_is_no_memfd(monkeypatch, tmp_path):
    """Without memfd_create and posix_fallocate (macOS, the BSDs) the block is an unlinked
    temporary file filled by plain writes; the helpers build the same graph from it."""
    data = clustered(1500, 16, seed=44)
    one = HNSWIndex(16, "euclidean", M=8, ef_construction=48, seed=6)
    one.add_batch(range(1500), data)
    spawned, requests = _spy_helpers(monkeypatch)
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.delattr(os, "posix_fallocate", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    two = HNSWIndex(16, "euclidean", M=8, ef_construction=48, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        two.add_batch(range(1500), data, workers=1)
    assert requests.count(spawned[0]) >= 5
    assert not list(tmp_path.iterdir())  # unlinked once the helpers had mapped it
    for left, right in zip(_layer_arrays(one), _layer_arrays(two), strict=True):
        np.testing.assert_array_equal(left, right)


@posix_only
@pytest.mark.parametrize("how", ["killed before a request", "fails on a request"])
def test_a_helper_that_dies_mid_build_is_replaced_by_the_caller(how, monkeypatch):
    """A helper lost mid-build (its pipe breaks on the next request, or it dies on one and
    its result never comes) is dropped with a warning; the caller searches its part, gives
    it no more work, and the graph comes out the same."""
    data = clustered(1500, 16, seed=41)
    one = HNSWIndex(16, "cosine", M=8, ef_construction=48, seed=3)
    one.add_batch(range(1500), data)
    spawned, requests = _spy_helpers(monkeypatch)
    send = _workers._Helper.send  # the spy: it records each search request

    def failing_send(self, message):
        if isinstance(message, tuple) and len(requests) == 4:
            if how == "killed before a request":
                self.process.kill()
                self.process.wait()
            else:
                message = ("no such request",)  # the helper raises and exits
        send(self, message)

    monkeypatch.setattr(_workers._Helper, "send", failing_send)
    two = HNSWIndex(16, "cosine", M=8, ef_construction=48, seed=3)
    with pytest.warns(RuntimeWarning, match="helper stopped"):
        two.add_batch(range(1500), data, workers=1)
    assert len(requests) == 5  # the lost helper got no more work
    assert spawned[0].process.poll() is not None
    for left, right in zip(_layer_arrays(one), _layer_arrays(two), strict=True):
        np.testing.assert_array_equal(left, right)
    two.verify()


@posix_only
@pytest.mark.parametrize("how", ["no such executable", "exits at once", "no shared memory"])
def test_helpers_that_cannot_start_leave_the_build_to_the_caller(how, monkeypatch):
    data = clustered(800, 16, seed=42)
    one = HNSWIndex(16, "euclidean", M=8, ef_construction=40, seed=4)
    one.add_batch(range(800), data)
    spawned, requests = _spy_helpers(monkeypatch)
    if how == "no such executable":
        monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
        match = "did not start"
    elif how == "exits at once":
        false = shutil.which("false")
        assert false is not None
        monkeypatch.setattr(sys, "executable", false)
        match = "did not start"
    else:

        def full(fd, size):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(_workers, "_allocate", full)
        match = "no shared memory"
    two = HNSWIndex(16, "euclidean", M=8, ef_construction=40, seed=4)
    with pytest.warns(RuntimeWarning, match=match):
        two.add_batch(range(800), data, workers=2)
    assert not requests
    assert all(helper is None or helper.process.poll() is not None for helper in spawned)
    for left, right in zip(_layer_arrays(one), _layer_arrays(two), strict=True):
        np.testing.assert_array_equal(left, right)


@posix_only
def test_an_error_mid_build_stops_the_helpers(monkeypatch):
    """An exception in the caller mid-build (here from the reverse links) propagates; the
    helpers are stopped and the graph is left on private arrays, not the shared block."""
    data = clustered(1500, 16, seed=43)
    spawned, requests = _spy_helpers(monkeypatch)
    calls = []
    reverse_links = _batch._reverse_links

    def failing(*args):
        calls.append(1)
        if len(calls) == 30:  # a few full-size chunks in
            raise KeyboardInterrupt
        reverse_links(*args)

    monkeypatch.setattr(_batch, "_reverse_links", failing)
    index = HNSWIndex(16, "cosine", M=8, ef_construction=48, seed=5)
    with pytest.raises(KeyboardInterrupt):
        index.add_batch(range(1500), data, workers=2)
    assert requests and len(spawned) == 2
    assert all(helper.process.poll() is not None for helper in spawned)
    assert all(layer.adj.flags.owndata for layer in index._graph.layers)


def _short_and_long(count: int, seed: int) -> np.ndarray:
    """Clustered 16-d vectors scaled by 0.2-3x: under ``dot`` the short ones lose their
    in-links to reverse links of longer ones."""
    scale = np.random.default_rng(seed).uniform(0.2, 3.0, (count, 1)).astype(np.float32)
    return clustered(count, 16, seed=seed) * scale


def test_small_batches_and_single_adds_are_relinked_as_the_index_grows(tmp_path):
    """Inserts run the reachability repair each time an eighth of the index has been added
    since the last run: 40 batches of 50 under ``dot`` used to leave 681 of 2,000 vectors
    unreachable and 1,000 single adds 127. Only the latest inserts can be stranded now, and
    relink() (also after a load) leaves none."""
    data = _short_and_long(2000, seed=7)
    batched = HNSWIndex(16, "dot", M=16, ef_construction=64, seed=1)
    for start in range(0, 2000, 50):
        batched.add_batch(range(start, start + 50), data[start : start + 50])
    assert unreachable_nodes(batched) <= 20
    single = HNSWIndex(16, "dot", M=16, ef_construction=64, seed=1)
    for i in range(1000):
        single.add(i, data[i])
        if i in (499, 999):
            assert unreachable_nodes(single) <= 1000 // 8
    assert single.relink() >= 0
    assert unreachable_nodes(single) == 0
    single.verify()
    single.save(tmp_path / "dot.snap")
    loaded = HNSWIndex.load(tmp_path / "dot.snap")
    for i in range(1000, 1300):
        loaded.add(i, data[i])
    loaded.relink()
    assert unreachable_nodes(loaded) == 0
    loaded.verify()
    exact = FlatIndex(16, "dot")
    exact.add_batch(range(1300), data[:1300])
    queries = data[1300:1400]
    assert recall_at(loaded, exact, queries, 10, ef=128) >= 0.9


def test_workers_argument_is_checked():
    index = HNSWIndex(4, "cosine")
    for bad in (-1, 65):
        with pytest.raises(IndexUsageError, match="workers"):
            index.add_batch([1], [[1, 0, 0, 0]], workers=bad)
    for wrong in (1.0, True, "2"):
        with pytest.raises(TypeError, match="workers"):
            index.add_batch([1], [[1, 0, 0, 0]], workers=wrong)  # type: ignore[arg-type]
    assert len(index) == 0


def test_batch_built_index_takes_adds_removes_and_round_trips(tmp_path):
    """After a batch build: single adds, a second batch into the populated graph, removals
    (entry point included) keep a sound graph with recall against exact search, and a
    save/load gives back the same graph and the same results."""
    data = unit_vectors(3000, 24, seed=41)
    index = HNSWIndex(24, "cosine", M=12, ef_construction=80, seed=4)
    index.add_batch(range(2000), data[:2000], threads=2)
    for i in range(2000, 2100):
        index.add(i, data[i])
    index.add_batch(range(2100, 3000), data[2100:], threads=2)
    gone = np.random.default_rng(42).choice(3000, 300, replace=False).tolist()
    gone.append(index._idmap.ids[index._graph.entry])
    for i in gone:
        index.remove(i)
    index.verify()
    assert unreachable_nodes(index) == 0
    kept = sorted(set(range(3000)) - set(gone))
    exact = FlatIndex(24, "cosine")
    exact.add_batch(kept, data[kept])
    queries = unit_vectors(60, 24, seed=43)
    assert recall_at(index, exact, queries, 10, ef=96) >= 0.95
    path = str(tmp_path / "hnsw.snap")
    index.save(path)
    loaded = HNSWIndex.load(path)
    loaded.verify()
    assert b"".join(loaded.to_snapshot()) == b"".join(index.to_snapshot())
    for query in queries[:20]:
        assert loaded.search(query, 10, ef=64) == index.search(query, 10, ef=64)
    loaded.add_batch(range(5000, 5100), unit_vectors(100, 24, seed=44))
    loaded.verify()
    assert len(loaded) == len(kept) + 100
