"""Power loss at every fsync and every write, across save, apply and checkpoint.

Uses strata_testkit.CrashFS, which records every write, fsync and directory op and
rebuilds every state a power loss could leave: un-fsynced writes dropped, kept, reordered,
torn or trashed at 512-byte sectors; directory ops kept as a prefix. Oracle: a snapshot
file is always an old or a new version, never a mixture; ``Persisted.open`` gives the
state of a prefix of the applied operations holding every operation whose sync returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from conftest import COMPRESSIONS, Journal

from persist_db import Persisted, load, save
from strata_testkit import CrashFS, CrashState, explore_crashes


@dataclass
class History:
    """What a workload applied, and where in the trace each acknowledgement returned."""

    applied: list[bytes] = field(default_factory=list)
    durable_at: list[tuple[int, int]] = field(default_factory=list)  # (trace length, count)

    def acknowledged(self, fs: CrashFS, count: int) -> None:
        self.durable_at.append((len(fs.trace), count))

    def must_survive(self, point: int) -> int:
        """How many operations were acknowledged durable before crash point ``point``."""
        return max((count for at, count in self.durable_at if at <= point), default=0)


def op(i: int) -> bytes:
    return (b"op-%d:" % i) * (1 + i % 7)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_save_over_an_old_snapshot_is_atomic_at_every_op(compression: str | None) -> None:
    versions = [bytes([i]) * (700 + 300 * i) for i in range(3)]
    saved: list[int] = []

    def workload(fs: CrashFS) -> None:
        for i, payload in enumerate(versions):
            save("s.snap", payload, kind="k", compression=compression, meta={"v": i}, fs=fs)
            saved.append(len(fs.trace))

    def check(state: CrashState, point: int) -> None:
        must = sum(1 for at in saved if at <= point)
        if "s.snap" not in state.files:
            assert must == 0, state.description
            return
        snap = load("s.snap", fs=state.fs())  # never CorruptSnapshotError
        version = snap.meta["v"]
        assert snap.payload == versions[version], state.description
        assert version >= must - 1, f"{state.description}: lost a returned save"

    checked = explore_crashes(workload, check, kind="all", max_states=12)
    assert checked > 50


def persisted_workload(
    history: History, *, rounds: int, per_round: int, sync: str = "always", keep: int = 2
) -> object:
    def workload(fs: CrashFS) -> None:
        with Persisted.open(fs, Journal, sync=sync, keep=keep, segment_size=4096) as p:
            for round_ in range(rounds):
                for i in range(per_round):
                    data = op(round_ * per_round + i)
                    p.apply(data)
                    history.applied.append(data)
                    if sync == "always":
                        history.acknowledged(fs, len(history.applied))
                p.checkpoint()  # syncs the log first: everything so far is durable
                history.acknowledged(fs, len(history.applied))

    return workload


def check_prefix(history: History, state: CrashState, point: int) -> None:
    fs = state.fs()
    with Persisted.open(fs, Journal) as p:
        got = list(p.obj.ops)
        assert got == history.applied[: len(got)], f"{state.description}: not a prefix"
        need = history.must_survive(point)
        assert len(got) >= need, f"{state.description}: lost acknowledged op {need}"
        assert p.last_lsn == len(got)
        p.apply(b"after recovery")
        p.checkpoint()
    with Persisted.open(fs, Journal) as p:  # the recovered directory works on
        assert p.obj.ops == [*got, b"after recovery"], state.description


def test_apply_and_checkpoint_at_every_fsync() -> None:
    history = History()
    workload = persisted_workload(history, rounds=4, per_round=6)
    checked = explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="sync", max_states=10
    )
    assert checked > 100 and len(history.applied) == 24


def test_apply_and_checkpoint_at_every_write_with_log_truncation() -> None:
    history = History()
    workload = persisted_workload(history, rounds=5, per_round=40, keep=1)
    checked = explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="write", max_states=4
    )
    assert checked > 200


@pytest.mark.parametrize("sync", ["never", "interval"])
def test_unsynced_policies_lose_only_what_was_not_acknowledged(sync: str) -> None:
    history = History()
    workload = persisted_workload(history, rounds=3, per_round=5, sync=sync)
    explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="sync", max_states=8
    )


@pytest.mark.slow
def test_apply_and_checkpoint_at_every_op_larger() -> None:
    history = History()
    workload = persisted_workload(history, rounds=6, per_round=30, keep=3)
    checked = explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="all", max_states=6
    )
    assert checked > 800
