"""The I/O-error loop (SQLite's Nth-failure test) over save, apply and checkpoint.

For each kind of file operation and n = 1, 2, ...: the n-th such call fails with EIO. The
workload must raise a typed error (OSError or a PersistError) or finish, and reopening the
directory, with the fault gone, must give a prefix of the applied operations holding
every acknowledged one. The loop stops when the workload finishes without hitting the
fault.
"""

from __future__ import annotations

import contextlib
import errno

import pytest
from conftest import Journal

from persist_db import Persisted, PersistError, load, save
from strata_testkit import MemoryFS

OPS = ["write", "fsync", "fsync_dir", "open", "rename", "unlink", "truncate", "read"]


def run_workload(fs: MemoryFS, acknowledged: list[bytes], applied: list[bytes]) -> None:
    with Persisted.open(fs, Journal, keep=1, segment_size=4096) as p:
        for round_ in range(3):
            for i in range(25):
                op = b"r%d-%d:" % (round_, i) * 5
                applied.append(op)
                p.apply(op)
                acknowledged.append(op)
            p.checkpoint()


@pytest.mark.parametrize("op", OPS)
def test_nth_failure_of_each_operation_is_typed_and_recoverable(op: str) -> None:
    for n in range(1, 400):
        fs = MemoryFS()
        fs.fail_on(op, n, errno=errno.EIO)
        acknowledged: list[bytes] = []
        applied: list[bytes] = []
        with contextlib.suppress(OSError, PersistError):
            run_workload(fs, acknowledged, applied)
        hit = fs.faults.injected > 0
        fs.clear_faults()
        with Persisted.open(fs, Journal) as p:
            got = p.obj.ops
            assert got == applied[: len(got)], f"{op} #{n}: not a prefix"
            assert len(got) >= len(acknowledged), f"{op} #{n}: lost an acknowledged op"
        if not hit:
            assert n > 1, f"{op}: the workload never made such a call"
            if op in ("write", "fsync"):  # one per acknowledged apply, at least
                assert n > 75, f"{op}: only {n - 1} calls"
            return
    raise AssertionError(f"{op}: the workload kept hitting the fault")


@pytest.mark.parametrize("op", ["write", "fsync", "open", "rename", "truncate"])
def test_a_failed_save_leaves_the_previous_snapshot(op: str) -> None:
    fs = MemoryFS()
    save("s.snap", b"old", kind="k", fs=fs)
    fs.fail_on(op, 1, errno=errno.EIO)
    with pytest.raises(OSError):
        save("s.snap", [b"new", b"er"], kind="k", compression="zstd", fs=fs)
    fs.clear_faults()
    assert load("s.snap", fs=fs).payload == b"old"
    assert sorted(fs.files()) == ["s.snap"]
