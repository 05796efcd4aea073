"""The regression check: its verdicts, and that it fails on a deliberately slowed strata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from peerbench import check, runner

BASELINE = {"get": 4.0, "space": 0.5}


def test_within_tolerance_passes() -> None:
    rows = check.compare(BASELINE, {"get": [3.61], "space": [0.5]})
    assert [row["ok"] for row in rows] == [True, True]


def test_a_drop_of_more_than_ten_percent_fails() -> None:
    rows = check.compare(BASELINE, {"get": [3.59], "space": [0.56]})
    assert [row["ok"] for row in rows] == [False, True]
    assert rows[0]["change"] == pytest.approx(-0.1025)


def test_the_median_of_rounds_decides() -> None:
    # one bad round among three does not fail; two do
    assert check.compare(BASELINE, {"get": [1.0, 4.1, 4.2]})[0]["ok"]
    assert not check.compare(BASELINE, {"get": [1.0, 1.1, 4.2]})[0]["ok"]


def test_a_workload_that_stopped_producing_a_figure_fails() -> None:
    rows = check.compare(BASELINE, {"get": [4.0]})
    assert rows[1] == {"workload": "space", "baseline": 0.5, "measured": None, "ok": False}


def test_stored_baseline_covers_the_checked_workloads() -> None:
    stored = json.loads(check.BASELINE.read_text())
    assert stored["strata"] == check.STRATA and stored["peer"] == check.PEER
    assert sorted(stored["ratios"]) == sorted(check.CHECKED)
    assert all(value > 0 for value in stored["ratios"].values())


SLOWDOWN = '''
"""Test-only: a deliberately slowed strata build (every KV call spins first)."""
import time

import strata._kv as kv


def _slowed(method):
    def wrapper(*args, **kwargs):
        deadline = time.perf_counter() + 40e-6
        while time.perf_counter() < deadline:
            pass
        return method(*args, **kwargs)

    return wrapper


for _name in ("get", "put", "put_many", "scan"):
    setattr(kv.KV, _name, _slowed(getattr(kv.KV, _name)))
'''


@pytest.mark.slow
def test_check_fails_on_a_slowed_build(tmp_path: Path) -> None:
    slowed = tmp_path / "slowed"
    slowed.mkdir()
    (slowed / "sitecustomize.py").write_text(SLOWDOWN)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(slowed), str(runner.BENCH_ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "peerbench", "check", "--reps", "1", "--confirm", "0"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSION" in done.stdout
    failed = {line.split("|")[1].strip() for line in done.stdout.splitlines() if "FAIL" in line}
    # every per-operation path lost far more than 10% against sqlite3 (a 40 us spin per
    # call; batch loads and full scans are one call per thousands of records)
    assert {"get", "scan_100", "ycsb_a", "ycsb_b", "ycsb_c", "ycsb_f"} <= failed
    assert "space" not in failed  # bytes on disk do not depend on speed
