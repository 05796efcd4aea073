"""Shared helpers of the vector-index tests: data, a numpy reference, graph reachability."""

from __future__ import annotations

import numpy as np

from index_db.vector import FlatIndex, HNSWIndex

METRICS = ("cosine", "euclidean", "dot")


def unit_vectors(count: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((count, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def clustered(count: int, dim: int, seed: int = 0, clusters: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) * 4
    labels = rng.integers(0, clusters, count)
    return (centres[labels] + rng.standard_normal((count, dim))).astype(np.float32)


def reference_scores(metric: str, data: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Scores (higher is closer) computed the obvious way, in float64."""
    data64, q64 = data.astype(np.float64), query.astype(np.float64)
    if metric == "cosine":
        return (data64 @ q64) / (np.linalg.norm(data64, axis=1) * np.linalg.norm(q64))
    if metric in ("euclidean", "l2"):
        return -np.linalg.norm(data64 - q64, axis=1)
    return data64 @ q64


def recall_at(
    index: HNSWIndex, exact: FlatIndex, queries: np.ndarray, k: int, **kw: object
) -> float:
    hits = 0
    for query in queries:
        got = {i for i, _ in index.search(query, k, **kw)}  # type: ignore[arg-type]
        want = {i for i, _ in exact.search(query, k)}
        hits += len(got & want)
    return hits / (k * len(queries))


def unreachable_nodes(index: HNSWIndex) -> int:
    """How many live nodes a breadth-first walk of layer 0 from the entry point misses."""
    graph = index._graph
    live = graph.levels >= 0
    if graph.entry < 0:
        return 0
    adj = graph.layers[0].adj
    seen = np.zeros(live.shape[0], dtype=bool)
    frontier = np.array([graph.entry])
    seen[frontier] = True
    while frontier.size:
        nxt = adj[frontier].ravel()
        nxt = np.unique(nxt[nxt >= 0])
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        frontier = nxt
    return int((live & ~seen).sum())
