"""explore_crashes: the run-once, check-everywhere loop and its failure reports."""

from __future__ import annotations

import pytest

from strata_testkit import CrashCheckError, CrashFS, CrashState, explore_crashes

OLD, NEW = b"old" * 300, b"new" * 300


def atomic_replace(fs: CrashFS) -> None:
    """Write-temp, fsync, rename, fsync_dir: the correct recipe."""
    tmp = fs.open("db.tmp")
    tmp.pwrite(NEW, 0)
    tmp.fsync()
    fs.rename("db.tmp", "db")
    fs.fsync_dir()


def careless_replace(fs: CrashFS) -> None:
    """Forgets to fsync the temp file before the rename (ALICE's most common bug)."""
    tmp = fs.open("db.tmp")
    tmp.pwrite(NEW, 0)
    fs.rename("db.tmp", "db")
    fs.fsync_dir()


def db_is_old_or_new(state: CrashState, point: int) -> None:
    assert state.fs().open("db", create=False).pread(10_000, 0) in (OLD, NEW)


def test_correct_recipe_passes_and_counts_states() -> None:
    checked = explore_crashes(atomic_replace, db_is_old_or_new, files={"db": OLD})
    fs = CrashFS({"db": OLD})
    atomic_replace(fs)
    expected = sum(len(list(fs.crash_states(p))) for p in fs.crash_points())
    assert checked == expected > 0


def test_every_point_kind_is_explored() -> None:
    seen: set[int] = set()
    explore_crashes(
        atomic_replace, lambda state, point: seen.add(point), kind="all", files={"db": OLD}
    )
    assert seen == set(range(6))


def test_failure_reports_point_state_and_cause() -> None:
    with pytest.raises(CrashCheckError) as info:
        explore_crashes(careless_replace, db_is_old_or_new, seed=3, files={"db": OLD})
    error = info.value
    assert isinstance(error, AssertionError)
    assert isinstance(error.__cause__, AssertionError)
    assert error.seed == 3
    assert error.point == 3  # crash before fsync_dir: the rename may survive, the data not
    assert f"crash point {error.point} (before trace op 3 FsyncDir(ok=True))" in str(error)
    assert error.state.description in str(error)
    assert "seed=3" in str(error)


def test_failure_is_reproducible_from_point_and_seed() -> None:
    with pytest.raises(CrashCheckError) as info:
        explore_crashes(careless_replace, db_is_old_or_new, seed=3, files={"db": OLD})
    fs = CrashFS({"db": OLD})
    careless_replace(fs)
    replayed = {s.description: s.files for s in fs.crash_states(info.value.point, seed=3)}
    assert replayed[info.value.state.description] == info.value.state.files


def test_workload_exceptions_propagate_unwrapped() -> None:
    def broken(fs: CrashFS) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        explore_crashes(broken, db_is_old_or_new)
