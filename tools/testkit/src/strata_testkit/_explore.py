"""explore_crashes: run a workload once, then check every crash state at every point.

Theory of operation
-------------------
This is the loop of SQLite's crash tests and CrashMonkey's B3 in one call:

1. build a fresh :class:`~strata_testkit.CrashFS` (optionally seeded with durable files)
   and run ``workload(fs)`` on it once, recording its trace;
2. for each crash point of the requested kind, for each crash state there, call
   ``check(state, point)`` -- typically: open the engine on ``state.fs()``, recover, and
   assert the recovered content is a state the workload had acknowledged.

A check that raises is wrapped in :class:`CrashCheckError` (an ``AssertionError``, so
pytest reports it as a test failure) whose message names the crash point, the trace op
there, the seed and the state's description, and whose ``__cause__`` is the original
exception. Re-running with the same workload and seed rebuilds exactly that state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from strata_testkit._crashfs import CrashFS, CrashPointKind
from strata_testkit._states import CrashState

__all__ = ["CrashCheckError", "explore_crashes"]


class CrashCheckError(AssertionError):
    """A crash-state check failed; ``point``, ``state`` and ``seed`` say where."""

    def __init__(self, message: str, *, point: int, state: CrashState, seed: int) -> None:
        super().__init__(message)
        self.point = point
        self.state = state
        self.seed = seed


def explore_crashes(
    workload: Callable[[CrashFS], object],
    check: Callable[[CrashState, int], object],
    *,
    kind: CrashPointKind = "sync",
    seed: int = 0,
    max_states: int = 32,
    sector_size: int = 512,
    files: Mapping[str, bytes] | None = None,
) -> int:
    """Run ``workload`` once on a CrashFS, then ``check`` every crash state it could leave.

    Args:
        workload: called once with the fresh ``CrashFS``; its exceptions propagate.
        check: called as ``check(state, point)`` for every state at every crash point.
        kind: which crash points: ``"sync"``, ``"write"`` or ``"all"`` (see
            :meth:`CrashFS.crash_points`).
        seed, max_states, sector_size: passed to :meth:`CrashFS.crash_states`.
        files: the durable files the filesystem starts with.

    Returns:
        The number of states checked.

    Raises:
        CrashCheckError: ``check`` raised; chained to the original exception.
    """
    fs = CrashFS(files)
    workload(fs)
    trace = fs.trace
    checked = 0
    for point in fs.crash_points(kind):
        states = fs.crash_states(point, seed=seed, max_states=max_states, sector_size=sector_size)
        for state in states:
            try:
                check(state, point)
            except Exception as exc:
                where = (
                    f"before trace op {point} {trace[point]!r}"
                    if point < len(trace)
                    else f"at the end of the trace ({point} ops)"
                )
                message = (
                    f"crash check failed at crash point {point} ({where}), seed={seed}, "
                    f"sector_size={sector_size}, state {state.description!r}: "
                    f"{type(exc).__name__}: {exc}"
                )
                raise CrashCheckError(message, point=point, state=state, seed=seed) from exc
            checked += 1
    return checked
