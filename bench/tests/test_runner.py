"""The harness end to end at the tiny scale: every phase runs, results and tables are whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from peerbench import report, runner
from peerbench.__main__ import main


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("out")
    work = tmp_path_factory.mktemp("work")
    engines = "strata-cache,strata-standard,strata-always,sqlite3-normal"
    argv = ["run", "--scale", "tiny", "--engines", engines, "--out", str(out)]
    assert main([*argv, "--workdir", str(work)]) == 0
    assert (out / "results-tiny.md").read_text().startswith("### 2,000 records (tiny)")
    loaded: dict = json.loads((out / "results-tiny.json").read_text())  # type: ignore[type-arg]
    return loaded


def test_every_workload_has_a_figure_or_a_reason(document: dict) -> None:  # type: ignore[type-arg]
    for name, entry in document["engines"].items():
        assert entry["status"] == "ok", name
        assert entry["errors"] == [], (name, entry["errors"])
        for workload in report.WORKLOADS:
            if workload.key == "commit_16":
                continue  # the tiny scale runs 1 and 4 threads
            found = entry["figures"].get(workload.key)
            assert found is not None, (name, workload.key)
            assert "figure" in found or "na" in found, (name, workload.key, found)


def test_reasons_say_why(document: dict) -> None:  # type: ignore[type-arg]
    figures = document["engines"]["sqlite3-normal"]["figures"]
    assert "not fsynced" in figures["commit_1"]["na"]
    assert document["engines"]["strata-cache"]["figures"]["space"]["na"] == "memory only"


def test_crash_recovery_is_measured_and_loses_nothing_acknowledged(document: dict) -> None:  # type: ignore[type-arg]
    for name in ("strata-always", "sqlite3-normal"):
        recovery = document["engines"][name]["figures"]["recovery"]["figure"]
        assert recovery["value"] > 0
        # SIGKILL is a process crash: the OS keeps what was written, so nothing is lost
        assert recovery["detail"]["acked_puts_lost"] == 0


def test_durable_commits_from_several_threads(document: dict) -> None:  # type: ignore[type-arg]
    figures = document["engines"]["strata-always"]["figures"]
    assert figures["commit_1"]["figure"]["detail"]["threads"] == 1
    assert figures["commit_4"]["figure"]["value"] > 0


def test_ratios_point_the_right_way(document: dict) -> None:  # type: ignore[type-arg]
    ratios = report.ratios(document)["sqlite3-normal"]
    ours = report.figure(document, "strata-standard", "get")
    theirs = report.figure(document, "sqlite3-normal", "get")
    assert ratios["get"] == pytest.approx(ours / theirs, rel=1e-3)  # throughput: strata/peer
    ours = report.figure(document, "strata-standard", "space")
    theirs = report.figure(document, "sqlite3-normal", "space")
    assert ratios["space"] == pytest.approx(theirs / ours, rel=1e-3)  # cost: peer/strata
    assert "commit_1" not in ratios  # sqlite3-normal has no durable commit to compare


def test_unknown_engine_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown engine"):
        runner.run(["nope"], "tiny", tmp_path, 60, log=lambda _: None)


def test_missing_library_is_reported_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def missing(name: str) -> None:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(runner, "load", missing)
    entry = runner.run_engine("lmdb", "tiny", tmp_path, 60)
    assert entry == {"status": "skipped", "reason": "not installed: No module named 'lmdb'"}
    document = {"engines": {"lmdb": entry}, "records": 1, "scale": "tiny", "command": "x",
                "machine": runner.machine()}  # fmt: skip
    assert "Skipped lmdb: not installed" in report.markdown(document)
