"""Lock-step batch insertion into the HNSW graph (the fast path of ``add_batch``).

Theory of operation
-------------------
Inserting one node at a time spends most of its time in the Python loop of the beam
search. The batch builder instead inserts a *chunk* of up to :data:`CHUNK` new nodes at
once and runs their beam searches in lock step, as numpy operations over all the chunk's
queries: every step expands, for each query still running, its :data:`EXPAND` closest
unexpanded results (one product over all their neighbours; a few more expansions than the
one-at-a-time search makes, never fewer).

Per query the state is the beam ``W`` (``ef`` slots and distances, unsorted, padded with
``-1``/``inf``) and an ``expanded`` flag per entry; the visited set is one row of a
``chunk x (capacity + 1)`` bitmap (the last column is always set, so ``-1`` padding of an
adjacency row, which lands on the previous row's last column, reads as visited). A query
is finished when every finite entry of its beam is expanded -- exactly the stopping rule of
the sequential search, since a candidate farther than the beam's worst is never expanded.
A step's unvisited neighbours are bitmap positions (``row * width + slot``): one sort
drops the repeats (two expanded nodes can share a neighbour) and groups them by query,
division gives back the query and the slot, and only those closer than their beam's worst
are merged, compacted per query, with one ``argpartition`` per improved row.

With ``threads > 1`` the rows of a chunk are split into contiguous parts searched on a
thread pool: a search only reads the graph and writes its own rows of the bitmap, and numpy
releases the GIL in the gathers and products that dominate it. Every row's search is
independent of the others, so the graph built does not depend on the number of threads.

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
norms, most of the short ones). After a batch of at least 1/:data:`REPAIR_SHARE` of the
graph, :func:`link_unreachable` walks layer 0 from the entry point and links every node
the walk misses from its nearest reachable node.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from ._base import VectorStore
from ._common import F32Array
from ._graph import Graph, Layer, heuristic_mask

CHUNK = 128
HEURISTIC_POOL = 3
EXPAND = 4
MIN_PART = 16
GROUPED_MIN = 24  # hits per query from which _grouped_dist scores a query's run at once
REPAIR_SHARE = 8  # the reachability repair runs after a batch of at least 1/8 of the graph
REPAIR_ROUNDS = 3
Int64Array = npt.NDArray[np.int64]
_VECDOT = getattr(np, "vecdot", None)  # numpy >= 2.0


def batch_insert(graph: Graph, slots: Int64Array, levels: Int64Array, threads: int = 1) -> None:
    """Insert the nodes already written at ``slots`` with the given ``levels``; with
    ``threads > 1`` the beam searches of each chunk are split over that many threads."""
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
    visited[:, -1] = True  # _beam leaves it clear again: one bitmap serves every chunk
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        while done < slots.shape[0]:
            size = max(1, min(CHUNK, live, slots.shape[0] - done))
            chunk = slice(done, done + size)
            _insert_chunk(graph, slots[chunk], levels[chunk], visited, pool, threads)
            done += size
            live += size
    finally:
        if pool is not None:
            pool.shutdown()
    if slots.shape[0] * REPAIR_SHARE >= live:
        link_unreachable(graph)


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


def _insert_chunk(
    graph: Graph,
    slots: Int64Array,
    levels: Int64Array,
    visited: npt.NDArray[np.bool_],
    pool: ThreadPoolExecutor | None = None,
    threads: int = 1,
) -> None:
    store = graph.store
    queries = store.vectors[slots]
    entry = np.full(slots.shape[0], graph.entry, dtype=np.int64)
    top = max(graph.max_level, int(levels.max()))
    for level in range(top, -1, -1):
        full = np.nonzero(levels >= level)[0]
        greedy = np.nonzero(levels < level)[0]
        if level <= graph.max_level:
            if greedy.size:
                ids, _ = _beam(graph, queries, greedy, entry[greedy], 1, level, visited)
                entry[greedy] = ids[:, 0]
            if full.size:
                ef = graph.ef_construction
                ids, dists = _beams(
                    graph, queries, full, entry[full], ef, level, visited, pool, threads
                )
                entry[full] = ids[:, 0]
            else:
                continue
        else:
            ids = np.full((full.size, 1), -1, np.int64)
            dists = np.full((full.size, 1), np.inf, np.float32)
        _connect(graph, level, slots[full], ids, dists, pool, threads)
    if int(levels.max()) > graph.max_level:
        top_index = int(np.argmax(levels))
        graph.entry, graph.max_level = int(slots[top_index]), int(levels[top_index])


def _parts(rows: int, threads: int, pool: ThreadPoolExecutor | None) -> list[tuple[int, int]]:
    """Up to ``threads`` contiguous ``(start, end)`` parts of ``rows`` rows, each at least
    :data:`MIN_PART` long; empty when the work stays on the calling thread."""
    count = min(threads, rows // MIN_PART)
    if count <= 1 or pool is None:
        return []
    bounds = np.linspace(0, rows, count + 1).astype(np.int64).tolist()
    return list(itertools.pairwise(bounds))


def _beams(
    graph: Graph,
    queries: F32Array,
    rows: Int64Array,
    entries: Int64Array,
    ef: int,
    level: int,
    visited: npt.NDArray[np.bool_],
    pool: ThreadPoolExecutor | None,
    threads: int,
) -> tuple[Int64Array, F32Array]:
    """:func:`_beam` over ``rows``, split into up to ``threads`` contiguous parts (of at
    least :data:`MIN_PART` rows) searched on ``pool``.

    The parts only read the graph and each writes its own rows of ``visited``; numpy
    releases the GIL in the gathers and products that dominate a search.
    """
    parts = _parts(rows.shape[0], threads, pool)
    if not parts:
        return _beam(graph, queries, rows, entries, ef, level, visited)
    assert pool is not None
    futures = [
        pool.submit(_beam, graph, queries, rows[a:b], entries[a:b], ef, level, visited)
        for a, b in parts
    ]
    results = [future.result() for future in futures]
    return (
        np.concatenate([ids for ids, _ in results]),
        np.concatenate([dists for _, dists in results]),
    )


def _beam(
    graph: Graph,
    queries: F32Array,
    rows: Int64Array,
    entries: Int64Array,
    ef: int,
    level: int,
    visited: npt.NDArray[np.bool_],
    expand: int | None = None,
) -> tuple[Int64Array, F32Array]:
    """Lock-step beam search of width ``ef`` for ``queries[rows]``; results sorted.

    ``visited`` has one row per query of ``queries`` (``row * width + slot``), zero on
    entry and on return except the always-set last column. Each step expands up to
    ``expand`` closest unexpanded entries of every running beam.
    """
    store, layer = graph.store, graph.layers[level]
    euclidean = store.metric == 1
    width = visited.shape[1]
    count = rows.shape[0]
    expand = max(1, min(EXPAND if expand is None else expand, ef))
    out_ids = np.full((count, ef), -1, np.int64)
    out_d = np.full((count, ef), np.inf, np.float32)
    beam_ids = out_ids.copy()
    beam_d = out_d.copy()
    expanded = np.ones((count, ef), dtype=bool)
    beam_ids[:, 0] = entries
    beam_d[:, 0] = _dist(store, queries[rows], entries, euclidean)
    expanded[:, 0] = False
    worst = beam_d[:, 0].copy() if ef == 1 else np.full(count, np.inf, np.float32)
    active = np.arange(count)
    base = rows * width
    flat_visited = visited.ravel()
    touched = [base + entries]
    flat_visited[touched[0]] = True
    where = np.zeros(queries.shape[0], dtype=np.int64)
    where[rows] = np.arange(count)
    while active.size:
        masked = np.where(expanded, np.inf, beam_d)
        if expand == 1:
            pick = masked.argmin(axis=1)[:, None]
        else:
            pick = np.argpartition(masked, expand - 1, axis=1)[:, :expand]
        cells = _cells(pick, ef)
        chosen = np.isfinite(masked.take(cells))
        running = chosen.any(axis=1)
        if not running.all():
            stop = ~running
            out_ids[active[stop]], out_d[active[stop]] = beam_ids[stop], beam_d[stop]
            active, pick, chosen = active[running], pick[running], chosen[running]
            cells = _cells(pick, ef)
            beam_ids, beam_d = beam_ids[running], beam_d[running]
            expanded, worst, base = expanded[running], worst[running], base[running]
            if not active.size:
                break
            where[rows[active]] = np.arange(active.size)
        expanded.reshape(-1)[cells] = True  # expanded is C-contiguous: a view
        nodes = beam_ids.take(cells)
        nodes = np.where(chosen, nodes, nodes[:, :1])
        nb = layer.adj[nodes if layer.row_of is None else layer.row_of[nodes]]
        nb = nb.reshape(active.size, -1)
        flat = base[:, None] + nb
        hits = flat[~flat_visited[flat]]
        if not hits.size:
            continue
        if expand > 1:  # two expanded nodes can share a neighbour: drop the repeats
            hits.sort()  # a plain sort: np.unique's hashing is slower on these sizes
            fresh = np.empty(hits.shape[0], dtype=bool)
            fresh[0] = True
            np.not_equal(hits[1:], hits[:-1], out=fresh[1:])
            hits = hits[fresh]
        flat_visited[hits] = True
        touched.append(hits)
        query_row = hits // width
        found = hits - query_row * width
        r = where[query_row]
        found_d = _grouped_dist(store, queries, query_row, found, euclidean)
        good = found_d < worst[r]
        if not good.any():
            continue
        r, found, found_d = r[good], found[good], found_d[good]
        _merge(r, found, found_d, ef, beam_ids, beam_d, expanded, worst)
    flat_visited[np.concatenate(touched)] = False
    order = _cells(np.argsort(out_d, axis=1, kind="stable"), ef)
    return out_ids.take(order), out_d.take(order)


def _cells(cols: Int64Array, width: int) -> Int64Array:
    """Flat positions of ``row[i][cols[i]]`` in a C-contiguous array of rows of
    ``width``: ``take`` on them is ``take_along_axis`` without its per-call overhead."""
    cells: Int64Array = cols + (np.arange(cols.shape[0]) * width)[:, None]
    return cells


def _merge(
    r: Int64Array,
    found: Int64Array,
    found_d: F32Array,
    ef: int,
    beam_ids: Int64Array,
    beam_d: F32Array,
    expanded: npt.NDArray[np.bool_],
    worst: F32Array,
) -> None:
    """Merge the new candidates ``found`` (of beam row ``r``, sorted by row) into the
    beams in place: each improved row keeps its ``ef`` best, new entries unexpanded."""
    counts = np.bincount(r, minlength=beam_d.shape[0])
    rows = np.nonzero(counts)[0]
    counts = counts[rows]
    starts = np.cumsum(counts) - counts
    which = np.repeat(np.arange(rows.shape[0]), counts)
    pos = np.arange(r.shape[0]) - np.repeat(starts, counts)
    more = int(counts.max())
    new_d = np.full((rows.shape[0], more), np.inf, np.float32)
    new_ids = np.full((rows.shape[0], more), -1, np.int64)
    new_d[which, pos] = found_d
    new_ids[which, pos] = found
    all_d = np.concatenate([beam_d[rows], new_d], axis=1)
    part = _cells(np.argpartition(all_d, ef - 1, axis=1)[:, :ef], all_d.shape[1])
    all_ids = np.concatenate([beam_ids[rows], new_ids], axis=1)
    all_x = np.concatenate([expanded[rows], np.isinf(new_d)], axis=1)
    kept_d = all_d.take(part)
    beam_d[rows] = kept_d
    beam_ids[rows] = all_ids.take(part)
    expanded[rows] = all_x.take(part)
    worst[rows] = kept_d.max(axis=1)


def _rowdot(left: F32Array, right: F32Array) -> F32Array:
    """``sum(left * right, axis=1)``: numpy 2's vecdot where present (about 2x einsum)."""
    if _VECDOT is not None:
        result: F32Array = _VECDOT(left, right)
        return result
    summed: F32Array = np.einsum("ij,ij->i", left, right)
    return summed


def _grouped_dist(
    store: VectorStore,
    queries: F32Array,
    query_row: Int64Array,
    ids: Int64Array,
    euclidean: bool,
) -> F32Array:
    """Internal distance between ``queries[query_row[i]]`` and the vector of ``ids[i]``,
    where ``query_row`` is sorted (a step's hits come grouped by query).

    A query with at least :data:`GROUPED_MIN` hits has its run scored by one gather and
    one matrix-vector product: about 3x faster than gathering a copy of the query for
    every hit and taking row-wise dot products, despite a Python iteration per query. The
    queries with fewer hits (the greedy descent, a beam's last steps) are scored row-wise
    together. The choice depends only on the query's own hits, so a query's distances,
    to the last bit, do not depend on which other queries share the step.
    """
    count = ids.shape[0]
    bounds = np.flatnonzero(query_row[1:] != query_row[:-1]) + 1
    bounds = np.concatenate(([0], bounds, [count]))
    sizes = np.diff(bounds)
    big = sizes >= GROUPED_MIN
    if not big.any():
        return _dist(store, np.take(queries, query_row, axis=0), ids, euclidean)
    vectors = store.vectors
    dots = np.empty(count, dtype=np.float32)
    if not big.all():
        small = np.repeat(~big, sizes)
        dots[small] = _rowdot(
            np.take(vectors, ids[small], axis=0), np.take(queries, query_row[small], axis=0)
        )
    firsts = bounds[:-1][big]
    for a, b, row in zip(
        firsts.tolist(), bounds[1:][big].tolist(), query_row[firsts].tolist(), strict=True
    ):
        np.matmul(vectors.take(ids[a:b], axis=0), queries[row], out=dots[a:b])
    if euclidean:
        q2 = _rowdot(queries, queries)
        result: F32Array = store.sqnorm[ids] - 2.0 * dots + q2[query_row]
        return result
    np.negative(dots, out=dots)
    return dots


def _dist(store: VectorStore, queries: F32Array, ids: Int64Array, euclidean: bool) -> F32Array:
    """Row-wise internal distance between ``queries[i]`` and the vector of ``ids[i]``."""
    dots: F32Array = _rowdot(np.take(store.vectors, ids, axis=0), queries)
    if euclidean:
        q2: F32Array = _rowdot(queries, queries)
        result: F32Array = store.sqnorm[ids] - 2.0 * dots + q2
        return result
    negated: F32Array = -dots
    return negated


def _connect(
    graph: Graph,
    level: int,
    new: Int64Array,
    ids: Int64Array,
    dists: F32Array,
    pool: ThreadPoolExecutor | None = None,
    threads: int = 1,
) -> None:
    """Pick each new node's neighbours (beam plus chunk peers) and link both ways; the
    heuristic's rows are split over ``pool`` like the searches (each row is independent)."""
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
    parts = _parts(cand.shape[0], threads, pool)
    if not parts:
        kept = heuristic_mask(graph.store, cand, cand_d, m)
    else:
        assert pool is not None
        futures = [
            pool.submit(heuristic_mask, graph.store, cand[a:b], cand_d[a:b], m) for a, b in parts
        ]
        kept = np.concatenate([future.result() for future in futures])
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
