"""The ``strata`` command line: each command on a real database, and its exit codes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import strata
from strata._cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, json.loads(out) if out else None, err


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "db"
    with strata.open(path) as db:
        db.kv.put_many({f"k{i}": "v" * 200 for i in range(500)})
        db.checkpoint()
        db.kv.delete_many([f"k{i}" for i in range(0, 500, 2)])
    return path


def test_verify_stats_compact_backup_restore(
    capsys: pytest.CaptureFixture[str], path: Path, tmp_path: Path
) -> None:
    status, report, _ = run(capsys, "verify", str(path))
    assert status == 0 and report["ok"] is True  # type: ignore[index]
    status, stats, _ = run(capsys, "stats", str(path))
    assert status == 0 and stats["keys"] == 500  # type: ignore[index]  # with history
    status, figures, _ = run(capsys, "compact", str(path))
    assert status == 0 and "page_bytes_released" in figures  # type: ignore[operator]
    backup = tmp_path / "db.backup"
    status, made, _ = run(capsys, "backup", str(path), str(backup), "--compression", "none")
    assert status == 0 and backup.exists() and made["keys"] == 500  # type: ignore[index]
    status, restored, _ = run(capsys, "restore", str(backup), str(tmp_path / "copy"))
    assert status == 0 and restored["keys"] == 500  # type: ignore[index]
    with strata.open(tmp_path / "copy", read_only=True) as db:
        assert db.kv.count() == 250 and db.kv.get("k1") == "v" * 200


def test_backup_with_lz4_works_or_says_it_is_not_installed(
    capsys: pytest.CaptureFixture[str], path: Path, tmp_path: Path
) -> None:
    status, made, err = run(
        capsys, "backup", str(path), str(tmp_path / "b.snap"), "--compression", "lz4"
    )
    if importlib.util.find_spec("lz4") is None:  # persist-db's optional extra
        assert status == 2 and "lz4" in err and made is None
    else:
        assert status == 0 and made["keys"] == 500  # type: ignore[index]


def test_read_only_commands_run_beside_a_live_writer(
    capsys: pytest.CaptureFixture[str], path: Path
) -> None:
    with strata.open(path) as writer:
        writer.kv.put("late", 1)
        assert run(capsys, "verify", str(path))[0] == 0
        status, _, err = run(capsys, "compact", str(path))  # needs the writer's lock
        assert status == 2 and "DatabaseLockedError" in err


def test_damage_and_what_cannot_be_opened_exit_2_with_the_error(
    capsys: pytest.CaptureFixture[str], path: Path, tmp_path: Path
) -> None:
    pages = next(p for p in path.iterdir() if p.is_file() and p.stat().st_size > 8192)
    with open(pages, "r+b") as file:  # damage a data page past both superblocks
        file.seek(3 * 4096 + 100)
        file.write(b"\xff" * 64)
    status, report, err = run(capsys, "verify", str(path))  # opening reads every page
    assert status == 2 and report is None and "CorruptionError" in err
    status, _, err = run(capsys, "stats", str(tmp_path / "missing"))
    assert status == 2 and err.startswith("strata stats: ")
    status, _, err = run(capsys, "restore", str(tmp_path / "missing.backup"), str(tmp_path / "r"))
    assert status == 2 and err


def test_verify_exits_1_when_the_report_finds_damage(
    capsys: pytest.CaptureFixture[str], path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {"ok": False, "errors": ["page 7: checksum mismatch"]}
    monkeypatch.setattr(strata.Database, "verify", lambda self: bad)
    status, report, _ = run(capsys, "verify", str(path))
    assert status == 1 and report == bad


def test_python_dash_m_strata_runs_the_command() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "strata", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"strata {strata.__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "strata"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 2 and "COMMAND" in done.stderr
