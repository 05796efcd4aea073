"""Group commit: the durable LSN, leader election for shared fsyncs, the interval syncer.

Theory of operation
-------------------
:class:`GroupCommit` owns ``durable_lsn`` and a condition variable. A thread that needs LSN
``n`` durable calls :meth:`GroupCommit.wait_durable`. If ``n`` is already durable it returns
at once. If another thread is syncing, it parks. Otherwise it becomes the *leader*: it
calls the log's ``flush_and_sync`` callback -- which writes out every queued frame, fsyncs
outside all locks and returns the last LSN that fsync covered -- then publishes that LSN
and wakes every waiter. Waiters now covered return; the rest elect the next leader, whose
fsync covers every frame queued during the previous one. So N threads committing at once
cost about two fsyncs, not N.

Wake-ups are targeted, as in LevelDB's writer queue: each parked committer has its own
lock, and the leader, when its fsync completes, releases exactly the committers it made
durable and hands the leader role to the longest-waiting one that is still not durable.
No thread is woken only to find it must sleep again; under 16 committing threads that
halves the thread switches per commit.

Gathering (since 1.0.1): under the GIL, the committers a fsync released come back one at
a time to queue their next records. A new leader that flushed at once would carry only
the one or two already back and leave the rest to the fsync after it (about 9 records
per fsync with 16 threads). So a leader whose predecessor released two or more
committers first yields the GIL until as many are parked again, or it has yielded twice
that many times (``_gather``) -- a commit delay that costs nothing without company.
With 16 threads a fsync then carries about 16 records.

The mutex is never held while the callback runs, and the callback may take the log's
append lock; the log takes this mutex under its append lock only through
:meth:`publish`, which sets a number and wakes waiters. Lock order: append lock, then
this mutex; never the reverse.

:class:`IntervalSyncer` is the ``sync="interval"`` background thread: it syncs at least
every ``interval`` seconds, and early when :meth:`IntervalSyncer.kick` says ``sync_every``
records are waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["GroupCommit", "IntervalSyncer"]

GATHER_NAP = 0.0  # how long a gathering leader sleeps per yield (0: just yield the GIL)


class _Waiter:
    """One committer parked until its LSN is durable or it is made the next leader."""

    __slots__ = ("lead", "parked", "target")

    def __init__(self, target: int):
        self.target = target
        self.lead = False
        self.parked = threading.Lock()
        self.parked.acquire()  # released exactly once, by the leader that wakes it


class GroupCommit:
    """The durable LSN and the leader/follower protocol around one fsync callback.

    Args:
        durable_lsn: the LSN known durable at start.
        flush_and_sync: writes out and fsyncs everything queued; returns the last LSN it
            made durable; raises on failure (then nothing is published).
        check: raises if waiting is pointless (the log is poisoned); called under the
            mutex before a committer parks and again after a failed sync wakes it.
    """

    __slots__ = (
        "_check",
        "_expected",
        "_flush_and_sync",
        "_mutex",
        "_released",
        "_syncing",
        "_waiters",
        "durable_lsn",
    )

    def __init__(
        self,
        durable_lsn: int,
        flush_and_sync: Callable[[], int],
        check: Callable[[], None],
    ):
        self.durable_lsn = durable_lsn
        self._flush_and_sync = flush_and_sync
        self._check = check

        self._mutex = threading.Lock()
        self._syncing = False
        self._waiters: list[_Waiter] = []
        self._released = 0  # committers the last fsync released
        self._expected = 0  # waiters there will be once they are all parked again

    def wait_durable(self, target: int) -> None:
        """Return once ``durable_lsn >= target``, leading a sync if no one else is."""
        with self._mutex:
            if self.durable_lsn >= target:
                return
            self._check()
            if self._syncing:
                waiter: _Waiter | None = _Waiter(target)
                self._waiters.append(waiter)  # type: ignore[arg-type]
            else:
                self._syncing = True
                waiter = None
        if waiter is not None:
            waiter.parked.acquire()  # woken: durable, made leader, or the sync failed
            if not waiter.lead:
                if self.durable_lsn < target:
                    self._check()  # the leader's sync failed: raise its error
                return
        self._lead()  # covers this committer's record: it was queued before it waited

    def _lead(self) -> None:
        """One flush + fsync, then wake whom it made durable and pass the role on."""
        synced: int | None = None
        self._gather()
        try:
            synced = self._flush_and_sync()
        finally:
            with self._mutex:
                if synced is not None and synced > self.durable_lsn:
                    self.durable_lsn = synced
                self._hand_over(failed=synced is None)

    def _gather(self) -> None:
        """Let the committers the last fsync released queue their next records first.

        Under the GIL those committers need the interpreter, one at a time, to return,
        prepare their next record and come back to wait; a leader that flushes at once
        carries the one or two that made it and leaves the rest to the fsync after. So,
        when the last fsync released several committers, the leader yields the GIL
        (``time.sleep(0)``) until as many are parked again or it has yielded that many
        times -- a commit delay that only costs anything when there is company (the
        idea of PostgreSQL's ``commit_delay``/``commit_siblings``).
        """
        released, expected = self._released, self._expected
        if released < 2:
            return
        for _ in range(2 * released):
            if len(self._waiters) >= expected:
                return
            time.sleep(GATHER_NAP)

    def _hand_over(self, *, failed: bool) -> None:
        """Wake the next leader, then every waiter now durable (all, on failure).

        Called with the mutex held. The waiters list is in arrival order, so the next
        leader is the longest-waiting committer whose LSN is still not durable. It is woken
        first so its flush and fsync start while the released committers return.
        """
        durable = self.durable_lsn
        remaining = [w for w in self._waiters if not failed and w.target > durable]
        if remaining:
            leader = remaining.pop(0)
            leader.lead = True
            leader.parked.release()  # first, so the next fsync starts as soon as possible
        else:
            self._syncing = False
        released = 0
        for waiter in self._waiters:
            if failed or waiter.target <= durable:
                waiter.parked.release()
                released += 1
        self._released = released
        self._expected = len(remaining) + released  # parked again once all are back
        self._waiters = remaining

    def publish(self, lsn: int) -> None:
        """Record that everything up to ``lsn`` is durable (a segment roll fsynced it)."""
        with self._mutex:
            if lsn > self.durable_lsn:
                self.durable_lsn = lsn
                remaining = []
                for waiter in self._waiters:
                    if waiter.target <= lsn:
                        waiter.parked.release()
                    else:
                        remaining.append(waiter)
                self._waiters = remaining


class IntervalSyncer:
    """The background thread of ``sync="interval"``.

    Args:
        interval: seconds between syncs.
        sync: makes everything appended so far durable; returns False to stop the thread
            (the log is closed or poisoned).
    """

    def __init__(self, interval: float, sync: Callable[[], bool]):
        self._interval = interval
        self._sync = sync
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wal-db-interval-sync", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Sync now rather than at the end of the interval."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and wait for it (a no-op when called from the thread itself)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopping or not self._sync():
                return
