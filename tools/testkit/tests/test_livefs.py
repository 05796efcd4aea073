"""MemoryFS (and the live view CrashFS shares): directory and handle behaviour."""

from __future__ import annotations

import pytest

from strata_testkit import CrashFS, FileProtocol, FileSystemProtocol, MemoryFS

FS_TYPES = [MemoryFS, CrashFS]


@pytest.fixture(params=FS_TYPES, ids=lambda cls: cls.__name__)
def fs(request: pytest.FixtureRequest) -> MemoryFS | CrashFS:
    fs_type: type[MemoryFS | CrashFS] = request.param
    return fs_type({"existing": b"old"})


def test_fits_the_protocols(fs: MemoryFS) -> None:
    assert isinstance(fs, FileSystemProtocol)
    assert isinstance(fs.open("f"), FileProtocol)


def test_constructor_files_are_visible(fs: MemoryFS) -> None:
    assert fs.listdir() == ["existing"]
    assert fs.open("existing", create=False).pread(10, 0) == b"old"
    assert fs.files() == {"existing": b"old"}


def test_open_missing_without_create_raises(fs: MemoryFS) -> None:
    with pytest.raises(FileNotFoundError):
        fs.open("missing", create=False)
    assert not fs.exists("missing")


def test_open_creates_and_listdir_is_sorted(fs: MemoryFS) -> None:
    fs.open("zeta")
    fs.open("alpha")
    assert fs.listdir() == ["alpha", "existing", "zeta"]
    assert fs.exists("alpha")


def test_writes_are_shared_between_handles(fs: MemoryFS) -> None:
    a = fs.open("f")
    b = fs.open("f")
    a.pwrite(b"xyz", 0)
    assert b.pread(3, 0) == b"xyz"
    assert b.size() == 3


def test_rename_replaces_destination_atomically(fs: MemoryFS) -> None:
    fs.open("tmp").pwrite(b"new", 0)
    fs.rename("tmp", "existing")
    assert fs.files() == {"existing": b"new"}


def test_rename_missing_source_raises(fs: MemoryFS) -> None:
    with pytest.raises(FileNotFoundError):
        fs.rename("missing", "x")


def test_rename_onto_itself_is_a_no_op(fs: MemoryFS) -> None:
    fs.rename("existing", "existing")
    assert fs.files() == {"existing": b"old"}


def test_handle_follows_its_file_across_rename(fs: MemoryFS) -> None:
    handle = fs.open("a")
    fs.rename("a", "b")
    handle.pwrite(b"hi", 0)
    assert fs.files()["b"] == b"hi"
    assert handle.name == "b"


def test_unlink_removes_name_but_open_handle_keeps_working(fs: MemoryFS) -> None:
    handle = fs.open("existing")
    fs.unlink("existing")
    assert not fs.exists("existing")
    handle.pwrite(b"orphan", 0)
    assert handle.pread(6, 0) == b"orphan"
    handle.close()
    assert fs.files() == {}


def test_unlink_missing_raises(fs: MemoryFS) -> None:
    with pytest.raises(FileNotFoundError):
        fs.unlink("missing")


def test_recreated_name_is_a_new_empty_file(fs: MemoryFS) -> None:
    old = fs.open("existing")
    fs.unlink("existing")
    new = fs.open("existing")
    assert new.size() == 0
    assert old.pread(3, 0) == b"old"


def test_closed_handle_raises_value_error(fs: MemoryFS) -> None:
    handle = fs.open("f")
    handle.close()
    handle.close()
    with pytest.raises(ValueError, match="closed"):
        handle.pwrite(b"x", 0)
    with pytest.raises(ValueError, match="closed"):
        handle.fsync()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_invalid_names_are_rejected(fs: MemoryFS, name: str) -> None:
    with pytest.raises(ValueError, match="invalid file name"):
        fs.open(name)


def test_syncs_are_counted(fs: MemoryFS) -> None:
    fs.open("f").fsync()
    fs.fsync_dir()
    assert fs.sync_count == 2


def test_files_snapshot_is_a_copy(fs: MemoryFS) -> None:
    snapshot = fs.files()
    fs.open("existing").pwrite(b"NEW", 0)
    assert snapshot == {"existing": b"old"}
