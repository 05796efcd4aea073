"""Run the workloads engine by engine, each in child processes of its own.

A child process per engine and phase keeps engines from sharing a heap, a page cache
warm-up or a garbage collector's state, and lets a crash be a real ``SIGKILL``. Phases:

- ``main``: :func:`peerbench.workloads.main_sequence` on a fresh directory;
- ``commits``: :func:`peerbench.workloads.commit_curve` on another fresh directory;
- ``crash`` then ``recover``: a child loads and is killed mid-stream; another reopens.

A child appends one JSON line per workload to a results file as it goes, so a child that
times out or dies still leaves what it measured. The parent merges everything into one
result document (:func:`run`), which :mod:`peerbench.report` turns into tables.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import workloads
from .engines import ENGINES, Engine, Unsupported, load

BENCH_ROOT = Path(__file__).resolve().parents[1]
PHASES = ("main", "commits", "crash", "recover")


def library_version(engine: type[Engine]) -> str:
    """The version of the library behind ``engine`` (sqlite3: the SQLite library's)."""
    if engine.family == "sqlite3":
        return f"SQLite {sqlite3.sqlite_version}"
    distribution = engine.requirement or ("strata-db" if engine.family == "strata" else None)
    if distribution is None:
        return "?"
    try:
        return f"{distribution} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} (version unknown)"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory = "?"
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            kib = int(meminfo.readline().split()[1])
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- the child side ----------------------------------------------------------------------


def child(phase: str, engine_name: str, scale_name: str, directory: Path, out: Path) -> int:
    """Run one phase for one engine, appending JSON lines to ``out``; the exit status."""
    engine_class = load(engine_name)
    scale = workloads.SCALES[scale_name]

    def record(workload: str, figure: workloads.Figure | str) -> None:
        line: dict[str, Any] = {"workload": workload}
        if isinstance(figure, str):
            line["na"] = figure
        else:
            line["figure"] = figure.to_json()
        with out.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(line) + "\n")

    if phase == "main":
        workloads.main_sequence(engine_class, directory, scale, record)
    elif phase == "commits":
        engine = engine_class.open(directory)
        try:
            for name, figure in workloads.commit_curve(engine, scale).items():
                record(name, figure)
        except Unsupported as exc:
            record("commit_1", f"unsupported: {exc}")
        finally:
            engine.close()
    elif phase == "crash":
        workloads.crash_child(engine_class, directory, scale)
    elif phase == "recover":
        record("recovery", workloads.recover(engine_class, directory, scale))
    else:
        raise ValueError(f"unknown phase {phase!r}")
    return 0


# -- the parent side ---------------------------------------------------------------------


def _spawn(
    phase: str, engine: str, scale: str, directory: Path, out: Path, timeout: float
) -> tuple[int | None, str]:
    command = [
        sys.executable, "-m", "peerbench", "child", phase,
        "--engine", engine, "--scale", scale, "--dir", str(directory), "--json", str(out),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_ROOT), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    return done.returncode, (done.stderr or "").strip()[-600:]


def _read_lines(out: Path) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            figures[entry.pop("workload")] = entry
    return figures


def _phase(
    phase: str, engine: str, scale: str, workdir: Path, timeout: float, expect_kill: bool = False
) -> dict[str, dict[str, Any]]:
    directory = workdir / f"{engine}-{'crash' if phase == 'recover' else phase}"
    out = workdir / f"{engine}-{phase}.jsonl"
    out.unlink(missing_ok=True)
    if phase != "recover":
        shutil.rmtree(directory, ignore_errors=True)
    status, stderr = _spawn(phase, engine, scale, directory, out, timeout)
    figures = _read_lines(out)
    expected = -signal.SIGKILL if expect_kill else 0
    if status != expected:
        reason = stderr.splitlines()[-1] if stderr else f"exit status {status}"
        if status is None:
            reason = stderr
        figures["_failed"] = {"error": f"{phase}: {reason}"}
    return figures


def run_engine(engine: str, scale: str, workdir: Path, timeout: float) -> dict[str, Any]:
    """Every phase for one engine: its entry in the result document."""
    try:
        engine_class = load(engine)
    except ImportError as exc:
        return {"status": "skipped", "reason": f"not installed: {exc}"}
    entry: dict[str, Any] = {
        "status": "ok",
        "describe": engine_class.describe,
        "durable": engine_class.durable,
        "version": library_version(engine_class),
        "figures": {},
        "errors": [],
    }
    phases = [("main", False), ("commits", False)]
    if not engine_class.in_memory:
        phases += [("crash", True), ("recover", False)]
    else:
        entry["figures"]["recovery"] = {"na": "memory only"}
    for phase, expect_kill in phases:
        figures = _phase(phase, engine, scale, workdir, timeout, expect_kill)
        failed = figures.pop("_failed", None)
        entry["figures"].update(figures)
        if failed:
            entry["errors"].append(failed["error"])
            if phase == "crash":
                break  # nothing to recover
    for phase in ("main", "commits", "crash"):
        shutil.rmtree(workdir / f"{engine}-{phase}", ignore_errors=True)
    return entry


def run(
    engines: list[str], scale: str, workdir: Path, timeout: float, log: Any = print
) -> dict[str, Any]:
    """Measure ``engines`` at ``scale``; the result document (see :mod:`peerbench.report`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "scale": scale,
        "records": workloads.SCALES[scale].records,
        "machine": machine(),
        "command": " ".join(["python -m peerbench", *sys.argv[1:]]),
        "engines": {},
    }
    for engine in engines:
        if engine not in ENGINES:
            raise KeyError(f"unknown engine {engine!r}: choose from {', '.join(ENGINES)}")
        started = time.perf_counter()
        entry = run_engine(engine, scale, workdir, timeout)
        document["engines"][engine] = entry
        took = time.perf_counter() - started
        log(f"{engine}: {entry['status']} in {took:.0f} s {'; '.join(entry.get('errors', []))}")
    return document
