"""Lock-step batch insertion into the HNSW graph (the fast path of ``add_batch``).

Theory of operation
-------------------
Inserting one node at a time spends most of its time in the Python loop of the beam
search. The batch builder instead inserts a *chunk* of up to :data:`CHUNK` new nodes at
once and runs their beam searches in lock step, as numpy operations over all the chunk's
queries (:func:`~._lockstep.beam`, whose notes tell how).

A chunk's searches and its neighbour selection can be split into contiguous parts of
rows: over a thread pool (``threads > 1``), or between this process and helper processes
(``workers > 0``, see :mod:`._workers`) -- the helpers win on CPython, where threads wait
on each other's GIL between numpy calls. A search only reads the graph and writes its own
rows of the visited bitmap, and a query's result does not depend on the queries searched
beside it, so the graph built does not depend on the split.

After the search of a layer, each node of the chunk takes ``M`` neighbours by the HNSW
heuristic, run vectorised over the closest :data:`HEURISTIC_POOL` x ``M`` candidates. The
candidates are the beam *plus* the closest other new nodes of the same chunk (so nodes of
one chunk, which cannot find each other through the graph, still link to each other).
Reverse links are then added in rounds in which every target node appears once: a list
with room appends the new node; a full list replaces its farthest neighbour when the new
node is closer. Chunks grow with the graph (a chunk is never larger than the graph it is
inserted into), so early nodes are placed as carefully as the sequential path would.

Those replacements can leave a node with no in-link at all, so no search can find it (on
clustered data with a small ``M``: a few in 2,000; under ``dot`` on vectors of unequal
norms, most of the short ones). :func:`link_unreachable` walks layer 0 from the entry
point and links every node the walk misses from its nearest reachable node;
``HNSWIndex`` runs it once the nodes inserted since its last run (by batches or one at a
time) reach 1/:data:`REPAIR_SHARE` of the index.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ._common import F32Array
from ._graph import Graph, Layer, heuristic_mask
from ._lockstep import Int64Array, SearchView, beam
from ._workers import WORKERS_MIN, Helpers

CHUNK = 128
HEURISTIC_POOL = 3
MIN_PART = 16
REPAIR_SHARE = 8  # the reachability repair runs after inserts of 1/8 of the index
REPAIR_ROUNDS = 3
_T = TypeVar("_T")


def batch_insert(
    graph: Graph, slots: Int64Array, levels: Int64Array, threads: int = 1, workers: int = 0
) -> None:
    """Insert the nodes already written at ``slots`` with the given ``levels``; with
    ``threads > 1`` the beam searches of each chunk are split over that many threads, with
    ``workers > 0`` (and at least :data:`WORKERS_MIN` nodes) between this process and that
    many helper processes."""
    graph.reserve(int(slots.max()) + 1)
    graph.ensure_layers(int(levels.max()))
    done = 0
    if graph.entry < 0:
        graph.insert(int(slots[0]), int(levels[0]))
        done = 1
    live = int((graph.levels >= 0).sum())
    graph.levels[slots[done:]] = levels[done:]
    for slot, level in zip(slots[done:].tolist(), levels[done:].tolist(), strict=True):
        for lvl in range(level + 1):
            graph.layers[lvl].attach(slot)
    visited = np.zeros((CHUNK, graph.levels.shape[0] + 1), dtype=bool)
    visited[:, -1] = True  # beam() leaves it clear again: one bitmap serves every chunk
    helpers = None
    if workers > 0 and slots.shape[0] - done >= WORKERS_MIN:
        helpers = Helpers.start(graph, workers, CHUNK)
    split = _Split(threads, helpers)
    try:
        while done < slots.shape[0]:
            size = max(1, min(CHUNK, live, slots.shape[0] - done))
            chunk = slice(done, done + size)
            _insert_chunk(graph, slots[chunk], levels[chunk], visited, split)
            done += size
            live += size
    finally:
        split.close()


def reachable(graph: Graph) -> npt.NDArray[np.bool_]:
    """Which slots a breadth-first walk of layer 0 from the entry point reaches."""
    adj = graph.layers[0].adj
    seen = np.zeros(graph.levels.shape[0], dtype=bool)
    if graph.entry < 0:
        return seen
    frontier = np.array([graph.entry], dtype=adj.dtype)
    seen[frontier] = True
    hit = np.zeros(seen.shape[0] + 1, dtype=bool)  # the last cell takes the -1 padding
    while frontier.size:
        hit[adj[frontier].ravel()] = True
        hit[-1] = False
        fresh = hit[:-1] & ~seen
        seen |= fresh
        hit[:] = False
        frontier = np.flatnonzero(fresh).astype(adj.dtype)
    return seen


def link_unreachable(graph: Graph) -> int:
    """Give every live node that layer 0 cannot reach from the entry point an in-link from
    its nearest reachable node; return how many links were added.

    A batch build can leave a few nodes with no in-link (every list that held one dropped
    it for a closer node), mostly on clustered data with a small ``M``; a search never
    finds those. Each is found again by a search for its own vector, and the first result
    with room in its list (else the nearest, losing its farthest link) links to it. A
    replaced link can strand another node, so the walk repeats, at most
    :data:`REPAIR_ROUNDS` times. Costs one walk of layer 0 when nothing is lost.
    """
    layer = graph.layers[0]
    live = graph.levels >= 0
    added = 0
    for _ in range(REPAIR_ROUNDS):
        lost = np.flatnonzero(live & ~reachable(graph))
        if not lost.size:
            break
        for slot in lost.tolist():
            found = [
                (d, n) for d, n in graph.search(graph.store.vectors[slot], graph.m) if n != slot
            ]
            if not found:
                continue
            lists = layer.adj[[n for _, n in found]]
            if (lists == slot).any():  # a node linked earlier this round leads to it
                continue
            counts = (lists >= 0).sum(axis=1)
            roomy = np.flatnonzero(counts < layer.width)
            pick = int(roomy[0]) if roomy.size else 0
            dist, host = found[pick]
            row = layer.row(host)
            col = int(counts[pick]) if roomy.size else int(np.argmax(layer.adj_d[row]))
            layer.adj[row, col] = slot
            layer.adj_d[row, col] = dist
            added += 1
    return added


def view_of(graph: Graph) -> SearchView:
    """What :func:`beam` reads of ``graph``."""
    store, layers = graph.store, graph.layers
    return SearchView(
        store.vectors,
        store.sqnorm,
        store.metric == 1,
        [layer.adj for layer in layers],
        [layer.row_of for layer in layers],
    )


class _Split:
    """Where a chunk's searches (and its heuristic rows) run: on the calling thread, on
    a pool of ``threads`` threads, or split with helper processes."""

    def __init__(self, threads: int, helpers: Helpers | None) -> None:
        self.threads = threads
        self.helpers = helpers
        self.pool = ThreadPoolExecutor(threads) if threads > 1 and helpers is None else None

    def beams(
        self,
        view: SearchView,
        queries: F32Array,
        rows: Int64Array,
        slots: Int64Array,
        entries: Int64Array,
        ef: int,
        level: int,
        visited: npt.NDArray[np.bool_],
    ) -> tuple[Int64Array, F32Array]:
        """:func:`beam` over ``rows`` (the queries of ``slots``), split into parts.

        The parts only read the graph and each writes its own rows of ``visited``; numpy
        releases the GIL in the gathers and products of a search, though threads still
        wait on each other for the Python between them (helper processes do not).
        """

        def local(a: int, b: int) -> tuple[Int64Array, F32Array]:
            return beam(view, queries, rows[a:b], entries[a:b], ef, level, visited)

        results = self._run(
            rows.shape[0], lambda a, b: ("beam", level, ef, slots[a:b], entries[a:b]), local
        )
        if len(results) == 1:
            return results[0]
        return (
            np.concatenate([ids for ids, _ in results]),
            np.concatenate([dists for _, dists in results]),
        )

    def heuristic(
        self, view: SearchView, cand: Int64Array, cand_d: F32Array, m: int
    ) -> npt.NDArray[np.bool_]:
        """:func:`heuristic_mask` over the rows of ``cand``, split into parts."""

        def local(a: int, b: int) -> npt.NDArray[np.bool_]:
            return heuristic_mask(
                view.vectors, view.sqnorm, view.euclidean, cand[a:b], cand_d[a:b], m
            )

        results = self._run(
            cand.shape[0], lambda a, b: ("heuristic", cand[a:b], cand_d[a:b], m), local
        )
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _run(
        self,
        rows: int,
        request: Callable[[int, int], tuple[object, ...]],
        local: Callable[[int, int], _T],
    ) -> list[_T]:
        """``local(a, b)`` over contiguous parts of ``rows`` rows, on the helpers (which
        are sent ``request(a, b)``) or the thread pool; the results in order."""
        if self.helpers is not None:
            return self.helpers.split(rows, request, local)
        count = min(self.threads, rows // MIN_PART)
        if count <= 1 or self.pool is None:
            return [local(0, rows)]
        bounds = np.linspace(0, rows, count + 1).astype(np.int64).tolist()
        futures = [self.pool.submit(local, a, b) for a, b in itertools.pairwise(bounds)]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        if self.helpers is not None:
            self.helpers.close()


def _insert_chunk(
    graph: Graph,
    slots: Int64Array,
    levels: Int64Array,
    visited: npt.NDArray[np.bool_],
    split: _Split,
) -> None:
    view = view_of(graph)
    queries = graph.store.vectors[slots]
    entry = np.full(slots.shape[0], graph.entry, dtype=np.int64)
    top = max(graph.max_level, int(levels.max()))
    for level in range(top, -1, -1):
        full = np.nonzero(levels >= level)[0]
        greedy = np.nonzero(levels < level)[0]
        if level <= graph.max_level:
            if greedy.size:
                ids, _ = split.beams(
                    view, queries, greedy, slots[greedy], entry[greedy], 1, level, visited
                )
                entry[greedy] = ids[:, 0]
            if full.size:
                ef = graph.ef_construction
                ids, dists = split.beams(
                    view, queries, full, slots[full], entry[full], ef, level, visited
                )
                entry[full] = ids[:, 0]
            else:
                continue
        else:
            ids = np.full((full.size, 1), -1, np.int64)
            dists = np.full((full.size, 1), np.inf, np.float32)
        _connect(graph, level, slots[full], ids, dists, split)
    if int(levels.max()) > graph.max_level:
        top_index = int(np.argmax(levels))
        graph.entry, graph.max_level = int(slots[top_index]), int(levels[top_index])


def _connect(
    graph: Graph,
    level: int,
    new: Int64Array,
    ids: Int64Array,
    dists: F32Array,
    split: _Split,
) -> None:
    """Pick each new node's neighbours (beam plus chunk peers) and link both ways; the
    heuristic's rows are split over the threads like the searches (each row is
    independent)."""
    layer = graph.layers[level]
    m = graph.m
    peers = graph.pair_distances(new)
    np.fill_diagonal(peers, np.inf)
    take = min(m, new.shape[0] - 1)
    if take > 0:
        near = np.argpartition(peers, take - 1, axis=1)[:, :take]
        ids = np.concatenate([ids, new[near]], axis=1)
        dists = np.concatenate([dists, np.take_along_axis(peers, near, axis=1)], axis=1)
    ids = np.where(np.isfinite(dists), ids, -1)
    closest = min(ids.shape[1], HEURISTIC_POOL * m)
    order = np.argsort(dists, axis=1, kind="stable")[:, :closest]
    cand = np.take_along_axis(ids, order, axis=1)
    cand_d = np.take_along_axis(dists, order, axis=1)
    kept = split.heuristic(view_of(graph), cand, cand_d, m)
    first = np.argsort(~kept, axis=1, kind="stable")[:, : layer.width]
    sel = np.take_along_axis(np.where(kept, cand, -1), first, axis=1)
    sel_d = np.take_along_axis(np.where(kept, cand_d, np.inf), first, axis=1)
    pad = layer.width - sel.shape[1]
    if pad > 0:
        sel = np.pad(sel, ((0, 0), (0, pad)), constant_values=-1)
        sel_d = np.pad(sel_d, ((0, 0), (0, pad)), constant_values=np.inf)
    rows = new if layer.row_of is None else layer.row_of[new]
    layer.adj[rows] = sel
    layer.adj_d[rows] = sel_d
    src, col = np.nonzero(sel >= 0)
    _reverse_links(layer, new[src], sel[src, col], sel_d[src, col])


def _reverse_links(layer: Layer, src: Int64Array, dst: Int64Array, dist: F32Array) -> None:
    """Add ``src`` to the list of ``dst`` for every edge, one round per repeat of a target."""
    order = np.argsort(dst, kind="stable")
    src, dst, dist = src[order], dst[order], dist[order]
    starts = np.r_[0, np.nonzero(np.diff(dst))[0] + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, dst.shape[0]]))
    rank = np.arange(dst.shape[0]) - group_start
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        pick = rank == r
        s, d, w = src[pick], dst[pick], dist[pick]
        rows = d if layer.row_of is None else layer.row_of[d]
        lists = layer.adj[rows]
        fresh = ~(lists == s[:, None]).any(axis=1)
        s, rows, w, lists = s[fresh], rows[fresh], w[fresh], lists[fresh]
        count = (lists >= 0).sum(axis=1)
        room = count < layer.width
        layer.adj[rows[room], count[room]] = s[room]
        layer.adj_d[rows[room], count[room]] = w[room]
        full = ~room
        if full.any():
            rows_f, s_f, w_f = rows[full], s[full], w[full]
            far = layer.adj_d[rows_f].argmax(axis=1)
            closer = w_f < layer.adj_d[rows_f, far]
            layer.adj[rows_f[closer], far[closer]] = s_f[closer]
            layer.adj_d[rows_f[closer], far[closer]] = w_f[closer]
