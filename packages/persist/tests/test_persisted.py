"""Persisted: open, apply, checkpoint, fallback to an older snapshot, and failures."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest
from conftest import Journal

from persist_db import (
    CorruptSnapshotError,
    Persistable,
    Persisted,
    PersistedLockedError,
    PersistedPoisonedError,
    UnsupportedFormatError,
    WrongKindError,
    save,
)
from strata_testkit import MemoryFS


def ops(n: int, start: int = 0) -> list[bytes]:
    return [b"op-%d" % i for i in range(start, start + n)]


def test_journal_satisfies_the_protocol() -> None:
    assert isinstance(Journal(), Persistable)


def test_apply_checkpoint_reopen_round_trip(tmp_path: Path) -> None:
    with Persisted.open(tmp_path / "db", Journal) as p:
        assert p.recovery.snapshot is None and p.obj.ops == []
        for op in ops(5):
            p.apply(op)
        info = p.checkpoint()
        assert info is not None and info.kind == "journal" and info.version == 2
        assert p.checkpoint() is None  # nothing new since
        for op in ops(3, 5):
            p.apply(op)
        assert p.last_lsn == 8 and p.durable_lsn == 8
    with Persisted.open(tmp_path / "db", Journal) as p:
        assert p.obj.ops == ops(8)
        report = p.recovery
        assert (report.snapshot_lsn, report.replayed, report.fell_back) == (5, 3, False)
        assert p.snapshots() == ["snapshot-00000000000000000005.snap"]


def test_keep_bounds_the_snapshots_and_the_log_is_truncated(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    with Persisted.open(directory, Journal, keep=2, segment_size=4096) as p:
        for round_ in range(6):
            for op in ops(40, 40 * round_):
                p.apply(op * 5)
            p.checkpoint()
        assert len(p.snapshots()) == 2
    segments = [n for n in os.listdir(directory) if n.endswith(".wal")]
    with Persisted.open(directory, Journal) as p:
        assert len(p.obj.ops) == 240
        assert p.recovery.snapshot_lsn == 240 and p.recovery.replayed == 0
    assert len(segments) < 10  # 240 records of ~30 bytes would fill more without truncation


def test_corrupt_newest_snapshot_falls_back_and_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "db"
    with Persisted.open(directory, Journal, keep=3, segment_size=4096) as p:
        for round_ in range(3):
            for op in ops(100, 100 * round_):
                p.apply(op)
            p.checkpoint()  # small segments: the log really is truncated here
        p.apply(b"last")
        newest = p.snapshots()[0]
    assert len([n for n in os.listdir(directory) if n.endswith(".wal")]) < 4
    data = bytearray((directory / newest).read_bytes())
    data[-2] ^= 0x10
    (directory / newest).write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="persist_db"):
        p = Persisted.open(directory, Journal)
    with p:
        assert p.obj.ops == [*ops(300), b"last"]  # the older snapshot plus the log
        report = p.recovery
        assert report.fell_back and report.fallbacks[0].name == newest
        assert "payload CRC32C mismatch" in report.fallbacks[0].reason
        assert report.snapshot_lsn == 200 and report.replayed == 101
        assert newest in caplog.text
        info = p.checkpoint()
        assert info is not None and info.meta == {"lsn": 301}
        assert p.snapshots()[0] == "snapshot-00000000000000000301.snap"
    with Persisted.open(directory, Journal) as p:
        assert p.obj.ops == [*ops(300), b"last"] and not p.recovery.fell_back


def test_every_snapshot_corrupt_and_log_truncated_is_a_typed_error(tmp_path: Path) -> None:
    directory = tmp_path / "db"
    with Persisted.open(directory, Journal, keep=1, segment_size=4096) as p:
        for op in ops(300):
            p.apply(op * 4)
        p.checkpoint()
        p.apply(b"more")
        (name,) = p.snapshots()
    (directory / name).write_bytes(b"garbage")
    with pytest.raises(CorruptSnapshotError, match="log starts at LSN"):
        Persisted.open(directory, Journal)


def test_all_snapshots_corrupt_but_whole_log_present_replays_from_scratch() -> None:
    fs = MemoryFS()
    with Persisted.open(fs, Journal) as p:
        for op in ops(5):
            p.apply(op)
        p.checkpoint()  # one segment: nothing truncated, the log still starts at 1
    name = "snapshot-00000000000000000005.snap"
    files = fs.files()
    files[name] = files[name][:-1]
    with Persisted.open(MemoryFS(files), Journal) as p:
        assert p.obj.ops == ops(5) and p.recovery.snapshot is None
        assert p.recovery.fallbacks[0].reason.startswith("file is")


def test_snapshot_with_wrong_meta_or_ahead_of_the_log_is_skipped() -> None:
    fs = MemoryFS()
    with Persisted.open(fs, Journal) as p:
        for op in ops(3):
            p.apply(op)
        p.checkpoint()
    save("snapshot-00000000000000000007.snap", b"", kind="journal", meta={"lsn": 7}, fs=fs)
    save("snapshot-00000000000000000003.snap", b"", kind="journal", meta={"lsn": 1}, fs=fs)
    with Persisted.open(fs, Journal) as p:
        assert p.obj.ops == ops(3) and p.recovery.snapshot is None  # replayed from LSN 1
        reasons = [f.reason for f in p.recovery.fallbacks]
        assert "log ends at 3" in reasons[0] and "does not record LSN 3" in reasons[1]
        p.apply(b"x")
        p.checkpoint()  # the unusable snapshot past the log's end is removed
        assert p.snapshots() == [
            "snapshot-00000000000000000004.snap",
            "snapshot-00000000000000000003.snap",
        ]


def test_unknown_payload_version_and_wrong_kind_are_raised_not_skipped() -> None:
    fs = MemoryFS()
    save("snapshot-00000000000000000000.snap", b"", kind="journal", version=9, fs=fs,
         meta={"lsn": 0})  # fmt: skip
    with pytest.raises(UnsupportedFormatError, match="version 9"):
        Persisted.open(fs, Journal)
    save("snapshot-00000000000000000000.snap", b"", kind="other", meta={"lsn": 0}, fs=fs)
    with pytest.raises(WrongKindError):
        Persisted.open(fs, Journal)


def test_a_failing_object_apply_poisons_until_reopened() -> None:
    fs = MemoryFS()
    p = Persisted.open(fs, Journal)
    p.apply(b"a")
    with pytest.raises(RuntimeError, match="refuses"):
        p.apply(b"explode")
    with pytest.raises(PersistedPoisonedError):
        p.apply(b"b")
    with pytest.raises(PersistedPoisonedError):
        p.checkpoint()
    p.close()
    with pytest.raises(RuntimeError, match="refuses"):  # the logged op replays and fails
        Persisted.open(fs, Journal)


def test_a_failed_log_fsync_poisons_and_nothing_is_acknowledged() -> None:
    fs = MemoryFS()
    p = Persisted.open(fs, Journal)
    p.apply(b"a")
    fs.fail_on("fsync", 1, errno=errno.EIO)
    with pytest.raises(PersistedPoisonedError, match="log failed"):
        p.apply(b"b")
    assert p.obj.ops == [b"a"]
    with pytest.raises(PersistedPoisonedError):
        p.apply(b"c")
    p.close()


def test_a_failed_snapshot_write_keeps_the_object_usable() -> None:
    fs = MemoryFS()
    with Persisted.open(fs, Journal) as p:
        p.apply(b"a")
        fs.fail_on("rename", 1, errno=errno.ENOSPC)
        with pytest.raises(OSError):
            p.checkpoint()
        p.apply(b"b")
        assert p.checkpoint() is not None
    assert sorted(n for n in fs.files() if "snap" in n) == ["snapshot-00000000000000000002.snap"]
    with Persisted.open(fs, Journal) as p:
        assert p.obj.ops == [b"a", b"b"]


def test_leftover_temporary_snapshot_is_removed() -> None:
    fs = MemoryFS({"snapshot-00000000000000000004.snap.tmp": b"half", "other.tmp": b"x"})
    with Persisted.open(fs, Journal):
        pass
    assert "snapshot-00000000000000000004.snap.tmp" not in fs.files()
    assert "other.tmp" in fs.files()


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with Persisted.open(tmp_path / "db", Journal), pytest.raises(PersistedLockedError):
        Persisted.open(tmp_path / "db", Journal)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        Persisted.open(tmp_path / "db", Journal, keep=0)
    with pytest.raises(ValueError, match="sync"):
        Persisted.open(tmp_path / "db2", Journal, sync="sometimes")
    with Persisted.open(tmp_path / "db3", Journal) as p, pytest.raises(TypeError):
        p.apply("text")  # type: ignore[arg-type]


def test_never_policy_syncs_on_demand_and_compressed_checkpoints(tmp_path: Path) -> None:
    with Persisted.open(tmp_path / "db", Journal, sync="never", compression="zstd") as p:
        for op in ops(10):
            p.apply(op)
        assert p.durable_lsn < 10
        p.sync()
        assert p.durable_lsn == 10
        info = p.checkpoint()
        assert info is not None and info.compression == "zstd"
    with Persisted.open(tmp_path / "db", Journal) as p:
        assert p.obj.ops == ops(10)
