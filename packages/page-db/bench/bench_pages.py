"""page-db benchmarks: pool hit, pool miss, checkpoint vs raw write+fsync, CRC32C throughput.

Run with `nox -s bench -- page-db` or `python bench/bench_pages.py`. Prints a table of
medians with the issue's targets. Times vary with the machine; the checkpoint target is a
ratio against plain os.write + os.fsync of the same bytes measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable

import crc32c

from page_db import PageStore

ROUNDS = 7


def median_of(rounds: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(rounds))


def pool_hit_us() -> float:
    store = PageStore.memory(pool_pages=64)
    pid = store.allocate()
    store.checkpoint()
    n = 200_000

    def run() -> float:
        read = store.read
        start = time.perf_counter()
        for _ in range(n):
            with read(pid):
                pass
        return (time.perf_counter() - start) / n * 1e6

    return median_of(ROUNDS, run)


def pool_miss_us(directory: str) -> float:
    path = os.path.join(directory, "miss.pages")
    pages = 5000
    with PageStore.open(path, pool_pages=256) as store:
        ids = [store.allocate() for _ in range(pages)]
        store.checkpoint()
    store = PageStore.open(path, pool_pages=64)  # far smaller than the working set
    for pid in ids:  # warm the OS cache; every later read is still a pool miss
        with store.read(pid):
            pass

    def run() -> float:
        read = store.read
        start = time.perf_counter()
        for pid in ids:
            with read(pid):
                pass
        return (time.perf_counter() - start) / pages * 1e6

    before = store.stats()["misses"]
    result = median_of(ROUNDS, run)
    assert store.stats()["misses"] - before == ROUNDS * pages, "expected every read to miss"
    store.close()
    return result


def checkpoint_vs_raw_ms(directory: str, pages: int = 10_000) -> tuple[float, float]:
    page_size = 4096
    payload = os.urandom(page_size - 32)
    raw = os.urandom(page_size) * 1

    def run_checkpoint() -> float:
        path = os.path.join(directory, "ckpt.pages")
        if os.path.exists(path):
            os.unlink(path)
        with PageStore.open(path, pool_pages=pages + 16) as store:
            ids = [store.allocate() for _ in range(pages)]
            store.checkpoint()
            for pid in ids:
                with store.write(pid) as page:
                    page.payload[:] = payload
            start = time.perf_counter()
            store.checkpoint(b"bench")
            return (time.perf_counter() - start) * 1e3

    def run_raw() -> float:
        path = os.path.join(directory, "raw.bin")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            # Same situation as the checkpoint: the file already holds the old pages.
            for _ in range(pages):
                os.write(fd, raw)
            os.fsync(fd)
            start = time.perf_counter()
            for _ in range(pages):
                os.write(fd, raw)
            os.fsync(fd)
            return (time.perf_counter() - start) * 1e3
        finally:
            os.close(fd)

    checkpoints, raws = [], []
    for _ in range(5):  # interleaved, so both see the same disk weather
        raws.append(run_raw())
        checkpoints.append(run_checkpoint())
    return statistics.median(checkpoints), statistics.median(raws)


def crc_mb_per_s(size: int) -> tuple[float, float]:
    data = os.urandom(size)
    n = max(1, (64 << 20) // size)

    def rate(fn: Callable[[bytes], int]) -> float:
        def run() -> float:
            start = time.perf_counter()
            for _ in range(n):
                fn(data)
            return n * size / (time.perf_counter() - start) / 1e6

        return median_of(5, run)

    return rate(crc32c.crc32c), rate(zlib.crc32)


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as directory:
        hit = pool_hit_us()
        rows.append(
            ("pool hit: read guard enter+exit", f"{hit:.2f} µs", "≤ 1.5 µs", ok(hit <= 1.5))
        )
        miss = pool_miss_us(directory)
        rows.append(
            (
                "pool miss: 4 KiB from OS cache, CRC verified",
                f"{miss:.2f} µs",
                "≤ 20 µs",
                ok(miss <= 20),
            )
        )
        ckpt, raw = checkpoint_vs_raw_ms(directory)
        ratio = ckpt / raw
        rows.append(("checkpoint of 10,000 dirty 4 KiB pages", f"{ckpt:.1f} ms", "", ""))
        rows.append(("os.write + fsync of the same 40 MB", f"{raw:.1f} ms", "", ""))
        rows.append(
            ("  ratio checkpoint / raw (same run)", f"{ratio:.2f}x", "≤ 2x", ok(ratio <= 2))
        )
    for size in (4096, 1 << 20):
        fast, slow = crc_mb_per_s(size)
        label = "4 KiB" if size == 4096 else "1 MiB"
        rows.append(
            (
                f"CRC32C, {label} buffers (crc32c {'hw' if crc32c.hardware_based else 'sw'})",
                f"{fast:,.0f} MB/s",
                "",
                "",
            )
        )
        rows.append(
            (
                f"zlib.crc32, {label} buffers",
                f"{slow:,.0f} MB/s",
                "",
                f"{fast / slow:.1f}x slower"
                if slow > fast
                else f"crc32c {fast / slow:.1f}x faster",
            )
        )
    print_table(rows)


def ok(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("benchmark (median)", "measured", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
