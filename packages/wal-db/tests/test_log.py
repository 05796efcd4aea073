"""The WriteAheadLog API on a real directory: LSNs, segments, sync policies, truncation."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import payload, records, segment_files

from strata_testkit import FSFile, MemoryFS
from wal_db import (
    LogClosedError,
    LogLockedError,
    LsnOutOfRangeError,
    ReadOnlyLogError,
    RecordTooLargeError,
    WriteAheadLog,
)


def test_lsns_start_at_one_and_are_stable_across_reopen(logdir: Path) -> None:
    with WriteAheadLog.open(logdir) as log:
        assert (log.last_lsn, log.durable_lsn, records(log)) == (0, 0, [])
        assert [log.append(payload(i)) for i in (1, 2, 3)] == [1, 2, 3]
    with WriteAheadLog.open(logdir) as log:
        assert log.recovery.clean
        assert log.last_lsn == 3 and log.durable_lsn == 3
        assert log.append(payload(4)) == 4
        assert records(log) == [(i, payload(i)) for i in (1, 2, 3, 4)]


def test_payload_types_and_empty_records(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, sync="never") as log:
        log.append(b"")
        log.append(bytearray(b"ba"))
        log.append(memoryview(b"xmvx")[1:3])
        log.append_many([memoryview(array.array("i", [1, 2]))])  # 8 bytes, not 2 items
        with pytest.raises(TypeError, match="bytes-like"):
            log.append("text")  # type: ignore[arg-type]
        assert records(log) == [
            (1, b""),
            (2, b"ba"),
            (3, b"mv"),
            (4, array.array("i", [1, 2]).tobytes()),
        ]


def test_records_roll_across_segments_and_never_span_them(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, segment_size=4096, sync="never") as log:
        for lsn in range(1, 301):
            log.append(payload(lsn, 100))
        big = log.append(b"B" * 10_000)  # larger than a segment: a segment of its own
        log.append(b"after")
        assert log.stats().segments == len(segment_files(logdir))
    files = segment_files(logdir)
    assert len(files) > 10
    for name in files[:-2]:
        assert os.path.getsize(logdir / name) <= 4096
    with WriteAheadLog.open(logdir) as log:
        got = records(log)
    assert got[:300] == [(lsn, payload(lsn, 100)) for lsn in range(1, 301)]
    assert got[300:] == [(big, b"B" * 10_000), (big + 1, b"after")]


def test_max_record_size_is_enforced_before_anything_is_written(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, max_record_size=10) as log:
        log.append(b"x" * 10)
        with pytest.raises(RecordTooLargeError) as info:
            log.append(b"x" * 11)
        assert (info.value.size, info.value.limit) == (11, 10)
        with pytest.raises(RecordTooLargeError):
            log.append_many([b"ok", b"y" * 11])
        assert log.last_lsn == 1


def test_append_many_gives_consecutive_lsns_with_one_fsync(logdir: Path) -> None:
    with WriteAheadLog.open(logdir) as log:
        log.append(b"first")
        before = log.stats().fsyncs
        lsns = log.append_many(payload(i) for i in range(2, 12))
        assert lsns == range(2, 12)
        assert log.stats().fsyncs == before + 1
        assert log.durable_lsn == 11
        assert log.append_many([]) == range(12, 12)
        assert records(log, 2) == [(i, payload(i)) for i in range(2, 12)]


def test_sync_policies_and_durable_lsn(logdir: Path) -> None:
    with WriteAheadLog.open(logdir / "never", sync="never") as log:
        log.append(b"a")
        log.append(b"b")
        assert log.durable_lsn == 0 and log.stats().fsyncs == 0
        log.sync(1)
        assert log.durable_lsn == 2  # the sync covered everything written
        with pytest.raises(LsnOutOfRangeError):
            log.sync(3)
    with WriteAheadLog.open(logdir / "interval", sync="interval", sync_interval=0.01) as log:
        log.append(b"a")
        deadline = time.monotonic() + 10
        while log.durable_lsn < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert log.durable_lsn == 1
    with WriteAheadLog.open(
        logdir / "every", sync="interval", sync_interval=3600, sync_every=5
    ) as log:
        for i in range(5):
            log.append(payload(i))
        deadline = time.monotonic() + 10
        while log.durable_lsn < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert log.durable_lsn == 5  # sync_every, long before the interval


class _StallingFile:
    """A file of :class:`_StallingFS`: fsync blocks while the filesystem stalls."""

    def __init__(self, fs: _StallingFS, inner: FSFile) -> None:
        self._fs = fs
        self._inner = inner

    def fsync(self) -> None:
        if self._fs.stalling:
            self._fs.entered.set()
            assert self._fs.released.wait(30), "the test never released the fsync"
        self._inner.fsync()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


class _StallingFS:
    """A MemoryFS whose file fsyncs can be held (a disk that takes seconds to flush)."""

    def __init__(self) -> None:
        self.inner = MemoryFS()
        self.stalling = False
        self.entered = threading.Event()
        self.released = threading.Event()

    def open(self, name: str, *, create: bool = True) -> _StallingFile:
        return _StallingFile(self, self.inner.open(name, create=create))

    # Spelled out, not delegated by __getattr__: from Python 3.12 on, isinstance() against
    # a runtime-checkable Protocol (FileSystem) looks members up statically.
    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def listdir(self) -> list[str]:
        return self.inner.listdir()

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)

    def unlink(self, name: str) -> None:
        self.inner.unlink(name)

    def fsync_dir(self) -> None:
        self.inner.fsync_dir()


def test_interval_hands_records_to_the_os_while_an_fsync_stalls() -> None:
    """A slow fsync holds the background syncer, not the records: an append hands the
    buffer to the OS once its oldest record waited ``sync_interval``, so a process crash
    (the OS keeps what it was given) loses at most that window."""
    fs = _StallingFS()
    log = WriteAheadLog.open(fs, sync="interval", sync_interval=0.02, sync_every=10**6)
    try:
        fs.stalling = True
        log.append(payload(1))
        assert fs.entered.wait(10), "the background syncer never fsynced"
        for lsn in range(2, 21):
            assert log.append(payload(lsn)) == lsn
        time.sleep(0.05)  # record 2 has now waited longer than sync_interval
        assert log.append(payload(21)) == 21
        assert log.durable_lsn == 0  # the fsync is still stalled
        with WriteAheadLog.open(fs.inner, read_only=True) as reader:  # what the OS has
            assert records(reader) == [(lsn, payload(lsn)) for lsn in range(1, 22)]
        log.append(payload(22))  # just appended: it may wait for the next hand-off
    finally:
        fs.released.set()
        log.close()
    with WriteAheadLog.open(fs.inner) as again:
        assert records(again) == [(lsn, payload(lsn)) for lsn in range(1, 23)]


def test_group_commit_shares_fsyncs_between_threads(logdir: Path) -> None:
    threads, per_thread = 8, 40
    with WriteAheadLog.open(logdir) as log:
        got: dict[int, bytes] = {}
        lock = threading.Lock()

        def work(t: int) -> None:
            for i in range(per_thread):
                data = f"{t}:{i}".encode()
                lsn = log.append(data)
                assert log.durable_lsn >= lsn  # sync="always": durable on return
                with lock:
                    got[lsn] = data

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert sorted(got) == list(range(1, threads * per_thread + 1))
        assert records(log) == sorted(got.items())
        assert log.stats().fsyncs < threads * per_thread


def test_replay_bounds(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, segment_size=4096, sync="never") as log:
        for lsn in range(1, 201):
            log.append(payload(lsn, 60))
        assert records(log, 150)[0] == (150, payload(150, 60))
        assert records(log, 201) == [] and records(log, 10**9) == []
        removed = log.truncate_before(100)
        assert removed > 0 and log.first_lsn <= 100
        assert records(log)[0][0] == log.first_lsn
        with pytest.raises(LsnOutOfRangeError, match="truncated away"):
            records(log, 1)
        with pytest.raises(TypeError):
            records(log, "1")  # type: ignore[arg-type]


def test_truncate_before_keeps_every_record_at_or_above_lsn(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, segment_size=4096, sync="never") as log:
        for lsn in range(1, 401):
            log.append(payload(lsn, 80))
        for cut in (1, 57, 120, 399, 400, 10**6):
            log.truncate_before(cut)
            kept = records(log)
            assert kept[-1][0] == 400
            assert kept[0][0] <= min(cut, 400)
            assert kept == [(lsn, payload(lsn, 80)) for lsn in range(kept[0][0], 401)]
        assert log.stats().segments == 1  # the active segment is never deleted
    with WriteAheadLog.open(logdir) as log:
        assert log.last_lsn == 400 and log.append(b"next") == 401


def test_roll_then_truncate_empties_the_log_and_keeps_lsns(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, sync="never") as log:
        assert log.roll() is False  # nothing to seal in a new log
        for lsn in range(1, 51):
            log.append(payload(lsn, 100))
        assert log.roll() is True
        assert log.durable_lsn == 50  # sealing fsyncs what was appended
        assert log.roll() is False  # the new active segment is still empty
        assert log.truncate_before(51) == 1
        assert records(log) == [] and log.first_lsn == 51 and log.last_lsn == 50
        assert len(segment_files(logdir)) == 1
        assert log.append(b"next") == 51
    with WriteAheadLog.open(logdir) as log:
        assert log.recovery.clean and records(log) == [(51, b"next")]
        assert log.roll() is True and log.truncate_before(52) == 1
    with WriteAheadLog.open(logdir) as log:  # an empty log still knows its next LSN
        assert records(log) == [] and log.append(b"after") == 52
    with WriteAheadLog.open(logdir, read_only=True) as reader, pytest.raises(ReadOnlyLogError):
        reader.roll()
    closed = WriteAheadLog.open(logdir)
    closed.close()
    with pytest.raises(LogClosedError):
        closed.roll()


def test_second_writer_is_refused_and_readers_work_beside_the_writer(logdir: Path) -> None:
    with WriteAheadLog.open(logdir) as log:
        log.append(b"one")
        with pytest.raises(LogLockedError):
            WriteAheadLog.open(logdir)
        code = (
            "import sys, wal_db\n"
            "try:\n    wal_db.WriteAheadLog.open(sys.argv[1])\n"
            "except wal_db.LogLockedError:\n    sys.exit(3)\n"
        )
        done = subprocess.run([sys.executable, "-c", code, str(logdir)], check=False)
        assert done.returncode == 3
        with WriteAheadLog.open(logdir, read_only=True) as reader:
            assert records(reader) == [(1, b"one")]
            log.append(b"two")  # the reader follows the live writer
            assert records(reader) == [(1, b"one"), (2, b"two")]
            with pytest.raises(ReadOnlyLogError):
                reader.append(b"x")
            with pytest.raises(ReadOnlyLogError):
                reader.truncate_before(2)
    with WriteAheadLog.open(logdir) as log:  # the lock is released on close
        assert log.last_lsn == 2


def test_read_only_open_of_a_missing_log(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        WriteAheadLog.open(tmp_path / "absent", read_only=True)
    assert not (tmp_path / "absent").exists()


def test_closed_log_refuses_work_and_close_is_idempotent(logdir: Path) -> None:
    log = WriteAheadLog.open(logdir, sync="never")
    log.append(b"a")
    log.close()
    log.close()
    assert log.closed and "closed" in repr(log)
    for call in (lambda: log.append(b"b"), log.sync, lambda: records(log)):
        with pytest.raises(LogClosedError):
            call()
    with WriteAheadLog.open(logdir) as again:  # close synced the "never" record
        assert records(again) == [(1, b"a")]


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("segment_size", 100, ValueError),
        ("segment_size", "big", TypeError),
        ("sync", "sometimes", ValueError),
        ("sync_interval", 0, ValueError),
        ("sync_interval", float("nan"), ValueError),
        ("sync_every", 0, ValueError),
        ("max_record_size", 2**32, ValueError),
        ("max_record_size", True, TypeError),
        ("recovery", "lenient", ValueError),
        ("read_only", "yes", TypeError),
    ],
)
def test_bad_options_are_typed_errors(
    logdir: Path, option: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=option):
        WriteAheadLog.open(logdir, **{option: value})  # type: ignore[arg-type]


def test_open_rejects_a_non_filesystem(logdir: Path) -> None:
    with pytest.raises(TypeError, match="FileSystem"):
        WriteAheadLog.open(42)  # type: ignore[arg-type]


def test_stats_count_what_happened(logdir: Path) -> None:
    with WriteAheadLog.open(logdir, segment_size=4096) as log:
        for lsn in range(1, 101):
            log.append(payload(lsn, 100))
        log.truncate_before(50)
        stats = log.stats()
    assert stats.appends == 100 and stats.payload_bytes == 100 * 100
    assert stats.last_lsn == stats.durable_lsn == 100
    assert stats.segments_created > 1 and stats.segments_deleted > 0
    assert stats.fsyncs >= 100 and not stats.poisoned
