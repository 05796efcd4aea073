"""Injected I/O failures: a failed write or fsync poisons the log; reopening recovers."""

from __future__ import annotations

import errno
import threading

import pytest
from conftest import payload, records

from strata_testkit import CrashFS, Fsync, MemoryFS
from wal_db import LogPoisonedError, WriteAheadLog


def test_failed_fsync_poisons_until_reopen_and_is_never_retried() -> None:
    fs = CrashFS()
    log = WriteAheadLog.open(fs)
    log.append(b"one")
    fs.fail_on("fsync", errno=errno.EIO)
    with pytest.raises(LogPoisonedError) as info:
        log.append(b"two")
    assert isinstance(info.value.__cause__, OSError)
    fsyncs = sum(isinstance(op, Fsync) for op in fs.trace)
    for call in (lambda: log.append(b"three"), log.sync, lambda: log.truncate_before(1)):
        with pytest.raises(LogPoisonedError):
            call()
    assert sum(isinstance(op, Fsync) for op in fs.trace) == fsyncs  # no retry
    assert log.stats().poisoned and log.durable_lsn == 1
    log.close()  # releases without syncing
    fs.clear_faults()
    with WriteAheadLog.open(fs) as again:
        got = records(again)
        assert got[0] == (1, b"one") and len(got) <= 2  # "two" may or may not be there
        assert again.append(b"after") == len(got) + 1


def test_full_disk_poisons_and_loses_nothing_that_was_synced() -> None:
    fs = MemoryFS()
    with WriteAheadLog.open(fs, sync="never") as log:
        for lsn in range(1, 11):
            log.append(payload(lsn, 100))
        log.sync()
        fs.set_capacity(sum(len(v) for v in fs.files().values()) + 50)
        with pytest.raises(LogPoisonedError) as info:
            for lsn in range(11, 2000):
                log.append(payload(lsn, 100))
        assert info.value.__cause__.errno == errno.ENOSPC  # type: ignore[union-attr]
        with pytest.raises(LogPoisonedError):
            log.append(b"more")
    fs.set_capacity(None)
    with WriteAheadLog.open(fs) as log:
        assert records(log)[:10] == [(lsn, payload(lsn, 100)) for lsn in range(1, 11)]


def test_waiting_committers_all_see_the_failure() -> None:
    fs = MemoryFS()
    log = WriteAheadLog.open(fs)
    fs.fail_on("fsync", errno=errno.EIO, persistent=True)
    outcomes: list[str] = []
    lock = threading.Lock()

    def commit(i: int) -> None:
        try:
            log.append(payload(i))
            result = "ok"
        except LogPoisonedError:
            result = "poisoned"
        with lock:
            outcomes.append(result)

    pool = [threading.Thread(target=commit, args=(i,)) for i in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert outcomes == ["poisoned"] * 8  # no one hangs, no one is told "durable"
    log.close()


def test_failed_directory_fsync_in_truncate_before_poisons() -> None:
    fs = MemoryFS()
    log = WriteAheadLog.open(fs, segment_size=4096, sync="never")
    for lsn in range(1, 200):
        log.append(payload(lsn, 100))
    log.sync()
    fs.fail_on("fsync_dir", errno=errno.EIO)
    with pytest.raises(LogPoisonedError):
        log.truncate_before(150)
    with pytest.raises(LogPoisonedError):
        log.append(b"x")
    log.close()
    fs.clear_faults()
    with WriteAheadLog.open(fs) as again:
        got = records(again)
        assert got[-1][0] == 199 and got[0][0] <= 150


def test_failed_segment_creation_poisons() -> None:
    fs = MemoryFS()
    log = WriteAheadLog.open(fs, segment_size=4096, sync="never")
    fs.fail_on("rename", errno=errno.EIO)
    with pytest.raises(LogPoisonedError):
        for lsn in range(1, 100):
            log.append(payload(lsn, 100))
    log.close()
    fs.clear_faults()
    with WriteAheadLog.open(fs) as again:
        assert [lsn for lsn, _ in records(again)] == list(range(1, again.last_lsn + 1))
        assert again.last_lsn >= 30
