"""Same-run A/B of the HNSW batch build: the builder before the lock-step rework (loaded
from a copy of the old ``_batch.py``) against the current one, on the data of
bench_vector.py, then the query ladder of each index with the queries interleaved, so
that a shared machine's load falls on both sides alike.

Usage: ``python bench/ab_vector_build.py OLD_BATCH_PY`` (env BENCH_VECTOR_N, default
100000). Not part of the regular benchmark run: it needs the old file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from bench_vector import DIM, EF_LADDER, QUERIES, K, recall, unit

from index_db import FlatIndex, HNSWIndex
from index_db.vector import _hnsw


def main() -> None:
    spec = importlib.util.spec_from_file_location("index_db.vector._batch_old", sys.argv[1])
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    current = _hnsw.batch_insert
    count = int(os.environ.get("BENCH_VECTOR_N", "100000"))
    data, queries = unit(count, 0), unit(QUERIES, 1)
    flat = FlatIndex(DIM, "cosine")
    flat.add_batch(range(count), data)
    truth = [[i for i, _ in flat.search(q, K)] for q in queries]
    setups = [
        ("old builder, M=32, ef_construction=128, 1 thread", old, 128, 1),
        ("new builder, M=32, ef_construction=128, 1 thread", None, 128, 1),
        ("new builder, M=32, ef_construction=64, 2 threads", None, 64, 2),
    ]
    built = []
    for label, module, efc, threads in setups:
        if module is not None:
            _hnsw.batch_insert = lambda g, s, lv, t, m=module: m.batch_insert(g, s, lv)  # type: ignore[assignment]
        else:
            _hnsw.batch_insert = current
        index = HNSWIndex(DIM, "cosine", M=32, ef_construction=efc)
        start, cpu = time.perf_counter(), time.process_time()
        index.add_batch(range(count), data, threads=threads)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"{label}: {count / wall:,.0f} vectors/s ({wall:.0f} s wall, {cpu:.0f} s CPU)",
              flush=True)  # fmt: skip
        built.append((label, index))
    _hnsw.batch_insert = current
    for ef in EF_LADDER:
        times: list[list[float]] = [[] for _ in built]
        found: list[list[list[object]]] = [[] for _ in built]
        for query in queries:
            for n, (_, index) in enumerate(built):
                start = time.perf_counter()
                result = index.search(query, K, ef=ef)
                times[n].append(time.perf_counter() - start)
                found[n].append([i for i, _ in result])
        cells = [
            f"{np.median(t) * 1e3:.2f} ms r={recall(f, truth):.3f}"
            for t, f in zip(times, found, strict=True)
        ]
        print(f"ef={ef}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
