"""Shared helpers for lock-db tests: threads that make one request, and waiting for them.

Synchronisation is never a bare sleep: a test that needs a thread to be parked polls the
manager's own introspection (``wait_for_graph``) until the owner shows up as waiting, with
a generous bound that only a real hang reaches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import hypothesis
import pytest

from lock_db import LockManager
from lock_db._invariants import check_invariants

hypothesis.settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.register_profile("dev", max_examples=30, deadline=None)
hypothesis.settings.register_profile("long", max_examples=2000, deadline=None)
hypothesis.settings.load_profile("ci")

#: Bound for things that must happen "at once": only a hang or a lost wake-up reaches it,
#: however loaded the machine is.
PATIENCE = 20.0


class Call:
    """One call of a manager method in its own thread, with its outcome captured."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        try:
            self.result = fn(*args, **kwargs)
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished_at = time.perf_counter()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float = PATIENCE) -> Call:
        """Wait for the call to finish; fail the test if it does not."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "call did not finish: hang or lost wake-up"
        return self

    def outcome(self) -> Any:
        """The call's return value after it finished, or raise what it raised."""
        self.join()
        if self.error is not None:
            raise self.error
        return self.result


def wait_until_waiting(manager: LockManager, *owners: Hashable, calls: Sequence[Call] = ()) -> None:
    """Poll until every owner has a request waiting in ``manager``.

    Fails early if one of ``calls`` finished instead (it was not supposed to block).
    """
    deadline = time.monotonic() + PATIENCE
    while True:
        graph = manager.wait_for_graph()
        if all(owner in graph for owner in owners):
            return
        for call in calls:
            if call.done:
                raise AssertionError(f"expected to wait, finished: {call.error or call.result!r}")
        assert time.monotonic() < deadline, f"owners never waited: {owners} (graph {graph})"
        time.sleep(0.0005)


def blocked_call(
    manager: LockManager, owner: Hashable, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Call:
    """Start ``fn(owner, *args)`` in a thread and return once ``owner`` waits in it."""
    call = Call(fn, owner, *args, **kwargs)
    wait_until_waiting(manager, owner, calls=[call])
    return call


@pytest.fixture
def manager() -> Any:
    """A fresh manager; checked for consistency and emptied at the end of the test."""
    locks = LockManager()
    yield locks
    check_invariants(locks)
