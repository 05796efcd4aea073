"""CrashFS: trace recording, crash points, and durable/pending accounting."""

from __future__ import annotations

import threading

import pytest

from strata_testkit import (
    CrashFS,
    CrashState,
    Create,
    Fsync,
    FsyncDir,
    Rename,
    Truncate,
    Unlink,
    Write,
)


def by_variant(states: list[CrashState]) -> dict[str, list[dict[str, bytes]]]:
    grouped: dict[str, list[dict[str, bytes]]] = {}
    for state in states:
        grouped.setdefault(state.variant, []).append(state.files)
    return grouped


def test_trace_records_every_state_changing_op_in_order() -> None:
    fs = CrashFS({"old": b"x"})
    f = fs.open("new")
    f.pwrite(b"data", 2)
    f.pread(4, 0)  # reads are not traced
    f.truncate(3)
    f.fsync()
    fs.rename("new", "old")
    fs.open("gone").close()
    fs.unlink("gone")
    fs.fsync_dir()
    new, gone = 2, 3  # inode 1 is the constructor's "old"
    assert fs.trace == [
        Create("new", new),
        Write("new", new, 2, b"data"),
        Truncate("new", new, 3),
        Fsync("new", new),
        Rename("new", "old", new),
        Create("gone", gone),
        Unlink("gone", gone),
        FsyncDir(),
    ]
    assert fs.sync_count == 2


def test_trace_repr_is_readable() -> None:
    op = Write("db", 1, 4096, bytes(range(40)))
    assert repr(op).startswith("Write(file='db', inode=1, offset=4096, size=40, data=b'")
    assert repr(op).endswith("...)")
    assert repr(FsyncDir()) == "FsyncDir(ok=True)"


def test_crash_points_by_kind() -> None:
    fs = CrashFS()
    f = fs.open("a")  # 0 create
    f.pwrite(b"1", 0)  # 1 write
    f.fsync()  # 2 fsync
    f.pwrite(b"2", 0)  # 3 write
    fs.fsync_dir()  # 4 fsync_dir
    fs.fail_on("fsync")
    with pytest.raises(OSError):
        f.fsync()  # 5 failed fsync: still a crash point
    assert fs.crash_points() == [2, 4, 5, 6]
    assert fs.crash_points("write") == [1, 3, 6]
    assert fs.crash_points("all") == [0, 1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError):
        fs.crash_points("bogus")  # type: ignore[arg-type]


def test_empty_trace_has_one_crash_point_and_one_state() -> None:
    fs = CrashFS({"a": b"x"})
    assert fs.crash_points() == [0]
    states = list(fs.crash_states())
    assert [(s.variant, s.files) for s in states] == [("drop", {"a": b"x"})]


def test_live_view_sees_everything_applied() -> None:
    fs = CrashFS()
    f = fs.open("a")
    f.pwrite(b"unsynced", 0)
    assert f.pread(8, 0) == b"unsynced"
    assert fs.files() == {"a": b"unsynced"}
    assert fs.durable_files() == {}


def test_fsync_of_one_file_does_not_make_another_durable() -> None:
    fs = CrashFS({"a": b"a0", "b": b"b0"})
    a, b = fs.open("a"), fs.open("b")
    a.pwrite(b"a1", 0)
    b.pwrite(b"b1", 0)
    a.fsync()
    assert fs.durable_files() == {"a": b"a1", "b": b"b0"}
    b.fsync()
    assert fs.durable_files() == {"a": b"a1", "b": b"b1"}


def test_created_file_needs_fsync_dir_even_when_its_data_was_fsynced() -> None:
    fs = CrashFS()
    f = fs.open("a")
    f.pwrite(b"data", 0)
    f.fsync()
    assert fs.durable_files() == {}
    fs.fsync_dir()
    assert fs.durable_files() == {"a": b"data"}


def test_fsync_dir_does_not_make_file_data_durable() -> None:
    fs = CrashFS()
    fs.open("a").pwrite(b"data", 0)
    fs.fsync_dir()
    assert fs.durable_files() == {"a": b""}


def test_unlink_needs_fsync_dir() -> None:
    fs = CrashFS({"a": b"x"})
    fs.unlink("a")
    assert fs.durable_files() == {"a": b"x"}
    fs.fsync_dir()
    assert fs.durable_files() == {}


def test_file_renamed_after_fsync_keeps_durable_data_under_new_name() -> None:
    fs = CrashFS({"db": b"old"})
    tmp = fs.open("db.tmp")  # 0 create
    tmp.pwrite(b"new", 0)  # 1
    tmp.fsync()  # 2
    fs.rename("db.tmp", "db")  # 3
    assert fs.durable_files() == {"db": b"old"}
    states = list(fs.crash_states())
    assert [s.files for s in states] == [
        {"db": b"old"},  # drop: neither the create nor the rename reached the disk
        {"db": b"new"},  # keep
        {"db": b"old", "db.tmp": b"new"},  # prefix-1: create without rename
    ]
    fs.fsync_dir()
    assert fs.durable_files() == {"db": b"new"}


def test_rename_without_fsync_of_data_can_expose_an_empty_file() -> None:
    """The classic ALICE bug: rename is durable, the data it points at is not."""
    fs = CrashFS({"db": b"old"})
    fs.open("db.tmp").pwrite(b"new", 0)
    fs.rename("db.tmp", "db")
    fs.fsync_dir()
    assert fs.durable_files() == {"db": b""}


def test_writes_through_a_handle_after_rename_follow_the_file() -> None:
    fs = CrashFS({"a": b""})
    f = fs.open("a")
    fs.rename("a", "b")
    fs.fsync_dir()
    f.pwrite(b"late", 0)
    f.fsync()
    assert fs.trace[-2] == Write("b", 1, 0, b"late")
    assert fs.durable_files() == {"b": b"late"}


def test_reused_name_does_not_inherit_the_old_files_writes() -> None:
    fs = CrashFS({"a": b"first"})
    old = fs.open("a")
    fs.unlink("a")
    fs.open("a").pwrite(b"2nd", 0)
    old.pwrite(b"FIRST", 0)
    old.fsync()
    fs.fsync_dir()
    assert fs.durable_files() == {"a": b""}
    assert fs.files() == {"a": b"2nd"}


def test_drop_keep_and_every_prefix_exactly() -> None:
    fs = CrashFS({"f": b""})
    f = fs.open("f")
    for chunk in (b"aa", b"bb", b"cc"):
        f.pwrite(chunk, f.size())
    grouped = by_variant(list(fs.crash_states(max_states=64)))
    assert grouped["drop"] == [{"f": b""}]
    assert grouped["keep"] == [{"f": b"aabbcc"}]
    assert grouped["prefix"] == [{"f": b"aa"}, {"f": b"aabb"}]


def test_dropped_extending_write_leaves_durable_length() -> None:
    fs = CrashFS({"f": b"12345678"})
    f = fs.open("f")
    f.pwrite(b"tail", 100)
    f.truncate(2)
    grouped = by_variant(list(fs.crash_states(max_states=64)))
    assert grouped["drop"] == [{"f": b"12345678"}]
    assert grouped["keep"] == [{"f": b"12"}]
    assert grouped["prefix"] == [{"f": b"12345678" + bytes(92) + b"tail"}]


def test_crash_before_an_op_excludes_it() -> None:
    fs = CrashFS({"f": b"old"})
    f = fs.open("f")
    f.pwrite(b"new", 0)  # 0
    f.fsync()  # 1
    assert fs.durable_files(1) == {"f": b"old"}
    assert fs.durable_files(2) == {"f": b"new"}
    assert fs.durable_files(0) == {"f": b"old"}


def test_crash_states_can_continue_while_the_workload_goes_on() -> None:
    fs = CrashFS({"f": b"old"})
    f = fs.open("f")
    f.pwrite(b"new", 0)
    states = fs.crash_states()
    f.pwrite(b"NEWER", 0)
    assert [s.files["f"] for s in states if s.variant != "trashed"] == [b"old", b"new"]


@pytest.mark.parametrize("kwargs", [{"at": -1}, {"at": 99}, {"max_states": 0}, {"sector_size": 0}])
def test_crash_states_rejects_bad_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        CrashFS().crash_states(**kwargs)


def test_state_fs_is_a_fresh_mutable_copy() -> None:
    fs = CrashFS({"f": b"old"})
    state = next(fs.crash_states())
    copy = state.fs()
    copy.open("f").pwrite(b"X", 0)
    assert state.files == {"f": b"old"}
    assert state.fs().files() == {"f": b"old"}
    assert copy.files() == {"f": b"Xld"}


def test_concurrent_writers_get_a_consistent_trace() -> None:
    fs = CrashFS()
    handles = [fs.open(f"f{i}") for i in range(4)]

    def hammer(index: int) -> None:
        for n in range(200):
            handles[index].pwrite(bytes([n % 256]) * 64, (n % 7) * 50)
            handles[(index + 1) % 4].pwrite(bytes([index]) * 10, n % 30)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fs.trace) == 4 + 4 * 400
    states = {s.variant: s.files for s in fs.crash_states(max_states=2)}
    assert states["keep"] == fs.files()
