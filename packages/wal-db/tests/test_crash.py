"""Power loss at every fsync (and every write): recovery gives a prefix holding every
record whose sync returned.

Uses strata_testkit.CrashFS, which records every write, fsync and directory op, and
rebuilds every state a power loss could leave: un-fsynced writes dropped, kept, reordered,
or torn and trashed at 512-byte sectors; directory ops kept as a prefix. Each state is
opened as a log and replayed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from conftest import payload

from strata_testkit import CrashFS, CrashState, explore_crashes
from wal_db import WriteAheadLog


@dataclass
class History:
    """What the workload appended, and where in the trace each sync returned."""

    appended: dict[int, bytes] = field(default_factory=dict)
    synced_at: list[tuple[int, int]] = field(default_factory=list)  # (trace length, lsn)
    segments_created: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def synced(self, fs: CrashFS, lsn: int) -> None:
        with self.lock:
            self.synced_at.append((len(fs.trace), lsn))

    def must_survive(self, point: int) -> int:
        """The highest LSN whose sync had returned before crash point ``point``."""
        return max((lsn for at, lsn in self.synced_at if at <= point), default=0)


def check_prefix(history: History, state: CrashState, point: int) -> None:
    with WriteAheadLog.open(state.fs()) as log:
        got = list(log.replay())
        lsns = [lsn for lsn, _ in got]
        assert lsns == list(range(1, len(got) + 1)), f"{state.description}: not a prefix"
        for lsn, data in got:
            assert history.appended[lsn] == data, f"{state.description}: LSN {lsn} differs"
        need = history.must_survive(point)
        assert len(got) >= need, f"{state.description}: lost synced LSN {need} ({len(got)})"
        assert log.append(b"after recovery") == len(got) + 1
    with WriteAheadLog.open(state.fs()) as log:  # recovery is itself crash-consistent
        assert log.last_lsn >= len(got)


Workload = Callable[[CrashFS], None]


def appender_workload(
    history: History,
    *,
    threads: int,
    per_thread: int,
    segment_size: int,
    truncate_every: int = 0,
    roll_every: int = 0,
    size: int = 90,
) -> Workload:
    """``threads`` threads append (sync="always"); optionally one truncates as it goes,
    or seals the active segment and truncates through its own last synced record."""

    def workload(fs: CrashFS) -> None:
        with WriteAheadLog.open(fs, segment_size=segment_size) as log:

            def appender(t: int) -> None:
                for i in range(per_thread):
                    data = payload(1000 * t + i, 20 + (t * 13 + i * 7) % size)
                    if i % 3 == 2:
                        lsn = log.append_many([data, data + b"+"])[-1]
                        with history.lock:
                            history.appended[lsn - 1] = data
                            history.appended[lsn] = data + b"+"
                    else:
                        lsn = log.append(data)
                        with history.lock:
                            history.appended[lsn] = data
                    history.synced(fs, lsn)
                    if truncate_every and t == 0 and i % truncate_every == 0:
                        log.truncate_before(max(1, lsn - 10))
                    if roll_every and t == 0 and i % roll_every == roll_every - 1:
                        log.roll()  # then drop everything this thread has seen synced
                        log.truncate_before(lsn + 1)

            pool = [threading.Thread(target=appender, args=(t,)) for t in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            history.segments_created = log.stats().segments_created

    return workload


def check_suffix(history: History, state: CrashState, point: int) -> None:
    """With truncate_before in play: a contiguous run ending in every synced record."""
    with WriteAheadLog.open(state.fs()) as log:
        got = list(log.replay())
        lsns = [lsn for lsn, _ in got]
        assert lsns == list(range(log.first_lsn, log.first_lsn + len(got))), state.description
        for lsn, data in got:
            assert history.appended[lsn] == data, f"{state.description}: LSN {lsn} differs"
        need = history.must_survive(point)
        assert log.last_lsn >= need, f"{state.description}: lost synced LSN {need}"


def test_concurrent_appenders_at_every_fsync() -> None:
    history = History()
    workload = appender_workload(history, threads=4, per_thread=12, segment_size=1 << 20)
    checked = explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="sync", max_states=12
    )
    assert checked > 50 and len(history.appended) == 4 * 16


def test_concurrent_appenders_rolling_segments_at_every_fsync() -> None:
    history = History()
    workload = appender_workload(history, threads=3, per_thread=12, segment_size=4096)
    checked = explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="sync", max_states=10
    )
    assert checked > 50


def test_single_appender_at_every_write() -> None:
    history = History()
    workload = appender_workload(history, threads=1, per_thread=30, segment_size=4096)
    explore_crashes(
        workload, lambda st, at: check_prefix(history, st, at), kind="write", max_states=8, seed=3
    )


def test_truncate_before_never_loses_a_kept_record_or_leaves_a_hole() -> None:
    history = History()
    workload = appender_workload(
        history, threads=2, per_thread=40, segment_size=4096, truncate_every=4
    )
    checked = explore_crashes(
        workload, lambda st, at: check_suffix(history, st, at), kind="all", max_states=6
    )
    assert checked > 100 and history.segments_created >= 3


def test_roll_and_truncate_to_the_end_never_loses_a_kept_record() -> None:
    history = History()
    workload = appender_workload(
        history, threads=2, per_thread=24, segment_size=1 << 20, roll_every=6
    )
    checked = explore_crashes(
        workload, lambda st, at: check_suffix(history, st, at), kind="all", max_states=6
    )
    assert checked > 100 and history.segments_created >= 4


def test_never_and_interval_policies_lose_only_unsynced_records() -> None:
    for policy in ("never", "interval"):
        history = History()

        def workload(fs: CrashFS, history: History = history, policy: str = policy) -> None:
            with WriteAheadLog.open(
                fs,
                sync=policy,
                sync_every=5,  # type: ignore[arg-type]
                sync_interval=3600,
                segment_size=4096,
            ) as log:
                for lsn in range(1, 80):
                    history.appended[lsn] = payload(lsn, 100)
                    assert log.append(payload(lsn, 100)) == lsn  # 32 frames per segment
                    if lsn % 7 == 0:
                        log.sync()
                        history.synced(fs, lsn)
                history.segments_created = log.stats().segments_created

        explore_crashes(
            workload, lambda st, at, h=history: check_prefix(h, st, at), kind="sync", max_states=10
        )
