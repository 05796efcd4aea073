"""CrashFS: an in-memory filesystem that can show every state a power loss could leave.

Theory of operation
-------------------
``CrashFS`` is the live directory of :class:`~strata_testkit.MemoryFS` -- reads always see
every completed op, as through an OS page cache -- plus an ordered trace of every
state-changing call (:mod:`strata_testkit._trace`). This is the recording half of SQLite's
``test6.c`` crash VFS and of ALICE/CrashMonkey: run a workload once, then ask what the disk
could hold had power been lost just before any trace op.

* :meth:`CrashFS.crash_points` names the interesting moments: before each sync (the
  persistence points CrashMonkey crashes at), before each write, or before every op; the
  end of the trace is always included.
* :meth:`CrashFS.crash_states` classifies the trace prefix into durable and pending ops
  (:mod:`strata_testkit._crashmodel`) and yields distinct images built from the ``drop``,
  ``keep``, ``prefix-k``, ``torn-k`` and ``subset`` variants (:mod:`strata_testkit._states`).

The files passed to the constructor are the durable starting point. A state's ``fs()`` is
a fresh ``MemoryFS`` for running recovery; to crash *during* recovery too (SQLite's
compound failures), start a new ``CrashFS(state.files)`` instead.

A trace is append-only and shared with nothing: ``crash_states`` works on a snapshot of
it, so a workload may continue after states were asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from strata_testkit._crashmodel import History
from strata_testkit._image import check_non_negative
from strata_testkit._livefs import _LiveFS
from strata_testkit._states import CrashState, generate_states
from strata_testkit._trace import Fsync, FsyncDir, TraceOp, Write

__all__ = ["CrashFS", "CrashPointKind"]

CrashPointKind = Literal["sync", "write", "all"]


class CrashFS(_LiveFS):
    """A traced in-memory directory that simulates power loss.

    Args:
        files: the durable starting content, name -> bytes.
        lose_on_failed_fsync: if True (Linux behaviour, the default), data ops covered by
            an fsync that raised stay pending forever -- a later successful fsync does not
            make them durable. If False, the next successful fsync covers them again.

    Also supports fault injection (:meth:`fail_on`, :meth:`set_capacity`,
    :meth:`clear_faults`); a failed op is not traced, except a failed fsync or fsync_dir,
    recorded with ``ok=False``.
    """

    def __init__(
        self, files: Mapping[str, bytes] | None = None, *, lose_on_failed_fsync: bool = True
    ) -> None:
        super().__init__(files)
        self._initial_entries = dict(self._entries)
        self._initial_images = {inode: bytes(image) for inode, image in self._images.items()}
        self._trace: list[TraceOp] = []
        self._lose_on_failed_fsync = lose_on_failed_fsync

    def __repr__(self) -> str:
        return f"<CrashFS {len(self._entries)} files, {len(self._trace)} traced ops>"

    def _record(self, op: TraceOp) -> None:
        self._trace.append(op)

    @property
    def trace(self) -> list[TraceOp]:
        """A copy of the trace: every state-changing op so far, in issue order."""
        with self._lock:
            return list(self._trace)

    def crash_points(self, kind: CrashPointKind = "sync") -> list[int]:
        """Trace indices at which a crash can be simulated, ascending.

        Args:
            kind: ``"sync"`` -- just before each fsync/fsync_dir op (failed ones too);
                ``"write"`` -- just before each write op; ``"all"`` -- before every op.
                ``len(trace)`` (the end) is always included.

        Raises:
            ValueError: unknown ``kind``.
        """
        if kind == "all":
            return list(range(len(self.trace) + 1))
        if kind == "sync":
            wanted: tuple[type, ...] = (Fsync, FsyncDir)
        elif kind == "write":
            wanted = (Write,)
        else:
            raise ValueError(f"unknown crash point kind {kind!r}; use 'sync', 'write' or 'all'")
        trace = self.trace
        points = [i for i, op in enumerate(trace) if isinstance(op, wanted)]
        return [*points, len(trace)]

    def crash_states(
        self,
        at: int | None = None,
        *,
        seed: int = 0,
        max_states: int = 32,
        sector_size: int = 512,
    ) -> Iterator[CrashState]:
        """Yield distinct states the files could be in had power been lost before op ``at``.

        ``drop`` comes first, then ``keep`` (unless it is the same image), then prefixes,
        torn writes and random subsets until ``max_states`` (see :mod:`._states`).

        Args:
            at: crash point, ``0 <= at <= len(trace)``; None means now (the end).
            seed: makes the sampled and random variants reproducible.
            max_states: the most states to yield, >= 1.
            sector_size: torn-write granularity in bytes, >= 1.

        Raises:
            ValueError: an argument is out of range.
        """
        trace = tuple(self.trace)
        point = len(trace) if at is None else at
        check_non_negative(point, "at")
        if point > len(trace):
            raise ValueError(f"at={point} is past the end of the trace ({len(trace)} ops)")
        if max_states < 1:
            raise ValueError(f"max_states must be >= 1, got {max_states}")
        if sector_size < 1:
            raise ValueError(f"sector_size must be >= 1, got {sector_size}")
        history = History(
            self._initial_entries,
            self._initial_images,
            trace,
            self._lose_on_failed_fsync,
        )
        return generate_states(
            history, point, seed=seed, max_states=max_states, sector_size=sector_size
        )

    def durable_files(self, at: int | None = None) -> dict[str, bytes]:
        """The ``drop`` image: only what was durable just before op ``at`` (None = now)."""
        return next(self.crash_states(at, max_states=1)).files
