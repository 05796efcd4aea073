"""The HNSW graph: layered adjacency arrays, beam search, insertion and removal.

Theory of operation
-------------------
Nodes are the slots of the shared vector matrix. Layer 0 holds every node; layer ``L``
holds the nodes whose random level is at least ``L`` (a node's level is drawn as
``floor(-ln(U) / ln(M))``, so each layer keeps about ``1/M`` of the one below).

Storage (all numpy, grown by doubling):

- ``levels[slot]``: the node's top layer, ``-1`` for a free slot;
- per layer a :class:`Layer`: ``adj`` (rows x width int32 neighbour slots, valid entries
  first, then ``-1`` padding), ``adj_d`` (the matching float32 distances from the node to
  each neighbour) and, above layer 0, ``row_of[slot]`` (the node's row in that layer, or
  ``-1``). Layer 0 is indexed by slot directly and has width ``2*M``; upper layers have
  width ``M``.

Search (:meth:`Graph.search_layer`) is the classic HNSW beam search: a min-heap of
candidates, a max-heap of the ``ef`` best found, and a visited stamp array (``stamp[slot]
== epoch``). Each expanded node's neighbours are filtered and their distances computed in
one vectorised step; only the neighbours that beat the current worst result reach the
Python heaps. ``stamp`` has one extra last cell that always equals the epoch, so the
``-1`` padding of an adjacency row indexes it and is treated as already visited. Insertion
uses this search; :class:`HNSWIndex` queries use the batched-expansion variant of
``_search`` (several nodes expanded per numpy step) on the same stamp array.

Insertion (:meth:`Graph.insert`) descends greedily from the entry point to the new node's
level, then at each layer from there down runs a beam search of width ``ef_construction``,
keeps ``M`` neighbours chosen by the HNSW heuristic (a candidate is kept only if it is
closer to the new node than to every neighbour kept so far) and links both ways; a
neighbour whose list overflows re-selects its list with the same heuristic.

Removal (:meth:`Graph.remove`) unlinks the node at once instead of leaving a tombstone:
every node that pointed at it (found by scanning the layer's adjacency) drops the link
and re-selects, by the heuristic, from its remaining neighbours plus the removed node's
neighbours. If the removed node was the entry point, the highest remaining node becomes
the entry point. The graph stays navigable and the slot is reused.
"""

from __future__ import annotations

import hashlib
import heapq
import math

import numpy as np
import numpy.typing as npt

from ._base import VectorStore
from ._common import F32Array, I32Array, VectorId

MAX_LEVEL = 32


class Layer:
    """Adjacency of one layer: rows of neighbour slots and distances."""

    __slots__ = ("adj", "adj_d", "free_rows", "row_of", "used_rows", "width")

    def __init__(self, width: int, capacity: int, *, indexed: bool) -> None:
        self.width = width
        self.adj: I32Array = np.full((capacity if not indexed else 8, width), -1, np.int32)
        self.adj_d: F32Array = np.full(self.adj.shape, np.inf, np.float32)
        self.row_of: I32Array | None = np.full(capacity, -1, np.int32) if indexed else None
        self.free_rows: list[int] = []
        self.used_rows = 0

    def grow_nodes(self, capacity: int) -> None:
        """Make room for slots up to ``capacity``."""
        if self.row_of is None:
            self.adj, self.adj_d = _grow_rows(self.adj, self.adj_d, capacity)
        elif capacity > self.row_of.shape[0]:
            grown = np.full(capacity, -1, np.int32)
            grown[: self.row_of.shape[0]] = self.row_of
            self.row_of = grown

    def row(self, slot: int) -> int:
        """The row of ``slot`` (which must be in this layer)."""
        return slot if self.row_of is None else int(self.row_of[slot])

    def attach(self, slot: int) -> int:
        """Give ``slot`` an empty row in this layer and return it."""
        if self.row_of is None:
            return slot
        if self.free_rows:
            row = self.free_rows.pop()
        else:
            row = self.used_rows
            self.used_rows += 1
            if row >= self.adj.shape[0]:
                self.adj, self.adj_d = _grow_rows(self.adj, self.adj_d, row + 1)
        self.row_of[slot] = row
        self.adj[row] = -1
        self.adj_d[row] = np.inf
        return row

    def detach(self, slot: int) -> None:
        """Clear and release the row of ``slot``."""
        row = self.row(slot)
        self.adj[row] = -1
        self.adj_d[row] = np.inf
        if self.row_of is not None:
            self.row_of[slot] = -1
            self.free_rows.append(row)

    def neighbours(self, slot: int) -> I32Array:
        """The valid neighbour slots of ``slot``."""
        row = self.adj[self.row(slot)]
        valid: I32Array = row[row >= 0]
        return valid

    def set_list(self, slot: int, ids: npt.ArrayLike, dists: npt.ArrayLike) -> None:
        """Replace the neighbour list of ``slot``."""
        row = self.row(slot)
        id_array = np.asarray(ids, dtype=np.int32)
        count = id_array.shape[0]
        self.adj[row, :count] = id_array
        self.adj[row, count:] = -1
        self.adj_d[row, :count] = dists
        self.adj_d[row, count:] = np.inf


def _grow_rows(adj: I32Array, adj_d: F32Array, rows: int) -> tuple[I32Array, F32Array]:
    if rows <= adj.shape[0]:
        return adj, adj_d
    new_rows = max(rows, adj.shape[0] * 2)
    grown = np.full((new_rows, adj.shape[1]), -1, np.int32)
    grown[: adj.shape[0]] = adj
    grown_d = np.full(grown.shape, np.inf, np.float32)
    grown_d[: adj.shape[0]] = adj_d
    return grown, grown_d


class Graph:
    """The layered HNSW graph over the slots of a :class:`VectorStore`."""

    def __init__(self, store: VectorStore, m: int, ef_construction: int, seed: int) -> None:
        self.store = store
        self.m = m
        self.m0 = 2 * m
        self.ef_construction = ef_construction
        self.level_scale = 1.0 / math.log(m)
        self.seed = seed
        capacity = store.vectors.shape[0]
        self.levels = np.full(capacity, -1, np.int8)
        self.layers: list[Layer] = [Layer(self.m0, capacity, indexed=False)]
        self.stamp = np.zeros(capacity + 1, np.int32)
        self.epoch = 0
        self.entry = -1
        self.max_level = -1

    # -- capacity and levels ------------------------------------------------------------

    def reserve(self, capacity: int) -> None:
        """Make room for slots ``< capacity`` (the store grows separately)."""
        if capacity <= self.levels.shape[0]:
            return
        capacity = max(capacity, 2 * self.levels.shape[0])
        levels = np.full(capacity, -1, np.int8)
        levels[: self.levels.shape[0]] = self.levels
        self.levels = levels
        for layer in self.layers:
            layer.grow_nodes(capacity)
        self.stamp = np.zeros(capacity + 1, np.int32)
        self.epoch = 0

    def levels_for(self, ids: list[VectorId]) -> npt.NDArray[np.int64]:
        """The level of each id: ``floor(-ln(u) / ln(M))`` with ``u`` in (0, 1] drawn from
        a keyed BLAKE2b hash of the id, so a replay of the same operations rebuilds the
        same graph."""
        key = self.seed.to_bytes(8, "little")
        draws = np.empty(len(ids), dtype=np.float64)
        for i, vector_id in enumerate(ids):
            raw = (
                (b"s" + vector_id.encode())
                if isinstance(vector_id, str)
                else (b"i" + vector_id.to_bytes(8, "little", signed=True))
            )
            digest = hashlib.blake2b(raw, digest_size=8, key=key).digest()
            draws[i] = (int.from_bytes(digest, "little") + 1) / 2.0**64
        levels = np.floor(-np.log(draws) * self.level_scale).astype(np.int64)
        return np.minimum(levels, MAX_LEVEL)

    def ensure_layers(self, level: int) -> None:
        """Create empty layers up to ``level``."""
        while len(self.layers) <= level:
            self.layers.append(Layer(self.m, self.levels.shape[0], indexed=True))

    def next_epoch(self) -> int:
        """A fresh visited stamp; the last cell (index -1) always carries it."""
        self.epoch += 1
        if self.epoch >= 2**31 - 2:
            self.stamp[:] = 0
            self.epoch = 1
        self.stamp[-1] = self.epoch
        return self.epoch

    # -- distances ------------------------------------------------------------------------

    def pair_distances(self, slots: npt.NDArray[np.int64] | I32Array) -> F32Array:
        """Internal distances between every pair of ``slots`` (a square matrix)."""
        rows = self.store.vectors[slots]
        dots = rows @ rows.T
        if self.store.metric == 1:
            norms = self.store.sqnorm[slots]
            result: F32Array = norms[:, None] + norms[None, :] - 2.0 * dots
            return result
        negated: F32Array = -dots
        return negated

    # -- search ---------------------------------------------------------------------------

    def search_layer(
        self, query: F32Array, entries: list[tuple[float, int]], ef: int, level: int
    ) -> list[tuple[float, int]]:
        """Beam search of width ``ef`` in one layer; the best found, closest first.

        Under euclidean the loop ranks by ``||v||**2 - 2 q.v`` (the distance less the
        constant ``||q||**2``, added back at the end), so one expansion costs one gather,
        one product and one subtraction.
        """
        layer = self.layers[level]
        adj, row_of = layer.adj, layer.row_of
        stamp, epoch = self.stamp, self.next_epoch()
        vectors, sqnorm = self.store.vectors, self.store.sqnorm
        euclidean = self.store.metric == 1
        offset = float(query @ query) if euclidean else 0.0
        probe = query * np.float32(2.0) if euclidean else -query
        candidates = [(d - offset, n) for d, n in entries]
        heapq.heapify(candidates)
        best = [(-d, n) for d, n in candidates]
        heapq.heapify(best)
        while len(best) > ef:
            heapq.heappop(best)
        for _, node in entries:
            stamp[node] = epoch
        full = len(best) >= ef
        worst = -best[0][0] if full else math.inf
        heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
        take = vectors.take  # a row gather by take() is faster than fancy indexing
        while candidates:
            dist, node = heappop(candidates)
            if dist > worst:
                break
            row = adj[node if row_of is None else row_of[node]]
            fresh = row[stamp[row] != epoch]
            if not fresh.size:
                continue
            stamp[fresh] = epoch
            if euclidean:
                fresh_d = sqnorm[fresh] - take(fresh, axis=0) @ probe
            else:
                fresh_d = take(fresh, axis=0) @ probe
            if full:
                keep = fresh_d < worst
                fresh = fresh[keep]
                if not fresh.size:
                    continue
                fresh_d = fresh_d[keep]
            for d, n in zip(fresh_d.tolist(), fresh.tolist(), strict=True):
                if d < worst:
                    heappush(candidates, (d, n))
                    if full:
                        heapreplace(best, (-d, n))
                        worst = -best[0][0]
                    else:
                        heappush(best, (-d, n))
                        if len(best) >= ef:
                            full, worst = True, -best[0][0]
        return sorted((offset - d, n) for d, n in best)

    def descend(self, query: F32Array, down_to: int) -> list[tuple[float, int]]:
        """Greedy search from the entry point down to layer ``down_to`` (exclusive of it)."""
        entry = self.entry
        entries = [(float(self.store.distances(query, np.array([entry]))[0]), entry)]
        for level in range(self.max_level, down_to, -1):
            entries = self.search_layer(query, entries, 1, level)
        return entries

    def search(self, query: F32Array, ef: int) -> list[tuple[float, int]]:
        """The ``ef`` nearest slots found for a prepared query, closest first."""
        if self.entry < 0:
            return []
        entries = self.descend(query, 0)
        return self.search_layer(query, entries, ef, 0)

    # -- neighbour selection --------------------------------------------------------------

    def select(self, ids: npt.NDArray[np.int64], dists: F32Array, m: int) -> npt.NDArray[np.int64]:
        """Positions (into ``ids``, sorted by ``dists``) kept by the HNSW heuristic."""
        order = np.argsort(dists, kind="stable")
        if order.shape[0] <= m:
            return order
        ids, dists = ids[order], dists[order]
        pairs = self.pair_distances(ids)
        kept: list[int] = []
        for j in range(ids.shape[0]):
            if not kept or bool((pairs[j, kept] > dists[j]).all()):
                kept.append(j)
                if len(kept) == m:
                    break
        return order[kept]

    def link(self, level: int, slot: int, new: int, dist: float) -> None:
        """Add ``new`` to the list of ``slot``, re-selecting by heuristic on overflow."""
        layer = self.layers[level]
        row = layer.row(slot)
        ids = layer.adj[row]
        count = int((ids >= 0).sum())
        if count < layer.width:
            layer.adj[row, count] = new
            layer.adj_d[row, count] = dist
            return
        all_ids = np.append(ids.astype(np.int64), new)
        all_d = np.append(layer.adj_d[row], np.float32(dist))
        kept = self.select(all_ids, all_d, layer.width)
        layer.set_list(slot, all_ids[kept], all_d[kept])

    # -- insertion and removal ------------------------------------------------------------

    def insert(self, slot: int, level: int) -> None:
        """Link the node already written at ``slot`` into the graph at ``level``."""
        self.reserve(slot + 1)
        self.ensure_layers(level)
        self.levels[slot] = level
        for lvl in range(level + 1):
            self.layers[lvl].attach(slot)
        if self.entry < 0:
            self.entry, self.max_level = slot, level
            return
        query = self.store.vectors[slot]
        entries = self.descend(query, level)
        for lvl in range(min(level, self.max_level), -1, -1):
            found = self.search_layer(query, entries, self.ef_construction, lvl)
            self.connect(lvl, slot, found)
            entries = found
        if level > self.max_level:
            self.entry, self.max_level = slot, level

    def connect(self, level: int, slot: int, found: list[tuple[float, int]]) -> None:
        """Choose the neighbours of ``slot`` among ``found`` and link both ways."""
        ids = np.array([n for _, n in found if n != slot], dtype=np.int64)
        dists = np.array([d for d, n in found if n != slot], dtype=np.float32)
        kept = self.select(ids, dists, self.m)
        self.layers[level].set_list(slot, ids[kept], dists[kept])
        for n, d in zip(ids[kept].tolist(), dists[kept].tolist(), strict=True):
            self.link(level, n, slot, d)

    def remove(self, slot: int) -> None:
        """Unlink ``slot`` from every layer and repair the lists that pointed at it."""
        level = int(self.levels[slot])
        for lvl in range(level + 1):
            self._unlink(lvl, slot)
        self.levels[slot] = -1
        if slot == self.entry:
            live = np.nonzero(self.levels >= 0)[0]
            if live.size == 0:
                self.entry, self.max_level = -1, -1
            else:
                top = int(np.argmax(self.levels[live]))
                self.entry = int(live[top])
                self.max_level = int(self.levels[self.entry])

    def _unlink(self, level: int, slot: int) -> None:
        """Drop ``slot`` from the layer; every node that linked to it re-selects its list,
        by the heuristic, from its other neighbours plus ``slot``'s (all rows at once)."""
        layer = self.layers[level]
        orphans = layer.neighbours(slot).astype(np.int64)
        layer.detach(slot)
        hit_rows = np.nonzero((layer.adj == slot).any(axis=1))[0]
        if not hit_rows.size:
            return
        pointers: npt.NDArray[np.int64] = hit_rows.astype(np.int64)
        rows = pointers
        if layer.row_of is not None:
            pointers = np.nonzero(np.isin(layer.row_of, hit_rows))[0].astype(np.int64)
            rows = layer.row_of[pointers].astype(np.int64)
        current = layer.adj[rows].astype(np.int64)
        current[current == slot] = -1
        extra = np.repeat(orphans[None, :], pointers.size, axis=0)
        known = (extra[:, :, None] == current[:, None, :]).any(axis=2)
        extra[known | (extra == pointers[:, None])] = -1
        cand = np.concatenate([current, extra], axis=1)
        dists = self._row_distances(pointers, cand)
        order = np.argsort(dists, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        dists = np.take_along_axis(dists, order, axis=1)
        store = self.store
        kept = heuristic_mask(
            store.vectors, store.sqnorm, store.metric == 1, cand, dists, layer.width
        )
        first = np.argsort(~kept, axis=1, kind="stable")[:, : layer.width]
        layer.adj[rows] = np.take_along_axis(np.where(kept, cand, -1), first, axis=1)
        layer.adj_d[rows] = np.take_along_axis(np.where(kept, dists, np.inf), first, axis=1)

    def _row_distances(self, nodes: npt.NDArray[np.int64], cand: npt.NDArray[np.int64]) -> F32Array:
        """Distance from ``nodes[i]`` to each ``cand[i, j]`` (+inf where ``cand`` is -1)."""
        store = self.store
        safe = np.maximum(cand, 0)
        dots = np.einsum("pcd,pd->pc", store.vectors[safe], store.vectors[nodes])
        if store.metric == 1:
            dists = store.sqnorm[safe] - 2.0 * dots + store.sqnorm[nodes][:, None]
        else:
            dists = -dots
        result: F32Array = np.where(cand >= 0, dists, np.inf).astype(np.float32)
        return result


def heuristic_mask(
    vectors: F32Array,
    sqnorm: F32Array,
    euclidean: bool,
    cand: npt.NDArray[np.int64],
    cand_d: F32Array,
    m: int,
) -> npt.NDArray[np.bool_]:
    """Vectorised HNSW heuristic over rows of candidates sorted by distance (``-1`` = none),
    with the store's ``vectors`` and ``sqnorm`` (read only under ``euclidean``).

    Keeps, per row, up to ``m`` candidates each closer to the row's node than to every
    candidate kept before it.
    """
    safe = np.maximum(cand, 0)
    vecs = vectors[safe]
    pairs = -np.matmul(vecs, vecs.transpose(0, 2, 1))
    if euclidean:
        norms = sqnorm[safe]
        pairs = norms[:, :, None] + norms[:, None, :] + 2.0 * pairs
    valid = cand >= 0
    kept = np.zeros(cand.shape, dtype=bool)
    count = np.zeros(cand.shape[0], dtype=np.int64)
    for j in range(cand.shape[1]):
        blocked = ((pairs[:, j, :j] <= cand_d[:, j : j + 1]) & kept[:, :j]).any(axis=1)
        ok = valid[:, j] & ~blocked & (count < m)
        kept[:, j] = ok
        count += ok
    return kept
