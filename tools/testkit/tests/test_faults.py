"""Fault injection on MemoryFS and CrashFS: nth, persistent, name filters, ENOSPC."""

from __future__ import annotations

import errno

import pytest

from strata_testkit import CrashFS, Fsync, FsyncDir, MemoryFS, Write


@pytest.fixture(params=[MemoryFS, CrashFS], ids=lambda cls: cls.__name__)
def fs(request: pytest.FixtureRequest) -> MemoryFS | CrashFS:
    fs_type: type[MemoryFS | CrashFS] = request.param
    return fs_type({"a": b"aaaa", "b": b"bbbb"})


def test_nth_matching_call_fails_once(fs: MemoryFS) -> None:
    f = fs.open("a")
    fs.fail_on("write", 2)
    f.pwrite(b"1", 0)
    with pytest.raises(OSError) as info:
        f.pwrite(b"2", 1)
    assert info.value.errno == errno.EIO
    assert info.value.filename == "a"
    f.pwrite(b"3", 2)
    assert fs.files()["a"] == b"1a3a"
    assert fs.faults.injected == 1


def test_persistent_fault_keeps_failing(fs: MemoryFS) -> None:
    f = fs.open("a")
    fs.fail_on("write", 2, persistent=True, errno=errno.EROFS)
    f.pwrite(b"1", 0)
    for _ in range(3):
        with pytest.raises(OSError) as info:
            f.pwrite(b"x", 0)
        assert info.value.errno == errno.EROFS
    fs.clear_faults()
    f.pwrite(b"ok", 0)
    assert fs.files()["a"] == b"okaa"


def test_name_filter_counts_only_that_file(fs: MemoryFS) -> None:
    a, b = fs.open("a"), fs.open("b")
    fs.fail_on("write", 1, name="b")
    a.pwrite(b"A", 0)
    with pytest.raises(OSError):
        b.pwrite(b"B", 0)
    assert fs.files() == {"a": b"Aaaa", "b": b"bbbb"}


def test_rename_filter_matches_source_or_destination(fs: MemoryFS) -> None:
    fs.fail_on("rename", name="b")
    with pytest.raises(OSError):
        fs.rename("a", "b")
    assert fs.files() == {"a": b"aaaa", "b": b"bbbb"}


def test_failed_open_creates_nothing(fs: MemoryFS) -> None:
    fs.fail_on("open", name="new")
    with pytest.raises(OSError):
        fs.open("new")
    assert not fs.exists("new")
    fs.open("new")
    assert fs.exists("new")


def test_failed_read_truncate_unlink_change_nothing(fs: MemoryFS) -> None:
    f = fs.open("a")
    fs.fail_on("read")
    fs.fail_on("truncate")
    fs.fail_on("unlink")
    with pytest.raises(OSError):
        f.pread(4, 0)
    with pytest.raises(OSError):
        f.truncate(1)
    with pytest.raises(OSError):
        fs.unlink("a")
    assert fs.files() == {"a": b"aaaa", "b": b"bbbb"}


def test_failed_fsync_and_fsync_dir_raise_and_are_not_counted(fs: MemoryFS) -> None:
    fs.fail_on("fsync")
    fs.fail_on("fsync_dir")
    with pytest.raises(OSError):
        fs.open("a").fsync()
    with pytest.raises(OSError):
        fs.fsync_dir()
    assert fs.sync_count == 0


def test_capacity_rejects_growth_without_partial_write(fs: MemoryFS) -> None:
    fs.set_capacity(12)  # 8 bytes used
    f = fs.open("a")
    with pytest.raises(OSError) as info:
        f.pwrite(b"0123456789", 0)  # would grow "a" to 10: total 14
    assert info.value.errno == errno.ENOSPC
    assert fs.files()["a"] == b"aaaa"
    f.pwrite(b"XXXX", 0)  # an overwrite always fits
    f.pwrite(b"YYYY", 4)  # exactly at capacity
    with pytest.raises(OSError):
        fs.open("b").truncate(5)
    fs.set_capacity(None)
    fs.open("b").truncate(5)
    assert fs.files() == {"a": b"XXXXYYYY", "b": b"bbbb\x00"}


@pytest.mark.parametrize(
    ("op", "kwargs"),
    [("bogus", {}), ("write", {"nth": 0}), ("fsync_dir", {"name": "x"})],
)
def test_bad_fault_requests_are_rejected(fs: MemoryFS, op: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        fs.fail_on(op, **kwargs)  # type: ignore[arg-type]


def test_negative_capacity_is_rejected(fs: MemoryFS) -> None:
    with pytest.raises(ValueError):
        fs.set_capacity(-1)


def test_failed_write_is_not_traced() -> None:
    fs = CrashFS({"a": b""})
    f = fs.open("a")
    fs.fail_on("write")
    with pytest.raises(OSError):
        f.pwrite(b"x", 0)
    fs.set_capacity(0)
    with pytest.raises(OSError):
        f.pwrite(b"y", 0)
    assert fs.trace == []


def test_failed_fsync_leaves_data_pending() -> None:
    fs = CrashFS({"a": b"old"})
    f = fs.open("a")
    f.pwrite(b"new", 0)
    fs.fail_on("fsync")
    with pytest.raises(OSError):
        f.fsync()
    assert fs.trace[-1] == Fsync("a", fs.trace[0].inode, ok=False)  # type: ignore[union-attr]
    states = {state.variant: state.files["a"] for state in fs.crash_states()}
    assert states["drop"] == b"old"  # never reported durable ...
    assert states["keep"] == b"new"  # ... but it may have reached the disk


def test_data_covered_by_failed_fsync_is_never_made_durable_by_default() -> None:
    fs = CrashFS({"a": b"old!"})
    f = fs.open("a")
    f.pwrite(b"new", 0)
    fs.fail_on("fsync")
    with pytest.raises(OSError):
        f.fsync()
    f.pwrite(b"!", 3)
    f.fsync()  # the retry "succeeds", as on Linux after fsyncgate
    assert fs.durable_files() == {"a": b"old!"}


def test_data_covered_by_failed_fsync_is_retried_when_configured() -> None:
    fs = CrashFS({"a": b"old!"}, lose_on_failed_fsync=False)
    f = fs.open("a")
    f.pwrite(b"new", 0)
    fs.fail_on("fsync")
    with pytest.raises(OSError):
        f.fsync()
    f.fsync()
    assert fs.durable_files() == {"a": b"new!"}


def test_failed_fsync_dir_leaves_directory_ops_pending() -> None:
    fs = CrashFS()
    fs.open("a")
    fs.fail_on("fsync_dir")
    with pytest.raises(OSError):
        fs.fsync_dir()
    assert fs.trace[-1] == FsyncDir(ok=False)
    assert fs.durable_files() == {}
    fs.fsync_dir()
    assert fs.durable_files() == {"a": b""}


def test_fault_counting_starts_when_installed() -> None:
    fs = CrashFS({"a": b""})
    f = fs.open("a")
    f.pwrite(b"1", 0)
    f.pwrite(b"2", 0)
    fs.fail_on("write", 1)
    with pytest.raises(OSError):
        f.pwrite(b"3", 0)
    assert [op.data for op in fs.trace if isinstance(op, Write)] == [b"1", b"2"]
