"""index-db hash index benchmarks: put, warm get, replace, delete and file size on 1M keys.

Run with `nox -s bench -- index-db` or `python bench/bench_hash.py` (set HASH_BENCH_KEYS
for another key count). Keys are 16 random bytes, values 100 bytes, the store a file in a
temporary directory with a pool large enough to keep every page warm. Each rate is the
median of ROUNDS timed passes over a random sample of SAMPLE keys; the build itself (1M
inserts into an index that starts empty, splits included) is timed once. The issue sets no
target for the hash index; the get target (300,000/s) is the B+tree's, taken as the aim.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable

from index_db.hash import HashIndex
from page_db import PageStore

KEYS = int(os.environ.get("HASH_BENCH_KEYS", "1000000"))
SAMPLE = min(KEYS, 200_000)
ROUNDS = 5
KEY_SIZE, VALUE_SIZE = 16, 100


def rate_of(count: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def median_rate(count: int, run: Callable[[], None]) -> float:
    return statistics.median(rate_of(count, run) for _ in range(ROUNDS))


def main() -> None:
    rng = random.Random(42)
    keys = list({rng.randbytes(KEY_SIZE) for _ in range(KEYS)})
    value = rng.randbytes(VALUE_SIZE)
    other = rng.randbytes(VALUE_SIZE)
    sample = rng.sample(keys, SAMPLE)
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as directory:
        path = os.path.join(directory, "hash.pages")
        store = PageStore.open(path, pool_pages=KEYS // 12 + 4096)
        index = HashIndex.create(store)
        put = index.put

        def build() -> None:
            for key in keys:
                put(key, value)

        rows.append(row(f"build: insert {len(keys):,} new keys", rate_of(len(keys), build), "/s"))
        start = time.perf_counter()
        store.checkpoint(index.root.to_bytes(4, "little"))
        rows.append(("checkpoint after the build", f"{time.perf_counter() - start:.2f} s", "", ""))
        logical = len(keys) * (KEY_SIZE + VALUE_SIZE)
        rows.append(size_row("file size / logical bytes after the build", path, logical))
        rows.append(row("reference: page-db read guard, warm", guard_rate(store, index.root), "/s"))
        get = index.get

        def gets() -> None:
            for key in sample:
                get(key)

        get_rate = median_rate(SAMPLE, gets)
        rows.append(row("get, warm, random existing keys", get_rate, "/s", 300_000))
        missing = [rng.randbytes(KEY_SIZE) for _ in range(SAMPLE)]

        def misses() -> None:
            for key in missing:
                get(key)

        rows.append(row("get, warm, absent keys", median_rate(SAMPLE, misses), "/s"))
        flip = [value, other]

        def replaces() -> None:
            new = flip.pop(0)
            flip.append(new)
            for key in sample:
                put(key, new)

        rows.append(row("put, replace existing value", median_rate(SAMPLE, replaces), "/s"))
        delete = index.delete

        def deletes_then_inserts() -> tuple[float, float]:
            deleted = rate_of(SAMPLE, lambda: [delete(k) for k in sample] and None)
            inserted = rate_of(SAMPLE, lambda: [put(k, value) for k in sample] and None)
            return deleted, inserted

        pairs = [deletes_then_inserts() for _ in range(ROUNDS)]
        rows.append(
            row("delete, random existing keys", statistics.median(p[0] for p in pairs), "/s")
        )
        rows.append(
            row(
                "put, insert into a grown index",
                statistics.median(p[1] for p in pairs),
                "/s",
                100_000,
            )
        )
        store.checkpoint(index.root.to_bytes(4, "little"))
        report = index.verify()  # the soak's end: verify() clean and the model equal
        assert report.entries == len(index) == len(keys)
        assert all(get(key) == value for key in keys), "a key lost its value"
        rows.append(
            (
                "verify() clean, every key equal to the model",
                "yes",
                "",
                f"{report.buckets:,} buckets",
            )
        )
        rows.append(size_row("file size / logical bytes after the churn", path, logical))
        stats = store.stats()
        rows.append(
            (
                "pages: buckets + overflow + directory + root",
                f"{stats['pages']:,}",
                "",
                f"global depth {report.global_depth}, {report.overflow_pages} overflow",
            )
        )
        store.close()
    print_table(rows)


def guard_rate(store: PageStore, page_id: int) -> float:
    """Enter and leave a read guard: the floor under every lookup, to scale the table by."""
    read = store.read

    def run() -> None:
        for _ in range(SAMPLE):
            with read(page_id):
                pass

    return median_rate(SAMPLE, run)


def size_row(label: str, path: str, logical: int) -> tuple[str, str, str, str]:
    size = os.path.getsize(path)
    note = f"{size / 2**20:,.0f} MiB for {logical / 2**20:,.0f} MiB (16 + 100 per key)"
    return (label, f"{size / logical:.2f}x", "", note)


def row(
    label: str, rate: float, unit: str, target: float | None = None
) -> tuple[str, str, str, str]:
    if target is None:
        return (label, f"{rate:,.0f}{unit}", "", "")
    verdict = "PASS" if rate >= target else "MISS"
    return (label, f"{rate:,.0f}{unit}", f"≥ {target:,.0f}{unit}", verdict)


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("hash index benchmark (median)", "measured", "aim", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
