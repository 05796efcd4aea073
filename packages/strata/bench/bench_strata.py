"""strata engine benchmarks: the five workloads of issue 7, as one table.

Run with `nox -s bench -- strata` or `python bench/bench_strata.py` (`--quick`: a
smoke run for CI, under 40 s, on smaller data; its figures are not the issue's).
Keys are 16 random bytes, values 100 bytes (a ``bytes`` value). Every rate is the
median of several rounds unless the row says otherwise.

- cache mode (``strata.open_memory()``): autocommit ``db.kv.put`` and ``db.kv.get``.
- standard mode: 1M puts in transactions of 1,000, over enough data that background
  checkpoints run (the rate includes them: the clock stops once the last checkpoint
  started during the load has finished); then warm random gets on those 1M keys and
  100-key range scans (``db.kv.scan(start=k, limit=100)``).
- always mode: fsync latency on a shared virtual disk swings by 10x from one second
  to the next, so the targets are *ratios* measured side by side (as in wal-db's
  bench): one committing thread against raw ``os.write`` + ``os.fsync`` of a record of
  the same size on the same disk, alternating op by op; 16 threads against one
  thread, alternating in short rounds (median of the per-round ratios). Context rows:
  a two-thread lock ping-pong (one thread wake-up, the least a commit returning in its
  own thread costs) and the 16/1 rounds again with every thread on one CPU (Linux
  affinity, for that measurement only): on a virtual machine, waking a thread parked on
  an idle vCPU can cost ten times a wake on the same CPU.
- recovery: a child process writes committed operations in standard mode with
  checkpoints off, syncs the WAL and dies with ``os._exit``; each round copies the
  directory and times ``strata.open`` on the copy (WAL replay of every operation).

Data lives under ``$STRATA_BENCH_DIR`` (default: the current directory), so the disk
measured is the one the database would use.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

import strata

QUICK = "--quick" in sys.argv[1:]
VALUE = b"v" * 100
ROUNDS = 3 if QUICK else 5
CACHE_OPS = 20_000 if QUICK else 100_000  # per round
STANDARD_KEYS = 50_000 if QUICK else 1_000_000
TX_SIZE = 1000
GET_SAMPLE = 20_000 if QUICK else 100_000  # per round
SCANS = 300 if QUICK else 2000  # per round
COMMITS = 40 if QUICK else 300  # always mode: commits per thread and round, times 3
COMMIT_ROUNDS = 3 if QUICK else 7
RECOVERY_OPS = 30_000 if QUICK else 300_000
HUGE = 2**62

Row = tuple[str, str, str, "bool | None"]


def fresh_keys(rnd: random.Random, n: int) -> list[bytes]:
    return [rnd.randbytes(16) for _ in range(n)]


def median_rate(rounds: int, ops: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return ops / statistics.median(times)


def target_row(name: str, value: float, unit: str, target: float) -> Row:
    fmt = "{:,.2f}" if target < 100 else "{:,.0f}"
    return (name, f"{fmt.format(value)} {unit}", f">= {fmt.format(target)} {unit}", value >= target)


# -- cache mode -------------------------------------------------------------------------


def cache_rows(rnd: random.Random) -> list[Row]:
    with strata.open_memory() as db:
        put, get = db.kv.put, db.kv.get
        batches = iter([fresh_keys(rnd, CACHE_OPS) for _ in range(ROUNDS)])
        written: list[bytes] = []

        def puts() -> None:
            batch = next(batches)
            for key in batch:
                put(key, VALUE)
            written.extend(batch)

        put_rate = median_rate(ROUNDS, CACHE_OPS, puts)
        sample = rnd.sample(written, CACHE_OPS)

        def gets() -> None:
            for key in sample:
                get(key)

        get_rate = median_rate(ROUNDS, CACHE_OPS, gets)
        lookup = dict.fromkeys(written, VALUE).get

        def dict_gets() -> None:  # the CPU this process gets: a noise hint for the rest
            for key in sample:
                lookup(key)

        dict_rate = median_rate(ROUNDS, CACHE_OPS, dict_gets)
    return [
        target_row("cache: autocommit kv.put", put_rate, "ops/s", 100_000),
        target_row("cache: kv.get", get_rate, "ops/s", 300_000),
        (
            "  reference: dict.get on the same keys (CPU hint)",
            f"{dict_rate:,.0f} ops/s",
            "(context)",
            None,
        ),
    ]


# -- standard mode ----------------------------------------------------------------------


def timed_checkpoints(db: strata.Database) -> list[float]:
    """Record how long each checkpoint takes, background ones included (the maintenance
    thread calls ``engine.checkpoint``, so an instance attribute wraps it)."""
    engine = db._engine
    original = engine.checkpoint
    durations: list[float] = []

    def checkpoint() -> bool:
        # the engine's lock is reentrant: holding it until the duration is recorded lets
        # load_in_transactions wait for the record, not just for the checkpoint
        with engine._maint_lock:
            start = time.perf_counter()
            wrote = original()
            if wrote:
                durations.append(time.perf_counter() - start)
            return wrote

    engine.checkpoint = checkpoint  # type: ignore[method-assign]
    return durations


def load_in_transactions(db: strata.Database, keys: list[bytes]) -> tuple[float, float]:
    """Put every key in transactions of TX_SIZE; returns (seconds for the puts alone,
    seconds until the checkpoints started during the load have finished too)."""
    start = time.perf_counter()
    for first in range(0, len(keys), TX_SIZE):
        with db.transaction() as tx:
            put = tx.kv.put
            for key in keys[first : first + TX_SIZE]:
                put(key, VALUE)
    puts_done = time.perf_counter()
    with db._engine._maint_lock:  # a background checkpoint in flight holds it
        pass
    return puts_done - start, time.perf_counter() - start


def standard_rows(rnd: random.Random, base: str) -> list[Row]:
    keys = fresh_keys(rnd, STANDARD_KEYS)
    # quick: a small checkpoint_bytes so the smoke run still checkpoints in the background
    options: dict[str, Any] = {"checkpoint_bytes": 2 * 1024 * 1024} if QUICK else {}
    with tempfile.TemporaryDirectory(prefix="standard-", dir=base) as directory:
        db = strata.open(directory, **options)
        try:
            durations = timed_checkpoints(db)
            puts_s, total_s = load_in_transactions(db, keys)
            in_load = len(durations)
            rows = load_rows(len(keys), puts_s, total_s, durations, in_load)
            start = time.perf_counter()
            db.checkpoint()
            rows.append(
                (
                    "  final checkpoint (the WAL left after the load)",
                    f"{time.perf_counter() - start:.2f} s",
                    "(context)",
                    None,
                )
            )
            rows += read_rows(db, rnd, keys)
        finally:
            db.close()
    return rows


def load_rows(
    n: int, puts_s: float, total_s: float, durations: list[float], in_load: int
) -> list[Row]:
    label = f"standard: tx of {TX_SIZE:,} puts, {n:,} keys, incl. checkpoints"
    ckpt = (
        f"{in_load} in background, median {statistics.median(durations):.2f} s, "
        f"total {sum(durations[:in_load]):.1f} s"
        if in_load
        else "none ran"
    )
    return [
        target_row(label + " (single run)", n / total_s, "ops/s", 100_000),
        (
            "  same, puts alone (checkpoints overlapping)",
            f"{n / puts_s:,.0f} ops/s",
            "(context)",
            None,
        ),
        ("  checkpoints during the load", ckpt, "(context)", None),
    ]


def read_rows(db: strata.Database, rnd: random.Random, keys: list[bytes]) -> list[Row]:
    get = db.kv.get
    sample = rnd.sample(keys, min(GET_SAMPLE, len(keys)))
    for key in sample:  # warm
        get(key)

    def gets() -> None:
        for key in sample:
            get(key)

    get_rate = median_rate(ROUNDS, len(sample), gets)
    starts = rnd.sample(keys, SCANS)
    scan = db.kv.scan

    def scans() -> None:
        for key in starts:
            for _ in scan(start=key, limit=100):
                pass

    scan_rate = median_rate(ROUNDS, SCANS, scans)
    bare_rate = median_rate(ROUNDS, SCANS, bare_scans(db, starts))
    return [
        target_row(
            f"standard: kv.get, random, warm, {len(keys):,} keys", get_rate, "ops/s", 200_000
        ),
        target_row("standard: kv.scan(start=k, limit=100)", scan_rate, "scans/s", 30_000),
        (
            "  reference: same scans on the bare structures",
            f"{bare_rate:,.0f} scans/s",
            "(context)",
            None,
        ),
    ]


def bare_scans(db: strata.Database, starts: list[bytes]) -> Callable[[], None]:
    """The same scans with no engine code: slices of the scan view's parallel lists
    (sorted keys, user keys, values kept decoded) in a list comprehension — the ceiling
    of kv.scan with this memory layout."""
    list(db.kv.scan(limit=1))  # builds the view if it is missing or stale
    view = db._engine._versions.order.view
    keys, users, decoded = view.keys, view.users, view.decoded
    prefix = keys[0][:-16]  # keyspace and type tag (every key here is 16 B)
    encoded = [prefix + key for key in starts]

    def run() -> None:
        for start in encoded:
            i = bisect_left(keys, start)
            list(zip(users[i : i + 100], decoded[i : i + 100], strict=True))

    return run


# -- always mode --------------------------------------------------------------------------


def fsync_latency_ms(directory: str, size: int) -> float:
    fd = os.open(os.path.join(directory, "latency"), os.O_WRONLY | os.O_CREAT, 0o644)
    record = b"r" * size
    samples = []
    try:
        for _ in range(50 if QUICK else 200):
            os.write(fd, record)
            start = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    return statistics.median(samples) * 1000


def record_size(db: strata.Database, rnd: random.Random) -> int:
    """Bytes of one single-put commit record (what the WAL appends per kv.put)."""
    before = db._engine._wal_bytes
    for key in fresh_keys(rnd, 10):
        db.kv.put(key, VALUE)
    return (db._engine._wal_bytes - before) // 10


def one_thread_vs_raw(
    db: strata.Database, directory: str, size: int, rnd: random.Random
) -> tuple[float, float]:
    """Raw os.write + os.fsync and db.kv.put alternate op by op: both see the same
    moment of the disk, so the ratio of the two totals is stable."""
    fd = os.open(os.path.join(directory, "raw"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    record = b"r" * size
    keys = fresh_keys(rnd, COMMITS * COMMIT_ROUNDS)
    put, clock = db.kv.put, time.perf_counter
    raw_time = put_time = 0.0
    try:
        for key in keys:
            start = clock()
            os.write(fd, record)
            os.fsync(fd)
            middle = clock()
            put(key, VALUE)
            put_time += clock() - middle
            raw_time += middle - start
    finally:
        os.close(fd)
    return len(keys) / raw_time, len(keys) / put_time


def commit_rate(db: strata.Database, threads: int, per_thread: int, rnd: random.Random) -> float:
    work_keys = [fresh_keys(rnd, per_thread) for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    put = db.kv.put

    def work(keys: list[bytes]) -> None:
        barrier.wait()
        for key in keys:
            put(key, VALUE)

    pool = [threading.Thread(target=work, args=(keys,)) for keys in work_keys]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return threads * per_thread / (time.perf_counter() - start)


def handoff_us(rounds: int = 5000) -> float:
    """One thread wakes another parked on a lock and parks itself: µs per one-way handoff.

    Context for the 16-thread figure: each commit returns in its own thread, so a round
    pays at least one such wake-up per commit, one thread at a time under the GIL."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def other() -> None:
        for _ in range(rounds):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=other)
    thread.start()
    start = time.perf_counter()
    for _ in range(rounds):
        ping.release()
        pong.acquire()
    elapsed = time.perf_counter() - start
    thread.join()
    return elapsed / rounds / 2 * 1e6


@contextlib.contextmanager
def one_cpu() -> Iterator[bool]:
    """Threads started inside run on one CPU (they inherit this thread's affinity);
    yields False, changing nothing, where affinity cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        yield False
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield True
    finally:
        os.sched_setaffinity(0, before)


def group_rounds(db: strata.Database, rounds: int, rnd: random.Random) -> tuple[float, float]:
    """Alternating 1-thread and 16-thread rounds: (median 16-thread rate, median ratio)."""
    manys, ratios = [], []
    for _ in range(rounds):
        single = commit_rate(db, 1, COMMITS // 3, rnd)
        manys.append(commit_rate(db, 16, COMMITS // 3, rnd))
        ratios.append(manys[-1] / single)
    return statistics.median(manys), statistics.median(ratios)


def always_rows(rnd: random.Random, base: str) -> list[Row]:
    with (
        tempfile.TemporaryDirectory(prefix="always-", dir=base) as directory,
        strata.open(os.path.join(directory, "db"), durability="always") as db,
    ):
        size = record_size(db, rnd)
        latency = fsync_latency_ms(directory, size)
        raw, one = one_thread_vs_raw(db, directory, size, rnd)
        many, ratio = group_rounds(db, COMMIT_ROUNDS * 3, rnd)  # short rounds, ratio each
        handoff = handoff_us()
        with one_cpu() as pinned:
            one_cpu_ratio = group_rounds(db, COMMIT_ROUNDS, rnd)[1] if pinned else float("nan")
            one_cpu_handoff = handoff_us() if pinned else float("nan")
    return [
        (f"fsync latency, {size} B record (noise hint)", f"{latency:.2f} ms", "(context)", None),
        (f"raw os.write + os.fsync, {size} B", f"{raw:,.0f} ops/s", "(baseline)", None),
        ("always: kv.put, 1 thread (interleaved with raw)", f"{one:,.0f} ops/s", "", None),
        target_row("always: 1 thread / raw", one / raw, "x", 0.70),
        ("always: kv.put, 16 threads", f"{many:,.0f} ops/s", "", None),
        target_row("always: 16 threads / 1 thread", ratio, "x", 3.0),
        ("  thread handoff, lock ping-pong", f"{handoff:.1f} µs", "(context)", None),
        ("  same, both threads on one CPU", f"{one_cpu_handoff:.1f} µs", "(context)", None),
        (
            "  16 threads / 1 thread, every thread on one CPU",
            f"{one_cpu_ratio:.2f} x",
            "(context)",
            None,
        ),
    ]


# -- recovery -----------------------------------------------------------------------------

_CRASH_WRITER = f"""
import os, random, sys, strata
path, n, tx_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(5)
db = strata.open(path, checkpoint_bytes={HUGE}, checkpoint_interval=1e9)
for first in range(0, n, tx_size):
    with db.transaction() as tx:
        for _ in range(min(tx_size, n - first)):
            tx.kv.put(rnd.randbytes(16), b"v" * 100)
db._engine._disk.wal.sync()
os._exit(0)  # a crash: no checkpoint, no close
"""


def recovery_rows(base: str) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="recovery-", dir=base) as directory:
        crashed = os.path.join(directory, "crashed")
        subprocess.run(
            [sys.executable, "-c", _CRASH_WRITER, crashed, str(RECOVERY_OPS), str(TX_SIZE)],
            check=True,
            env=os.environ.copy(),
        )
        times, reports = [], []
        for round_ in range(3):
            copy = os.path.join(directory, f"copy{round_}")
            shutil.copytree(crashed, copy)
            start = time.perf_counter()
            db = strata.open(copy, checkpoint_bytes=HUGE, checkpoint_interval=1e9)
            times.append(time.perf_counter() - start)
            reports.append(db.stats()["recovery"])
            db.close()
            shutil.rmtree(copy)
    seconds = statistics.median(times)
    report = reports[times.index(seconds)]
    ops = report["replayed_ops"]
    return [
        target_row(
            f"recovery: strata.open replaying {ops:,} committed ops",
            ops / seconds,
            "ops/s",
            100_000,
        ),
        (
            f"  stats()['recovery']: {report['replayed_records']:,} records, {ops:,} ops in",
            f"{report['seconds']:.3f} s",
            f"checkpoint_version={report['checkpoint_version']}",
            None,
        ),
        ("  strata.open wall time (median of 3)", f"{seconds:.3f} s", "(context)", None),
    ]


# -- table --------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = ("benchmark (median)", "measured", "target", "met")
    cells = [
        (name, value, target, "" if met is None else ("yes" if met else "**no**"))
        for name, value, target, met in rows
    ]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(4)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> int:
    base = os.environ.get("STRATA_BENCH_DIR") or os.getcwd()
    rnd = random.Random(2026)
    started = time.perf_counter()
    rows = always_rows(rnd, base)  # first: no dirty pages from the others yet
    rows += cache_rows(rnd)
    rows += standard_rows(rnd, base)
    rows += recovery_rows(base)
    mode = "QUICK smoke run (small data; not the issue's figures)" if QUICK else "full run"
    print(f"\n### strata benchmarks — {mode}\n")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load} "
        f"(other processes share the CPUs), {time.perf_counter() - started:.0f} s\n"
    )
    print_table(rows)
    return 0 if all(met is not False for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
