"""The lock-step beam search of the HNSW batch builder: many queries, one layer, numpy.

Theory of operation
-------------------
:func:`beam` runs the beam searches of a chunk of queries in lock step, as numpy
operations over all of them: every step expands, for each query still running, its
:data:`EXPAND` closest unexpanded results (one gather of all their neighbour lists; a few
more expansions than the one-at-a-time search makes, never fewer).

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

Distances (:func:`grouped_dist`): a query with many hits in a step has them scored by one
gather and one matrix-vector product (BLAS, with the gathered block still in cache); the
queries with few hits are scored together row-wise. Which form scores a query depends only
on that query's hits, so its distances -- to the last bit -- do not depend on the other
queries searched beside it: any split of a chunk into parts (threads, helper processes)
builds the same graph.

The search reads the graph only through a :class:`SearchView` (vectors, squared norms and
each layer's adjacency), which a helper process builds over shared memory.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._common import F32Array, I32Array

EXPAND = 8
GROUPED_MIN = 24  # hits per query from which grouped_dist scores a query's run at once
Int64Array = npt.NDArray[np.int64]
_VECDOT = getattr(np, "vecdot", None)  # numpy >= 2.0


class SearchView(NamedTuple):
    """What a lock-step search reads: the vectors, their squared norms, whether the metric
    is euclidean, and per layer the adjacency rows and (above layer 0) the row of each
    slot."""

    vectors: F32Array
    sqnorm: F32Array
    euclidean: bool
    adj: list[I32Array]
    row_of: list[I32Array | None]


def beam(
    view: SearchView,
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
    adj, row_of = view.adj[level], view.row_of[level]
    width = visited.shape[1]
    count = rows.shape[0]
    expand = max(1, min(EXPAND if expand is None else expand, ef))
    out_ids = np.full((count, ef), -1, np.int64)
    out_d = np.full((count, ef), np.inf, np.float32)
    beam_ids = out_ids.copy()
    beam_d = out_d.copy()
    expanded = np.ones((count, ef), dtype=bool)
    beam_ids[:, 0] = entries
    beam_d[:, 0] = dist(view, queries[rows], entries)
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
        nb = adj[nodes if row_of is None else row_of[nodes]]
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
        found_d = grouped_dist(view, queries, query_row, found)
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


def rowdot(left: F32Array, right: F32Array) -> F32Array:
    """``sum(left * right, axis=1)``: numpy 2's vecdot where present (about 2x einsum)."""
    if _VECDOT is not None:
        result: F32Array = _VECDOT(left, right)
        return result
    summed: F32Array = np.einsum("ij,ij->i", left, right)
    return summed


def grouped_dist(
    view: SearchView, queries: F32Array, query_row: Int64Array, ids: Int64Array
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
        return dist(view, np.take(queries, query_row, axis=0), ids)
    vectors = view.vectors
    dots = np.empty(count, dtype=np.float32)
    if not big.all():
        small = np.repeat(~big, sizes)
        dots[small] = rowdot(
            np.take(vectors, ids[small], axis=0), np.take(queries, query_row[small], axis=0)
        )
    firsts = bounds[:-1][big]
    for a, b, row in zip(
        firsts.tolist(), bounds[1:][big].tolist(), query_row[firsts].tolist(), strict=True
    ):
        np.matmul(vectors.take(ids[a:b], axis=0), queries[row], out=dots[a:b])
    if view.euclidean:
        q2 = rowdot(queries, queries)
        result: F32Array = view.sqnorm[ids] - 2.0 * dots + q2[query_row]
        return result
    np.negative(dots, out=dots)
    return dots


def dist(view: SearchView, queries: F32Array, ids: Int64Array) -> F32Array:
    """Row-wise internal distance between ``queries[i]`` and the vector of ``ids[i]``."""
    dots: F32Array = rowdot(np.take(view.vectors, ids, axis=0), queries)
    if view.euclidean:
        q2: F32Array = rowdot(queries, queries)
        result: F32Array = view.sqnorm[ids] - 2.0 * dots + q2
        return result
    negated: F32Array = -dots
    return negated
