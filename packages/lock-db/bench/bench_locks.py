"""lock-db benchmarks: uncontended cost, deadlock detection latency, throughput under contention.

Run with `python packages/lock-db/bench/bench_locks.py` (or `nox -s bench -- lock-db`).
Prints a markdown table of medians with the issue's targets:

- uncontended acquire + release: <= 3 us per pair (median of 9 runs of 100,000 pairs,
  timed with time.perf_counter_ns; the best run is shown beside it, since other load on
  the machine inflates every run), for a resource, a key and a range, by an owner that
  already holds a lock (a transaction in flight) and by an owner seen for the first time;
- deadlock detection: time from the call that closes a 2-cycle to the moment the victim
  (another, waiting thread) has its DeadlockError: <= 100 ms;
- contention: 8 and 16 threads, each running transactions of 4 key locks taken in random
  order (75% S, 25% X) on a hot set of 8 keys or a spread set of 10,000 keys, for a fixed
  time; reported: granted locks per second, committed transactions per second, p50 and
  p99 latency of acquire_key calls, and how many transactions ended in a deadlock or a
  timeout (1 s).

`--quick` shortens every measurement (for a smoke run). Times vary with the machine and
with whatever else runs on it; the table says which machine ran it.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable

from lock_db import DeadlockError, LockManager, LockMode, LockTimeoutError

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 9
PAIRS = 20_000 if QUICK else 100_000
CONTENTION_SECONDS = 0.5 if QUICK else 3.0
X, S = LockMode.X, LockMode.S


def us_per_pair(loop: Callable[[int], int]) -> tuple[float, float]:
    """Median and best over ROUNDS runs of ``loop(PAIRS)`` (elapsed ns), per pair, in µs."""
    results = []
    for _ in range(ROUNDS):
        gc.collect()
        results.append(loop(PAIRS) / PAIRS / 1000)
    return statistics.median(results), min(results)


def resource_pairs(fresh_owner: bool) -> Callable[[int], int]:
    locks = LockManager()
    if not fresh_owner:
        locks.acquire("tx", "table", LockMode.IX)  # the owner is mid-transaction

    def loop(n: int) -> int:
        acquire, release = locks.acquire, locks.release
        start = time.perf_counter_ns()
        for _ in range(n):
            acquire("tx", "row", X)
            release("tx", "row")
        return time.perf_counter_ns() - start

    return loop


def key_pairs() -> Callable[[int], int]:
    locks = LockManager()
    locks.acquire("tx", "table", LockMode.IX)
    locks.acquire_key("tx", "users", b"someone else", S)  # the space exists

    def loop(n: int) -> int:
        acquire, release = locks.acquire_key, locks.release_key
        start = time.perf_counter_ns()
        for _ in range(n):
            acquire("tx", "users", b"alice", X)
            release("tx", "users", b"alice")
        return time.perf_counter_ns() - start

    return loop


def range_pairs() -> Callable[[int], int]:
    locks = LockManager()
    locks.acquire("tx", "table", LockMode.IX)
    locks.acquire_key("other", "users", b"zed", X)  # one unrelated key lock in the space

    def loop(n: int) -> int:
        acquire, release = locks.acquire_range, locks.release_range
        start = time.perf_counter_ns()
        for _ in range(n):
            acquire("tx", "users", b"a", b"m", S)
            release("tx", "users", b"a", b"m")
        return time.perf_counter_ns() - start

    return loop


def try_pairs() -> Callable[[int], int]:
    locks = LockManager()
    locks.acquire("tx", "table", LockMode.IX)

    def loop(n: int) -> int:
        attempt, release = locks.try_acquire, locks.release
        start = time.perf_counter_ns()
        for _ in range(n):
            attempt("tx", "row", X)
            release("tx", "row")
        return time.perf_counter_ns() - start

    return loop


def reentrant_pairs() -> Callable[[int], int]:
    locks = LockManager()
    locks.acquire("tx", "row", X)

    def loop(n: int) -> int:
        acquire, release = locks.acquire, locks.release
        start = time.perf_counter_ns()
        for _ in range(n):
            acquire("tx", "row", S)
            release("tx", "row")
        return time.perf_counter_ns() - start

    return loop


def deadlock_latency_ms(samples: int) -> list[float]:
    """Closing call start -> victim's DeadlockError, for a victim parked in another thread."""
    latencies = []
    for i in range(samples):
        locks = LockManager()
        locks.acquire("old", "r1", X)
        locks.acquire("young", "r2", X)
        caught = threading.Event()
        seen_at: list[float] = []

        def victim(
            locks: LockManager = locks,
            caught: threading.Event = caught,
            seen_at: list[float] = seen_at,
        ) -> None:
            try:
                locks.acquire("young", "r1", X)
            except DeadlockError:
                seen_at.append(time.perf_counter())
                caught.set()

        thread = threading.Thread(target=victim)
        thread.start()
        while "young" not in locks.wait_for_graph():
            time.sleep(0.0002)
        closer = threading.Thread(target=locks.acquire, args=("old", "r2", X))
        start = time.perf_counter()
        closer.start()
        if not caught.wait(10):
            raise RuntimeError(f"sample {i}: deadlock not detected within 10 s")
        latencies.append((seen_at[0] - start) * 1000)
        locks.release_all("young")
        closer.join()
        thread.join()
    return latencies


def contention(threads: int, keys: int) -> dict[str, float]:
    locks = LockManager()
    deadline = time.monotonic() + CONTENTION_SECONDS
    start_gate = threading.Barrier(threads + 1)
    waits: list[list[int]] = [[] for _ in range(threads)]
    tallies = [[0, 0, 0, 0] for _ in range(threads)]  # grants, commits, deadlocks, timeouts

    def worker(index: int) -> None:
        rng = random.Random(index)
        lat, tally = waits[index], tallies[index]
        acquire = locks.acquire_key
        attempt = 0
        start_gate.wait()
        while time.monotonic() < deadline:
            attempt += 1
            owner = (index, attempt)
            try:
                for key in rng.sample(range(keys), 4):
                    mode = X if rng.random() < 0.25 else S
                    began = time.perf_counter_ns()
                    acquire(owner, "bench", key.to_bytes(4, "big"), mode, timeout=1.0)
                    lat.append(time.perf_counter_ns() - began)
                    tally[0] += 1
                tally[1] += 1
            except DeadlockError:
                tally[2] += 1
            except LockTimeoutError:
                tally[3] += 1
            locks.release_all(owner)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    start_gate.wait()
    began = time.monotonic()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began
    every = sorted(ns for per_thread in waits for ns in per_thread)
    grants, commits, deadlocks, timeouts = (sum(t[i] for t in tallies) for i in range(4))
    return {
        "locks_per_s": grants / elapsed,
        "commits_per_s": commits / elapsed,
        "p50_us": every[len(every) // 2] / 1000 if every else 0.0,
        "p99_us": every[min(len(every) - 1, int(len(every) * 0.99))] / 1000 if every else 0.0,
        "deadlocks": deadlocks,
        "timeouts": timeouts,
    }


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []

    def uncontended(label: str, loop: Callable[[int], int], target: bool = True) -> None:
        value, best = us_per_pair(loop)
        rows.append(
            (
                label,
                f"{value:.2f} µs (best run {best:.2f})",
                "≤ 3 µs" if target else "",
                ok(value <= 3) if target else "",
            )
        )

    uncontended(
        "uncontended acquire + release, resource (owner in a transaction)", resource_pairs(False)
    )
    uncontended(
        "uncontended acquire + release, resource (owner seen first time)", resource_pairs(True)
    )
    uncontended("uncontended acquire_key + release_key", key_pairs())
    uncontended("uncontended acquire_range + release_range", range_pairs())
    uncontended("try_acquire + release, resource", try_pairs(), target=False)
    uncontended("re-entrant acquire + release (lock already held)", reentrant_pairs(), target=False)

    latencies = deadlock_latency_ms(10 if QUICK else 50)
    worst = max(latencies)
    rows.append(
        (
            "deadlock detection, 2-cycle, victim parked in another thread (median)",
            f"{statistics.median(latencies):.3f} ms",
            "≤ 100 ms",
            ok(worst <= 100),
        )
    )
    rows.append(
        (f"  same, worst of {len(latencies)}", f"{worst:.3f} ms", "≤ 100 ms", ok(worst <= 100))
    )

    for threads in (8, 16):
        for label, keys in (("hot, 8 keys", 8), ("spread, 10,000 keys", 10_000)):
            result = contention(threads, keys)
            rows.append(
                (
                    f"{threads} threads, {label}: throughput",
                    f"{result['locks_per_s']:,.0f} locks/s, {result['commits_per_s']:,.0f} tx/s",
                    "reported",
                    "",
                )
            )
            rows.append(
                (
                    f"{threads} threads, {label}: acquire latency p50 / p99",
                    f"{result['p50_us']:,.1f} / {result['p99_us']:,.1f} µs",
                    "reported",
                    f"{result['deadlocks']:,} deadlocks, {result['timeouts']:,} timeouts",
                )
            )
    print(
        f"lock-db benchmarks — Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}{' (quick)' if QUICK else ''}\n"
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
