"""Group commit: the durable LSN, leader election for shared fsyncs, the interval syncer.

Theory of operation
-------------------
:class:`GroupCommit` owns ``durable_lsn`` and a condition variable. A thread that needs LSN
``n`` durable calls :meth:`GroupCommit.wait_durable`. If ``n`` is already durable it returns
at once. If another thread is syncing, it waits. Otherwise it becomes the *leader*: it
calls the log's ``flush_and_sync`` callback -- which writes out every queued frame, fsyncs
outside all locks and returns the last LSN that fsync covered -- then publishes that LSN
and wakes every waiter. Waiters now covered return; the rest elect the next leader, whose
fsync covers every frame queued during the previous one. So N threads committing at once
cost about two fsyncs, not N.

The condition's lock is never held while the callback runs, and the callback may take the
log's append lock; the log never takes this condition while holding... except through
:meth:`publish`, which only sets a number and notifies. Lock order: append lock, then this
condition; never the reverse.

:class:`IntervalSyncer` is the ``sync="interval"`` background thread: it syncs at least
every ``interval`` seconds, and early when :meth:`IntervalSyncer.kick` says ``sync_every``
records are waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["GroupCommit", "IntervalSyncer"]


class GroupCommit:
    """The durable LSN and the leader/follower protocol around one fsync callback.

    Args:
        durable_lsn: the LSN known durable at start.
        flush_and_sync: writes out and fsyncs everything queued; returns the last LSN it
            made durable; raises on failure (then nothing is published).
        check: raises if waiting is pointless (the log is poisoned); called under the
            condition before every wait.
    """

    __slots__ = ("_check", "_cond", "_flush_and_sync", "_syncing", "durable_lsn")

    def __init__(
        self, durable_lsn: int, flush_and_sync: Callable[[], int], check: Callable[[], None]
    ):
        self.durable_lsn = durable_lsn
        self._flush_and_sync = flush_and_sync
        self._check = check
        self._cond = threading.Condition(threading.Lock())
        self._syncing = False

    def wait_durable(self, target: int) -> None:
        """Return once ``durable_lsn >= target``, leading a sync if no one else is."""
        while True:
            with self._cond:
                while True:
                    if self.durable_lsn >= target:
                        return
                    self._check()
                    if not self._syncing:
                        self._syncing = True
                        break
                    self._cond.wait()
            self._lead()

    def _lead(self) -> None:
        synced: int | None = None
        try:
            synced = self._flush_and_sync()
        finally:
            with self._cond:
                if synced is not None and synced > self.durable_lsn:
                    self.durable_lsn = synced
                self._syncing = False
                self._cond.notify_all()

    def publish(self, lsn: int) -> None:
        """Record that everything up to ``lsn`` is durable (a segment roll fsynced it)."""
        with self._cond:
            if lsn > self.durable_lsn:
                self.durable_lsn = lsn
                self._cond.notify_all()


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
