"""Combined commits for ``always`` mode: one thread applies and syncs for every waiting one.

With many threads committing durably, the cost is not the work but the thread switches
under the GIL: each committer used to block twice — on the commit lock, then in the WAL's
group commit — and every block is a switch on the critical path. Here a committer queues
its request and tries the commit lock without waiting. Whoever holds it (the *combiner*)
applies every queued request in order under one hold, then syncs the WAL once up to the
last record (still through wal-db's group commit, so combiners share fsyncs too),
publishes, and releases each committer, which blocks only that once.

No request is stranded: a combiner re-checks the queue after releasing the lock and
combines again if it can take the lock; if it cannot, the thread holding it will re-check
in its turn. A request queued before its owner's own attempt is either taken by the
current combiner or by the owner itself.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from wal_db import WalError

if TYPE_CHECKING:
    from ._db import Engine, Op


class _Request:
    __slots__ = ("error", "lsn", "ops", "parked", "snapshot", "unlocked", "validate", "version")

    def __init__(
        self,
        ops: list[Op],
        snapshot: int | None,
        validate: Callable[[], None] | None,
        unlocked: bool,
    ) -> None:
        self.ops = ops
        self.snapshot = snapshot
        self.validate = validate
        self.unlocked = unlocked
        self.version = 0
        self.lsn = 0
        self.error: BaseException | None = None
        self.parked = threading.Lock()
        self.parked.acquire()  # released once, when the request is durable or failed


class Combiner:
    """The ``always``-mode commit path of one engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: deque[_Request] = deque()

    def commit(
        self,
        ops: list[Op],
        snapshot: int | None,
        validate: Callable[[], None] | None,
        unlocked: bool,
    ) -> int:
        """Commit durably and return the version; raises what the commit raised."""
        request = _Request(ops, snapshot, validate, unlocked)
        self._queue.append(request)
        self._combine()
        request.parked.acquire()
        if request.error is not None:
            raise request.error
        return request.version

    def _combine(self) -> None:
        engine = self._engine
        lock = engine._commit_lock
        queue = self._queue
        done: list[_Request] = []
        while queue and lock.acquire(blocking=False):
            try:
                while queue:
                    request = queue.popleft()
                    try:
                        request.version, request.lsn = engine._commit_locked(
                            request.ops,
                            request.snapshot,
                            request.validate,
                            request.unlocked,
                            True,
                        )
                    except BaseException as exc:  # delivered to the request's own thread
                        request.error = exc
                    done.append(request)
            finally:
                lock.release()
        if not done:
            return
        try:
            applied = [request for request in done if request.error is None]
            if applied:
                last = applied[-1]  # versions and LSNs grow in queue order
                try:
                    engine._disk.wal.sync(last.lsn)  # type: ignore[union-attr]
                except WalError as exc:
                    poisoned = engine._poison(exc)
                    for request in applied:
                        request.error = type(poisoned)(str(poisoned))
                        request.error.__cause__ = exc
                else:
                    engine.publish(last.version)
        finally:
            for request in done:
                request.parked.release()
