"""Recovery, damaged files, locking, reopen, backup and restore, and failed fsyncs.

A *crash copy* is a copy of a live database directory taken while its writer is still
open: what a process kill leaves (every written byte reached the OS; the writer never
closed, so nothing after the last checkpoint is in the page file). In ``always`` mode
every returned commit is in the WAL file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import strata
from strata_testkit import CrashFS

SRC = str(Path(__file__).resolve().parent.parent / "src")


def crash_copy(src: Path, dest: Path) -> Path:
    """Copy the live database directory ``src`` to ``dest`` (see the module docstring)."""
    shutil.copytree(src, dest)
    return dest


def fill(db: strata.Database, start: int, count: int) -> dict[str, Any]:
    """Commit ``count`` transactions of two keys each; returns the values written."""
    written: dict[str, Any] = {}
    for i in range(start, start + count):
        with db.transaction() as tx:
            tx.kv.put(f"key{i % 40:03d}", {"i": i, "pad": "p" * (i % 9 * 20)})
            tx.kv.put(f"pair{i % 40:03d}", i)
        written[f"key{i % 40:03d}"] = {"i": i, "pad": "p" * (i % 9 * 20)}
        written[f"pair{i % 40:03d}"] = i
    return written


def contents(db: strata.Database, as_of: int | None = None) -> dict[str, Any]:
    """Every key's full retained history up to ``as_of`` plus the live scan at it."""
    at = db.version if as_of is None else as_of
    history = {}
    for key, _ in db.kv.scan(as_of=at):
        history[key] = [
            (h.version, h.value, h.deleted) for h in db.kv.history(key) if h.version <= at
        ]
    return {"scan": dict(db.kv.scan(as_of=at)), "history": history}


def wal_segments(path: Path) -> list[Path]:
    return sorted(p for p in (path / "wal").iterdir() if p.suffix == ".wal")


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


# -- torn tails and damage ---------------------------------------------------------------


@pytest.fixture
def crashed(tmp_path: Path) -> tuple[Path, dict[int, dict[str, Any]], int]:
    """A crash copy with 60 commits checkpointed and 40 more only in the WAL; returns it,
    the full contents as of every version and the checkpoint's version."""
    live = tmp_path / "live"
    states: dict[int, dict[str, Any]] = {}
    with strata.open(live, durability="always") as db:
        fill(db, 0, 60)
        db.checkpoint()
        checkpointed = db.version
        for i in range(60, 100):
            fill(db, i, 1)
            states[db.version] = contents(db)
        states[checkpointed] = contents(db, checkpointed)
        copy = crash_copy(live, tmp_path / "crashed")
    return copy, states, checkpointed


def test_a_killed_database_replays_the_wal_after_its_checkpoint(
    crashed: tuple[Path, dict[int, dict[str, Any]], int],
) -> None:
    path, states, checkpointed = crashed
    with strata.open(path) as db:
        assert db.version == 100
        assert contents(db) == states[100]
        for version in (checkpointed, 75, 99):
            assert contents(db, version) == states[version]
        recovery = db.stats()["recovery"]
        assert recovery["checkpoint_version"] == checkpointed == 60
        assert recovery["replayed_records"] == 40
        assert recovery["replayed_ops"] == 80
        assert recovery["wal_truncated_bytes"] == 0
        assert db.verify()["ok"]
    with strata.open(path) as db:  # the close checkpointed: nothing left to replay
        assert db.stats()["recovery"]["replayed_records"] == 0
        assert contents(db) == states[100]


def test_a_clean_close_leaves_no_wal_record_the_checkpoint_covers(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with strata.open(path) as db:
        fill(db, 0, 200)
        state, version = contents(db), db.version
        assert db.stats()["wal"]["bytes_since_checkpoint"] > 10_000
    segments = wal_segments(path)
    assert len(segments) == 1 and segments[0].stat().st_size == 64  # a header, no record
    with strata.open(path) as db:
        assert db.version == version and contents(db) == state
        assert db.stats()["recovery"]["replayed_records"] == 0
        db.kv.put("after", 1)
        after = db.version
    with strata.open(path) as db:
        assert db.version == after and db.kv.get("after") == 1 and db.verify()["ok"]


def test_a_torn_wal_tail_recovers_a_prefix_and_reports_the_cut(
    crashed: tuple[Path, dict[int, dict[str, Any]], int], tmp_path: Path
) -> None:
    path, states, checkpointed = crashed
    segment = wal_segments(path)[-1]
    size = segment.stat().st_size
    seen_versions = set()
    for cut in (1, 7, 40, 97, 180, 333, 1000, 2500, 5000):
        trial = tmp_path / f"cut{cut}"
        shutil.copytree(path, trial)
        wal_file = trial / "wal" / segment.name
        with open(wal_file, "r+b") as f:
            f.truncate(size - cut)
        with strata.open(trial) as db:
            top = db.version
            assert checkpointed <= top < 100, f"cut {cut}: version {top}"
            assert contents(db) == states[top], f"cut {cut}: not the state of version {top}"
            recovery = db.stats()["recovery"]
            assert recovery["replayed_records"] == top - checkpointed
            assert recovery["wal_truncated_bytes"] > 0, f"cut {cut}: {recovery}"
            assert recovery["wal_first_lost_lsn"] is not None
            assert db.verify()["ok"]
            db.kv.put("after", cut)  # the log continues after the cut
            seen_versions.add(top)
        with strata.open(trial) as db:
            assert db.version == top + 1 and db.kv.get("after") == cut
    assert len(seen_versions) >= 5  # the cuts landed in different records


def test_a_flipped_byte_in_the_page_file_is_never_wrong_data(
    crashed: tuple[Path, dict[int, dict[str, Any]], int], tmp_path: Path
) -> None:
    path, states, _ = crashed
    page_file = path / "data.strata"
    size = page_file.stat().st_size
    detected = 0
    for offset in range(100, size, 1531):  # a byte in every page, at varying places
        trial = tmp_path / f"page{offset}"
        shutil.copytree(path, trial)
        flip_byte(trial / "data.strata", offset)
        try:
            db = strata.open(trial)
        except strata.CorruptionError as exc:
            assert exc.path == str(trial / "data.strata"), exc
            assert "data.strata" in str(exc)
            detected += 1
            continue
        with db:  # a byte nothing reads (a spare header, a free page): the data is right
            assert contents(db) == states[100], f"offset {offset}: wrong data"
            report = db.verify()
            assert report["ok"] or any("page" in e for e in report["errors"]), report
    assert detected > size // 1531 // 2, "most pages are in use: most flips must be caught"


def test_a_flipped_byte_in_the_middle_of_the_wal_is_corruption(
    crashed: tuple[Path, dict[int, dict[str, Any]], int], tmp_path: Path
) -> None:
    path, _, _ = crashed
    segment = wal_segments(path)[-1]
    size = segment.stat().st_size
    for offset in (size // 3, size // 2, size * 3 // 4):
        trial = tmp_path / f"wal{offset}"
        shutil.copytree(path, trial)
        flip_byte(trial / "wal" / segment.name, offset)
        with pytest.raises(strata.CorruptionError) as info:
            strata.open(trial)
        assert info.value.path is not None and "wal" in info.value.path
        assert "wal" in str(info.value)
        with pytest.raises(strata.CorruptionError):  # also read-only: nothing repaired
            strata.open(trial, read_only=True)


# -- locking, read-only, reopen ------------------------------------------------------------


def test_read_only_open_beside_a_writer_sees_the_state_as_of_its_open(tmp_path: Path) -> None:
    with strata.open(tmp_path / "db", durability="always") as writer:
        fill(writer, 0, 20)
        writer.checkpoint()
        fill(writer, 20, 10)  # these are only in the WAL
        expected = contents(writer)
        with strata.open(tmp_path / "db", read_only=True) as reader:
            assert reader.read_only
            assert reader.version == writer.version
            assert contents(reader) == expected
            writer.kv.put("later", 1)
            fill(writer, 30, 5)
            writer.checkpoint()
            assert contents(reader) == expected  # the open's state, not the writer's now
            assert reader.kv.get("later") is None
            with pytest.raises(strata.ReadOnlyError):
                reader.kv.put("x", 1)
            with pytest.raises(strata.ReadOnlyError):
                reader.kv.delete("key000")
            with pytest.raises(strata.ReadOnlyError), reader.transaction() as tx:
                tx.kv.put("x", 1)
            with pytest.raises(strata.ReadOnlyError):
                reader.checkpoint()
        assert writer.kv.get("x") is None


def test_read_only_open_of_a_missing_database_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(strata.StrataUsageError):
        strata.open(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


def test_a_second_writer_in_this_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with strata.open(tmp_path / "db") as db:
        db.kv.put("a", 1)
        with pytest.raises(strata.DatabaseLockedError) as info:
            strata.open(tmp_path / "db")
        assert info.value.holder is not None and f"pid {os.getpid()}" in info.value.holder
        assert f"pid {os.getpid()}" in str(info.value)
        assert db.kv.get("a") == 1  # the refused open disturbed nothing
    with strata.open(tmp_path / "db") as again:  # released at close
        assert again.kv.get("a") == 1


def test_a_second_writer_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "db"
    holder = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {SRC!r})
        import strata
        db = strata.open(sys.argv[1], durability="always")
        db.kv.put("from-child", 1)
        print("ready", flush=True)
        sys.stdin.read()  # hold the lock until the parent closes stdin
        db.close()
        print("closed", flush=True)
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", holder, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(strata.DatabaseLockedError) as info:
            strata.open(path)
        assert info.value.holder is not None and f"pid {child.pid} " in info.value.holder
        assert f"pid {child.pid}" in str(info.value)
        with strata.open(path, read_only=True) as reader:  # reading beside it works
            assert reader.kv.get("from-child") == 1
    finally:
        child.stdin.close()
        child.wait(60)
    assert child.stdout.read().strip() == "closed"
    with strata.open(path) as db:
        assert db.kv.get("from-child") == 1


def test_reopen_after_close_keeps_everything_with_history_and_retention(tmp_path: Path) -> None:
    policy = strata.Composite(strata.KeepFor(3600), {"logs": strata.KeepLast(3)})
    with strata.open(tmp_path / "db") as db:
        fill(db, 0, 50)
        db.kv.delete("pair000")
        db.keyspace("logs").put_many({f"l{i}": i for i in range(5)})
        db.set_retention(policy)
        expected = contents(db)
        logs = dict(db.keyspace("logs").scan())
        top = db.version
        old = contents(db, 10)
    for durability in ("standard", "always"):
        with strata.open(tmp_path / "db", durability=durability) as db:
            assert db.version == top
            assert contents(db) == expected
            assert contents(db, 10) == old
            assert db.kv.history("pair000")[0].deleted
            assert dict(db.keyspace("logs").scan()) == logs
            assert db.retention == policy
            assert db.stats()["recovery"]["replayed_records"] == 0  # close checkpointed
            assert db.verify()["ok"]


def test_a_database_killed_between_checkpoints_recovers(tmp_path: Path) -> None:
    live = tmp_path / "live"
    with strata.open(live, durability="always", checkpoint_bytes=4096) as db:
        for round_ in range(4):
            fill(db, round_ * 25, 25)  # background checkpoints by WAL size, too
            if round_ % 2:
                db.checkpoint()
        fill(db, 100, 7)
        expected = contents(db)
        early = contents(db, 30)
        copy = crash_copy(live, tmp_path / "copy")
    with strata.open(copy) as db:
        assert contents(db) == expected
        assert contents(db, 30) == early
        assert db.verify()["ok"]


# -- backup and restore -------------------------------------------------------------------


def test_backup_while_writers_run_restores_the_state_as_of_its_version(tmp_path: Path) -> None:
    with strata.open(tmp_path / "db", checkpoint_bytes=8192) as db:
        fill(db, 0, 30)
        stop = threading.Event()
        warmed = [threading.Event() for _ in range(3)]
        errors: list[BaseException] = []

        def writer(t: int) -> None:
            try:
                for i in range(3000):  # bounded: a stuck backup cannot run forever
                    if stop.is_set():
                        return
                    db.run_transaction(
                        lambda tx, i=i: (
                            tx.kv.put(f"w{t}", i),
                            tx.kv.put(f"key{i % 40:03d}", [t, i]),
                        )
                    )
                    if i == 10:
                        warmed[t].set()
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                warmed[t].set()

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(3)]
        for worker in workers:
            worker.start()
        try:
            for event in warmed:  # every writer is committing when the backups start
                event.wait(60)
            results = [
                db.backup(tmp_path / f"backup{n}.snap", compression=c)
                for n, c in enumerate(("zstd", None))
            ]
        finally:
            stop.set()
            for worker in workers:
                worker.join()
        assert not errors, errors
        assert db.version >= results[-1]["version"] >= results[0]["version"] >= 60
        for n, result in enumerate(results):
            restored = tmp_path / f"restored{n}"
            info = strata.restore(tmp_path / f"backup{n}.snap", restored)
            assert info["version"] == result["version"]
            with strata.open(restored) as copy:
                assert copy.version == result["version"]
                assert contents(copy) == contents(db, result["version"])
                assert copy.verify()["ok"]
                copy.kv.put("after-restore", True)  # a restored database is writable


def test_restore_rejects_a_flipped_byte_and_creates_nothing(tmp_path: Path) -> None:
    with strata.open(tmp_path / "db") as db:
        fill(db, 0, 40)
        db.backup(tmp_path / "backup.snap", compression=None)
    size = (tmp_path / "backup.snap").stat().st_size
    for offset in (size // 5, size // 2, size - 10):
        broken = tmp_path / f"broken{offset}.snap"
        shutil.copy(tmp_path / "backup.snap", broken)
        flip_byte(broken, offset)
        dest = tmp_path / f"dest{offset}"
        with pytest.raises(strata.CorruptionError) as info:
            strata.restore(broken, dest)
        assert info.value.path == str(broken)
        assert not dest.exists()
        assert not Path(str(dest) + ".restoring").exists()
    strata.restore(tmp_path / "backup.snap", tmp_path / "good")  # the original is fine
    with strata.open(tmp_path / "good") as db:
        assert db.kv.get("pair039") == 39


def test_restore_into_a_non_empty_directory_is_a_usage_error(tmp_path: Path) -> None:
    with strata.open(tmp_path / "db") as db:
        db.kv.put("a", 1)
        db.backup(tmp_path / "backup.snap")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep me")
    with pytest.raises(strata.StrataUsageError):
        strata.restore(tmp_path / "backup.snap", occupied)
    assert (occupied / "mine.txt").read_text() == "keep me"
    with pytest.raises(strata.StrataUsageError):  # the database itself, too
        strata.restore(tmp_path / "backup.snap", tmp_path / "db")
    (tmp_path / "empty").mkdir()
    strata.restore(tmp_path / "backup.snap", tmp_path / "empty")  # an empty one is fine
    with strata.open(tmp_path / "empty") as db:
        assert db.kv.get("a") == 1


# -- failed fsync ---------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["always", "standard"])
def test_a_failed_fsync_poisons_the_database_and_reopen_recovers_a_prefix(durability: str) -> None:
    fs = CrashFS()
    db = strata.open(fs, durability=durability)
    committed = {}
    for i in range(12):
        committed[db.kv.put(f"k{i}", i)] = i
    db.checkpoint()  # everything so far is durable
    durable = db.version
    fs.fail_on("fsync")
    if durability == "always":
        with pytest.raises(strata.DatabasePoisonedError):
            db.kv.put("doomed", 1)  # its own fsync fails
    else:
        db.kv.put("maybe", 1)  # buffered; the failure surfaces at the next sync
        with pytest.raises(strata.DatabasePoisonedError):
            db.checkpoint()
    for call in (
        lambda: db.kv.put("later", 2),
        lambda: db.kv.get("k1"),
        lambda: list(db.kv.scan()),
        lambda: db.kv.history("k1"),
        db.transaction,
        lambda: db.transaction(read_only=True),
        db.checkpoint,
        db.stats,
        db.verify,
    ):
        with pytest.raises(strata.DatabasePoisonedError):
            call()
    db.close()  # releases the files without a checkpoint
    states = 0
    for state in fs.crash_states(max_states=12):
        with strata.open(state.fs()) as again:
            top = again.version
            assert durable <= top <= durable + 1, state.description
            assert {again.kv.get(f"k{i}") for i in range(12)} == set(range(12))
            assert again.kv.get("later") is None
            assert again.verify()["ok"]
            states += 1
    assert states >= 1


def test_get_on_a_poisoned_database_raises() -> None:
    fs = CrashFS()
    db = strata.open(fs, durability="always")
    db.kv.put("a", 1)
    fs.fail_on("fsync")
    with pytest.raises(strata.DatabasePoisonedError):
        db.kv.put("b", 2)
    try:
        with pytest.raises(strata.DatabasePoisonedError):
            db.kv.get("a")
    finally:
        db.close()


def test_a_restored_database_opens_read_only_before_any_writer_opened_it(tmp_path: Path) -> None:
    with strata.open(tmp_path / "db") as db:
        db.kv.put("k", [1, 2])
        db.kv.put("k", [3])
        db.backup(tmp_path / "b.snap")
    strata.restore(tmp_path / "b.snap", tmp_path / "copy")
    with strata.open(tmp_path / "copy", read_only=True) as copy:
        assert copy.kv.get("k") == [3] and copy.kv.get("k", as_of=1) == [1, 2]
        assert copy.verify()["ok"]
