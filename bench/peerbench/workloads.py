"""What is measured, engine by engine, on identical data.

Every workload takes an open :class:`~peerbench.engines.Engine` and returns a
:class:`Figure`. Operation lists (keys, values, op codes) are built before the clock
starts, so the timed loop is the engine's calls and nothing else; a loop also stops at
its time budget (the rate is then over the operations it did), so a slow engine costs
minutes, not hours. Reads check their answers: a missing record fails the workload.

The main sequence (:func:`main_sequence`) runs in one child process per engine:

1. ``load``: records ``0..N-1`` in key order, ``write_batch`` of 10,000, then ``flush``
   (the engine's own "make it durable", e.g. a checkpoint); the rate includes the flush.
2. ``space``: the engine is closed and its directory measured: bytes on disk per logical
   byte (16-byte key + 100-byte value per record). Then it is reopened.
3. ``put_batch``: random existing records overwritten, ``write_batch`` of 1,000.
4. ``get``: uniform random gets, after an untimed pass over the same keys (warm).
5. ``scan_all``: every record in key order. 6. ``scan_100``: 100 records from a random key.
7. YCSB core mixes over a scrambled Zipfian, each operation its own commit: ``ycsb_c``
   (100% read), ``ycsb_b`` (95% read, 5% update), ``ycsb_a`` (50/50), ``ycsb_f`` (50% read,
   50% read-modify-write in one transaction), ``ycsb_e`` (95% scans of 1-100 records, 5%
   inserts of new records after the last key).

:func:`commit_curve` (durable single-put commits from 1..16 threads) and the crash
recovery (:func:`crash_child`, :func:`recover`) run in child processes of their own.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import data
from .engines import Engine, Unsupported

LOAD_BATCH = 10_000
PUT_BATCH = 1_000
SCAN_LENGTH = 100
CHUNK = 256  # operations between two looks at the clock


@dataclass(frozen=True)
class Scale:
    """How much work each workload does at one data size."""

    records: int
    ops: int  # per random-get, random-put and YCSB workload (capped by the budget)
    scans: int  # 100-record range scans
    budget: float  # seconds a timed loop may run before it stops early
    commit_seconds: float  # per thread count, durable commits
    crash_tail: int  # single puts after the load, before the simulated crash
    threads: tuple[int, ...] = (1, 2, 4, 8, 16)


SCALES: dict[str, Scale] = {
    "tiny": Scale(2_000, 2_000, 200, 2.0, 0.2, 100, (1, 4)),  # the harness's own tests
    "quick": Scale(20_000, 20_000, 2_000, 5.0, 0.5, 500, (1, 16)),
    "check": Scale(20_000, 40_000, 4_000, 5.0, 0.5, 500, (1, 16)),
    "100k": Scale(100_000, 100_000, 10_000, 20.0, 2.0, 5_000),
    "1m": Scale(1_000_000, 200_000, 20_000, 30.0, 3.0, 10_000),
    "10m": Scale(10_000_000, 200_000, 20_000, 30.0, 3.0, 10_000),
}


@dataclass
class Figure:
    """One measured figure: ``value`` in ``unit``; ``detail`` says how it was obtained."""

    value: float
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class WrongAnswer(Exception):  # noqa: N818 - "raise WrongAnswer(...)"
    """An engine returned something other than what was written."""


def _rate(done: int, seconds: float, unit: str, **detail: Any) -> Figure:
    return Figure(done / seconds, unit, {"ops": done, "seconds": round(seconds, 4), **detail})


def _timed(
    chunks: Sequence[Sequence[Any]], run: Callable[[Sequence[Any]], None], budget: float
) -> tuple[int, float]:
    """Run ``run(chunk)`` over ``chunks`` until done or past ``budget``: (ops, seconds)."""
    done = 0
    start = time.perf_counter()
    for chunk in chunks:
        run(chunk)
        done += len(chunk)
        if time.perf_counter() - start > budget:
            break
    return done, time.perf_counter() - start


def _chunked(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def directory_bytes(directory: Path) -> int:
    """Bytes the files under ``directory`` occupy on disk (allocated blocks, like du)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:  # removed while walking
                continue
    return total


# -- the main sequence -------------------------------------------------------------------


def load(engine: Engine, scale: Scale) -> Figure:
    start = time.perf_counter()
    for batch in data.batches(0, scale.records, LOAD_BATCH):
        engine.write_batch(batch)
    engine.flush()
    return _rate(scale.records, time.perf_counter() - start, "records/s")


def space(directory: Path, scale: Scale) -> Figure:
    """Bytes on disk per logical byte of the records in ``directory``."""
    used = directory_bytes(directory)
    logical = scale.records * data.RECORD_BYTES
    return Figure(used / logical, "x", {"bytes": used, "logical_bytes": logical})


@dataclass
class Prepared:
    """An operation-list workload, built before the clock starts.

    ``execute(engine, chunk)`` runs one chunk and returns how many answers were wrong;
    the rate counts ``len(chunk)`` per chunk in ``unit``. ``warm`` runs every chunk once,
    untimed, before measuring; ``probe`` is called first so an ``Unsupported`` engine
    fails before any timing.
    """

    chunks: list[Sequence[Any]]
    execute: Callable[[Engine, Sequence[Any]], int]
    unit: str
    wrong: str
    warm: bool = False
    probe: Callable[[Engine], None] | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def run_prepared(engine: Engine, prepared: Prepared, budget: float) -> Figure:
    """Time ``prepared`` on ``engine`` (stopping at ``budget`` seconds)."""
    if prepared.probe:
        prepared.probe(engine)
    if prepared.warm:
        for chunk in prepared.chunks:
            prepared.execute(engine, chunk)
    wrong = 0

    def run(chunk: Sequence[Any]) -> None:
        nonlocal wrong
        wrong += prepared.execute(engine, chunk)

    done, seconds = _timed(prepared.chunks, run, budget)
    if wrong:
        raise WrongAnswer(prepared.wrong.format(wrong=wrong, done=done))
    return _rate(done, seconds, prepared.unit, **prepared.detail)


def _write(engine: Engine, chunk: Sequence[Any]) -> int:
    engine.write_batch(chunk)
    return 0


def prepare_put_batch(scale: Scale, rng: np.random.Generator) -> Prepared:
    indexes = data.uniform(rng, scale.records, scale.ops)
    batches: list[Sequence[Any]] = [
        [(data.key(i), data.value(i, 1)) for i in indexes[low : low + PUT_BATCH]]
        for low in range(0, len(indexes), PUT_BATCH)
    ]
    return Prepared(batches, _write, "records/s", "", detail={"batch": PUT_BATCH})


def _check_gets(engine: Engine, keys: Sequence[bytes]) -> int:
    get = engine.get
    missing = 0
    for key in keys:
        if get(key) is None:
            missing += 1
    return missing


def prepare_get(scale: Scale, rng: np.random.Generator) -> Prepared:
    keys = [data.key(i) for i in data.uniform(rng, scale.records, scale.ops)]
    wrong = "{wrong} of {done} gets found nothing for a loaded key"
    return Prepared(_chunked(keys), _check_gets, "ops/s", wrong, warm=True)


def scan_all(engine: Engine, scale: Scale) -> Figure:
    start = time.perf_counter()
    count = engine.scan_all()
    seconds = time.perf_counter() - start
    if count < scale.records:
        raise WrongAnswer(f"full scan returned {count} records, {scale.records} were loaded")
    return _rate(count, seconds, "records/s")


def _short_scans(engine: Engine, starts: Sequence[bytes]) -> int:
    scan = engine.scan
    short = 0
    for start in starts:
        if len(scan(start, SCAN_LENGTH)) != SCAN_LENGTH:
            short += 1
    return short


def prepare_scan_100(scale: Scale, rng: np.random.Generator) -> Prepared:
    # starts low enough that every scan returns a full 100 records
    last = max(1, scale.records - SCAN_LENGTH)
    starts = [data.key(i) for i in data.uniform(rng, last, scale.scans)]
    wrong = "{wrong} of {done} range scans returned fewer than 100 records"
    return Prepared(_chunked(starts, 16), _short_scans, "scans/s", wrong, detail={"length": 100})


READ, UPDATE, RMW, SCAN, INSERT = range(5)
YCSB_MIXES: dict[str, dict[int, float]] = {
    "ycsb_c": {READ: 1.0},
    "ycsb_b": {READ: 0.95, UPDATE: 0.05},
    "ycsb_a": {READ: 0.5, UPDATE: 0.5},
    "ycsb_f": {READ: 0.5, RMW: 0.5},
    "ycsb_e": {SCAN: 0.95, INSERT: 0.05},
}


def ycsb_operations(
    mix: dict[int, float], records: int, count: int, rng: np.random.Generator
) -> list[tuple[int, bytes, Any]]:
    """The operation list of one YCSB mix: ``(code, key, argument)``."""
    codes = rng.choice(list(mix), size=count, p=list(mix.values()))
    targets = data.zipfian(rng, records, count)
    lengths = rng.integers(1, SCAN_LENGTH + 1, size=count)
    operations: list[tuple[int, bytes, Any]] = []
    inserted = records
    for code, target, length in zip(codes.tolist(), targets, lengths.tolist(), strict=True):
        if code == READ:
            operations.append((READ, data.key(target), None))
        elif code == SCAN:
            operations.append((SCAN, data.key(target), length))
        elif code == INSERT:
            operations.append((INSERT, data.key(inserted), data.value(inserted)))
            inserted += 1
        else:
            new = data.value(target, 2)
            argument = new if code == UPDATE else (lambda old, new=new: new)
            operations.append((code, data.key(target), argument))
    return operations


def _run_ycsb(engine: Engine, chunk: Sequence[tuple[int, bytes, Any]]) -> int:
    get, put, rmw, scan = engine.get, engine.put, engine.read_modify_write, engine.scan
    missing = 0
    for code, key, argument in chunk:
        if code == READ:
            if get(key) is None:
                missing += 1
        elif code in (UPDATE, INSERT):
            put(key, argument)
        elif code == RMW:
            rmw(key, argument)
        else:
            scan(key, argument)
    return missing


def _ycsb_probe(mix: dict[int, float]) -> Callable[[Engine], None]:
    def probe(engine: Engine) -> None:
        if SCAN in mix:
            engine.scan(data.key(0), 1)
        if RMW in mix:
            engine.read_modify_write(data.key(0), lambda old: old or b"")

    return probe


def prepare_ycsb(name: str, scale: Scale, rng: np.random.Generator) -> Prepared:
    mix = YCSB_MIXES[name]
    operations = ycsb_operations(mix, scale.records, scale.ops, rng)
    wrong = "{wrong} YCSB reads found nothing for a loaded key"
    detail = {"mix": {str(k): v for k, v in mix.items()}}
    return Prepared(
        _chunked(operations, 64), _run_ycsb, "ops/s", wrong, probe=_ycsb_probe(mix), detail=detail
    )


def preparers(scale: Scale) -> dict[str, Callable[[np.random.Generator], Prepared]]:
    """The operation-list workloads of the main sequence, in the order they run."""

    def ycsb(name: str) -> Callable[[np.random.Generator], Prepared]:
        return lambda rng: prepare_ycsb(name, scale, rng)

    return {
        "put_batch": lambda rng: prepare_put_batch(scale, rng),
        "get": lambda rng: prepare_get(scale, rng),
        "scan_100": lambda rng: prepare_scan_100(scale, rng),
        **{name: ycsb(name) for name in YCSB_MIXES},
    }


# -- durable commits ---------------------------------------------------------------------


def commit_rate(engine: Engine, threads: int, seconds: float, round_id: int) -> Figure:
    """Durable single-put commits from ``threads`` threads for ``seconds``: commits/s."""
    counts = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def work(thread: int) -> None:
        put = engine.durable_put
        value = data.value(thread)
        done = 0
        try:
            barrier.wait()
            deadline = stop_at[0]
            while time.perf_counter() < deadline:
                put(b"c%03d%03d%09d" % (round_id, thread, done), value)
                done += 1
        except BaseException as exc:
            errors.append(exc)
        counts[thread] = done

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return _rate(sum(counts), elapsed, "commits/s", threads=threads)


def commit_curve(engine: Engine, scale: Scale) -> dict[str, Figure]:
    engine.durable_put(b"c-probe", b"x")  # Unsupported here, before any thread starts
    figures = {}
    for round_id, threads in enumerate(scale.threads):
        figures[f"commit_{threads}"] = commit_rate(engine, threads, scale.commit_seconds, round_id)
    return figures


# -- crash and recovery ------------------------------------------------------------------


def crash_child(engine_class: type[Engine], directory: Path, scale: Scale) -> None:
    """Load, then single puts, reporting each acknowledged one; then SIGKILL this process."""
    engine = engine_class.open(directory)
    for batch in data.batches(0, scale.records, LOAD_BATCH):
        engine.write_batch(batch)
    for i in range(scale.records, scale.records + scale.crash_tail):
        engine.put(data.key(i), data.value(i))
    print(f"acked {scale.crash_tail}", flush=True)
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def recover(engine_class: type[Engine], directory: Path, scale: Scale) -> Figure:
    """Time the reopen after :func:`crash_child` died, and count what the crash lost."""
    start = time.perf_counter()
    engine = engine_class.open(directory)
    first = engine.get(data.key(0))
    seconds = time.perf_counter() - start
    try:
        if first != data.value(0):
            raise WrongAnswer("record 0 of the load is missing after the crash")
        tail = range(scale.records, scale.records + scale.crash_tail)
        lost = sum(engine.get(data.key(i)) is None for i in tail)
        lost_load = _check_gets(engine, [data.key(i) for i in range(0, scale.records, 97)])
    finally:
        engine.close()
    if lost_load:
        raise WrongAnswer(f"{lost_load} sampled records of the (batched) load lost by the crash")
    return Figure(seconds, "s", {"acked_puts_lost": lost, "acked_puts": scale.crash_tail})


def main_sequence(
    engine_class: type[Engine],
    directory: Path,
    scale: Scale,
    record: Callable[[str, Figure | str], None],
    seed: int = 1,
) -> None:
    """Run workloads 1-7 on a fresh store, passing each figure (or why not) to ``record``."""
    rng = np.random.default_rng(seed)
    engine = engine_class.open(directory)
    try:
        record("load", load(engine, scale))
        if not engine_class.in_memory:
            engine.close()
            record("space", space(directory, scale))
            engine = engine_class.open(directory)
        else:
            record("space", "memory only")
        opened = engine

        def timed(make: Callable[[np.random.Generator], Prepared]) -> Callable[[], Figure]:
            return lambda: run_prepared(opened, make(rng), scale.budget)

        steps = [(name, timed(make)) for name, make in preparers(scale).items()]
        steps.insert(2, ("scan_all", lambda: scan_all(opened, scale)))
        for name, step in steps:
            try:
                record(name, step())
            except Unsupported as exc:
                record(name, f"unsupported: {exc}")
    finally:
        engine.close()
