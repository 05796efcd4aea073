"""Regression check: strata-to-sqlite3 ratios against a stored baseline.

Absolute times on a shared virtual machine swing by 2x from one minute to the next;
a ratio of two engines measured side by side swings far less, since both feel the same
noise. So the baseline (``bench/baseline.json``) stores, for each CPU-bound workload of
the main sequence at the ``check`` scale, strata-standard's advantage over
sqlite3-normal (see :func:`peerbench.report.advantage`), and the check fails when a
measured advantage falls more than ``tolerance`` (10%) below its baseline.

To make the side by side as close as it gets, both engines are open in this one process
and the check interleaves them at the finest grain a workload allows: an operation list
is cut into chunks of a few milliseconds' work and the engines take turns chunk by chunk
(a load, batch by batch; full scans, scan by scan), so a burst of noise lands on both.
Each workload runs ``--reps`` times on fresh identical operation lists, and the verdict
comes from the median of the repetitions' ratios. A workload that fails is measured
``--confirm`` more times and fails only if the median of all its repetitions is still too
low. Durable commits and crash recovery are not checked, and the stores live on a
memory-backed file system (``/dev/shm`` where there is one): fsync latency on a virtual
disk swings by 10x from one second to the next, which no ratio cancels, while what the
check is for, a slower code path in strata, shows the same either way.

``python -m peerbench check --update`` measures and writes a new baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import data, report, runner, workloads
from .engines import Engine, load

BASELINE = runner.BENCH_ROOT / "baseline.json"
STRATA, PEER = "strata-standard", "sqlite3-normal"
CHECKED = [
    "load", "put_batch", "get", "scan_all", "scan_100",
    "ycsb_a", "ycsb_b", "ycsb_c", "ycsb_e", "ycsb_f", "space",
]  # fmt: skip
TOLERANCE = 0.10
SCALE = workloads.SCALES["check"]


def memory_backed() -> Path | None:
    """``/dev/shm`` when it is a writable directory (else None: the system's temp dir)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per workload")
    parser.add_argument("--confirm", type=int, default=5, help="extra repetitions on failure")
    parser.add_argument("--update", action="store_true", help="write a new baseline")
    parser.add_argument("--workdir", type=Path, default=memory_backed())
    parser.add_argument("--only", default=None, help="comma-separated workloads (default: all)")


def interleaved(
    engines: dict[str, Engine], prepared: workloads.Prepared, first: str
) -> dict[str, workloads.Figure]:
    """Run ``prepared`` on every engine, chunk by chunk, alternating who goes first."""
    for engine in engines.values():
        if prepared.probe:
            prepared.probe(engine)
        if prepared.warm:
            for chunk in prepared.chunks:
                prepared.execute(engine, chunk)
    names = sorted(engines, key=lambda name: name != first)
    seconds = dict.fromkeys(names, 0.0)
    done = 0
    for index, chunk in enumerate(prepared.chunks):
        for name in names if index % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            wrong = prepared.execute(engines[name], chunk)
            seconds[name] += time.perf_counter() - start
            if wrong:
                message = prepared.wrong.format(wrong=wrong, done=len(chunk))
                raise workloads.WrongAnswer(f"{name}: {message}")
        done += len(chunk)
    return {name: workloads.Figure(done / seconds[name], prepared.unit) for name in names}


class SideBySide:
    """strata-standard and sqlite3-normal, loaded with the same records, side by side."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.classes = {name: load(name) for name in (STRATA, PEER)}
        self.open: dict[str, Engine] = {}
        self.loads = 0

    def load_round(self, first: str) -> dict[str, workloads.Figure]:
        """Load both engines afresh, batch by batch in turn; the load rates and the space."""
        for engine in self.open.values():
            engine.close()
        self.open.clear()
        self.loads += 1
        directories = {name: self.workdir / f"{name}-{self.loads}" for name in self.classes}
        engines = {name: self.classes[name].open(directories[name]) for name in self.classes}
        names = sorted(engines, key=lambda name: name != first)
        seconds = dict.fromkeys(names, 0.0)
        for index, batch in enumerate(data.batches(0, SCALE.records, workloads.LOAD_BATCH)):
            for name in names if index % 2 == 0 else names[::-1]:
                start = time.perf_counter()
                engines[name].write_batch(batch)
                seconds[name] += time.perf_counter() - start
        figures: dict[str, workloads.Figure] = {}
        for name in names:
            start = time.perf_counter()
            engines[name].flush()
            engines[name].close()
            seconds[name] += time.perf_counter() - start
            figures[name] = workloads.Figure(SCALE.records / seconds[name], "records/s")
            figures[f"space:{name}"] = workloads.space(directories[name], SCALE)
            self.open[name] = self.classes[name].open(directories[name])
        return figures

    def scan_all(self, first: str, times: int = 3) -> dict[str, workloads.Figure]:
        """Full scans of both engines in turn, ``times`` each."""
        names = sorted(self.open, key=lambda name: name != first)
        seconds = dict.fromkeys(names, 0.0)
        for round_index in range(times):
            for name in names if round_index % 2 == 0 else names[::-1]:
                start = time.perf_counter()
                count = self.open[name].scan_all()
                seconds[name] += time.perf_counter() - start
                if count < SCALE.records:
                    raise workloads.WrongAnswer(f"{name}: full scan returned {count} records")
        rate = SCALE.records * times
        return {name: workloads.Figure(rate / seconds[name], "records/s") for name in names}

    def close(self) -> None:
        for engine in self.open.values():
            engine.close()
        self.open.clear()


def _advantage(key: str, ours: workloads.Figure, theirs: workloads.Figure) -> float:
    document = {
        "engines": {
            STRATA: {"figures": {key: {"figure": ours.to_json()}}},
            PEER: {"figures": {key: {"figure": theirs.to_json()}}},
        }
    }
    value = report.advantage(document, report.BY_KEY[key], PEER)
    assert value is not None
    return value


def measure(
    pair: SideBySide, keys: list[str], reps: int, offset: int = 0
) -> dict[str, list[float]]:
    """``reps`` interleaved repetitions of each workload in ``keys``: the advantages."""
    measured: dict[str, list[float]] = {key: [] for key in keys}
    prepare = workloads.preparers(SCALE)
    for rep in range(offset, offset + reps):
        first = STRATA if rep % 2 == 0 else PEER
        if "load" in keys or "space" in keys or not pair.open:
            loaded = pair.load_round(first)
            if "load" in keys:
                measured["load"].append(_advantage("load", loaded[STRATA], loaded[PEER]))
            if "space" in keys:
                space = _advantage("space", loaded[f"space:{STRATA}"], loaded[f"space:{PEER}"])
                measured["space"].append(space)
        for key in keys:
            if key in ("load", "space"):
                continue
            if key == "scan_all":
                figures = pair.scan_all(first)
            else:
                rng = np.random.default_rng(1000 * rep + CHECKED.index(key))
                figures = interleaved(pair.open, prepare[key](rng), first)
            measured[key].append(_advantage(key, figures[STRATA], figures[PEER]))
    return measured


def compare(
    baseline: dict[str, float], measured: dict[str, list[float]], tolerance: float = TOLERANCE
) -> list[dict[str, Any]]:
    """One row per baselined workload: baseline, median measured ratio, change, verdict.

    A workload the baseline has but nothing measured fails (it stopped working).
    """
    rows = []
    for key, expected in baseline.items():
        values = measured.get(key, [])
        if not values:
            rows.append({"workload": key, "baseline": expected, "measured": None, "ok": False})
            continue
        median = statistics.median(values)
        change = median / expected - 1
        rows.append(
            {
                "workload": key,
                "baseline": expected,
                "measured": median,
                "change": change,
                "ok": change >= -tolerance,
            }
        )
    return rows


def table(rows: list[dict[str, Any]], tolerance: float) -> str:
    lines = [
        f"strata-standard's advantage over sqlite3-normal (fails below baseline -{tolerance:.0%})",
        "",
        "| workload | baseline | measured | change | verdict |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row["measured"] is None:
            lines.append(f"| {row['workload']} | {row['baseline']:.3f} | - | - | FAIL: no figure |")
            continue
        verdict = "ok" if row["ok"] else "FAIL"
        lines.append(
            f"| {row['workload']} | {row['baseline']:.3f} | {row['measured']:.3f} "
            f"| {row['change']:+.1%} | {verdict} |"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    keys = args.only.split(",") if args.only else list(CHECKED)
    with tempfile.TemporaryDirectory(prefix="peerbench-check-", dir=args.workdir) as scratch:
        pair = SideBySide(Path(scratch))
        try:
            measured = measure(pair, keys, args.reps)
            if args.update:
                return _update(args.baseline, measured)
            stored = json.loads(args.baseline.read_text())
            baseline = {k: v for k, v in stored["ratios"].items() if k in keys}
            tolerance = float(stored.get("tolerance", TOLERANCE))
            rows = compare(baseline, measured, tolerance)
            failing = [row["workload"] for row in rows if not row["ok"]]
            if failing and args.confirm:
                print(f"re-measuring {', '.join(failing)} ({args.confirm} more repetitions)")
                more = measure(pair, failing, args.confirm, offset=args.reps)
                for key, values in more.items():
                    measured[key].extend(values)
                rows = compare(baseline, measured, tolerance)
        finally:
            pair.close()
    print(table(rows, tolerance))
    failed = [row["workload"] for row in rows if not row["ok"]]
    if failed:
        print(f"\nREGRESSION: {', '.join(failed)}")
        return 1
    print("\nno regression")
    return 0


def _update(path: Path, measured: dict[str, list[float]]) -> int:
    medians = {key: round(statistics.median(values), 4) for key, values in measured.items()}
    spread = {
        key: round(max(values) / min(values) - 1, 4) for key, values in measured.items() if values
    }
    document = {
        "strata": STRATA,
        "peer": PEER,
        "scale": "check",
        "tolerance": TOLERANCE,
        "machine": runner.machine(),
        "ratios": medians,
        "spread": spread,  # (max / min - 1) of the repetitions: the noise when measured
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path}: {medians}")
    return 0
