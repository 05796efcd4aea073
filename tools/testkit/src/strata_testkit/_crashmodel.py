"""The power-loss model: which traced ops are durable, and replaying a chosen subset.

Theory of operation
-------------------
A :class:`History` is the durable starting directory of a ``CrashFS`` plus its trace.
Simulating a power loss just before trace op ``at`` is two pure steps.

1. **Classify** (:meth:`History.crash_space`). Walk ``trace[:at]`` in order, keeping a
   waiting list of data ops (``Write``/``Truncate``) per inode and one of directory ops
   (``Create``/``Rename``/``Unlink``):

   * a successful ``Fsync`` of an inode makes that inode's waiting data ops durable --
     only that inode's: syncing file A never makes file B durable;
   * a successful ``FsyncDir`` makes every waiting directory op durable;
   * a *failed* ``Fsync`` (``ok=False``) makes nothing durable. With ``lose_on_failed_fsync``
     (the default, Linux's behaviour since "fsyncgate") the ops it covered also leave the
     waiting list: the kernel may have dropped the dirty pages and marked them clean, so no
     later fsync will write them; they stay pending -- maybe on disk, maybe not -- for good;
   * a failed ``FsyncDir`` makes nothing durable and leaves the directory ops waiting.

   Every data or directory op in ``trace[:at]`` that is not durable is *pending*; the
   ordered tuple of pending ops is the crash space.

2. **Replay** (:meth:`History.replay`). Start from the durable initial images and apply,
   in issue order, the ops in a *survivor set* (all durable ops plus the chosen pending
   ones); at most one write may instead be applied *torn* (:class:`Tear`). Files are
   inodes, so a file renamed after its writes were fsynced keeps that durable data under
   its new name once the rename survives, and a rename that is lost leaves the old name.

Directory ops are only ever chosen as a prefix of the pending directory ops (metadata is
journaled in order), so the replayed directory is always one a real filesystem could show.
A dropped extending write leaves the file at its durable length because its extension is
simply never applied.

Torn writes (power-safe overwrite, as SQLite assumes by default): a torn write touches only
bytes inside its own range. Each sector it touches (``offset // sector_size`` numbering,
absolute within the file) gets the new bytes, keeps the old ones, or -- in the trashed
flavour -- gets random garbage. If the write extended the file, the file is extended to the
write's end and the sectors that kept "old" content read as zeros there.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from strata_testkit._image import touched_sectors, truncate_to, write_at
from strata_testkit._trace import (
    DATA_OPS,
    DIR_OPS,
    Create,
    Fsync,
    FsyncDir,
    Rename,
    TraceOp,
    Truncate,
    Unlink,
    Write,
)

__all__ = ["CrashSpace", "History", "Tear"]


@dataclass(frozen=True)
class CrashSpace:
    """Durable and pending ops of ``trace[:at]`` (all values are trace indices)."""

    at: int
    durable: frozenset[int]
    pending: tuple[int, ...]
    pending_data: tuple[int, ...]
    pending_dir: tuple[int, ...]
    pending_writes: tuple[int, ...]


@dataclass(frozen=True)
class Tear:
    """How one write is applied torn: per touched sector, new bytes, old bytes or garbage."""

    index: int
    sector_size: int
    new: frozenset[int]
    garbage: frozenset[int] = frozenset()
    garbage_seed: int = 0

    def old(self, write: Write) -> list[int]:
        """Touched sectors that keep their previous content."""
        touched = touched_sectors(write.offset, len(write.data), self.sector_size)
        return [s for s in touched if s not in self.new and s not in self.garbage]


@dataclass(frozen=True)
class History:
    """Initial durable directory and images, plus the trace recorded since."""

    entries: Mapping[str, int]
    images: Mapping[int, bytes]
    trace: Sequence[TraceOp]
    lose_on_failed_fsync: bool = True

    def crash_space(self, at: int) -> CrashSpace:
        """Classify ``trace[:at]`` into durable and pending ops (see module docstring)."""
        durable: set[int] = set()
        waiting_data: dict[int, list[int]] = {}
        waiting_dir: list[int] = []
        for index, op in enumerate(self.trace[:at]):
            if isinstance(op, DATA_OPS):
                waiting_data.setdefault(op.inode, []).append(index)
            elif isinstance(op, DIR_OPS):
                waiting_dir.append(index)
            elif isinstance(op, Fsync):
                if op.ok:
                    durable.update(waiting_data.pop(op.inode, ()))
                elif self.lose_on_failed_fsync:
                    waiting_data.pop(op.inode, None)
            elif isinstance(op, FsyncDir) and op.ok:
                durable.update(waiting_dir)
                waiting_dir.clear()
        pending = tuple(
            i
            for i, op in enumerate(self.trace[:at])
            if isinstance(op, DATA_OPS + DIR_OPS) and i not in durable
        )
        ops = self.trace
        return CrashSpace(
            at=at,
            durable=frozenset(durable),
            pending=pending,
            pending_data=tuple(i for i in pending if isinstance(ops[i], DATA_OPS)),
            pending_dir=tuple(i for i in pending if isinstance(ops[i], DIR_OPS)),
            pending_writes=tuple(i for i in pending if isinstance(ops[i], Write)),
        )

    def replay(
        self, at: int, survivors: Iterable[int], tear: Tear | None = None
    ) -> dict[str, bytes]:
        """The directory after applying the ``survivors`` of ``trace[:at]`` (and ``tear``).

        Returns:
            name -> content, in name order.
        """
        chosen = frozenset(survivors)
        entries = dict(self.entries)
        images = {inode: bytearray(content) for inode, content in self.images.items()}
        for index, op in enumerate(self.trace[:at]):
            if tear is not None and index == tear.index:
                if not isinstance(op, Write):
                    raise ValueError(f"trace op {index} is not a write: {op!r}")
                _apply_torn(images.setdefault(op.inode, bytearray()), op, tear)
            elif index in chosen:
                _apply(op, entries, images)
        return {name: bytes(images.get(entries[name], b"")) for name in sorted(entries)}


def _apply(op: TraceOp, entries: dict[str, int], images: dict[int, bytearray]) -> None:
    if isinstance(op, Write):
        write_at(images.setdefault(op.inode, bytearray()), op.data, op.offset)
    elif isinstance(op, Truncate):
        truncate_to(images.setdefault(op.inode, bytearray()), op.length)
    elif isinstance(op, Create):
        entries[op.file] = op.inode
    elif isinstance(op, Rename):
        if entries.get(op.src) == op.inode:
            del entries[op.src]
        entries[op.dst] = op.inode
    elif isinstance(op, Unlink) and entries.get(op.file) == op.inode:
        del entries[op.file]


def _apply_torn(image: bytearray, write: Write, tear: Tear) -> None:
    if len(image) < write.end:
        image.extend(bytes(write.end - len(image)))
    garbage = random.Random(tear.garbage_seed)
    size = tear.sector_size
    for sector in touched_sectors(write.offset, len(write.data), size):
        low = max(write.offset, sector * size)
        high = min(write.end, (sector + 1) * size)
        if sector in tear.new:
            image[low:high] = write.data[low - write.offset : high - write.offset]
        elif sector in tear.garbage:
            image[low:high] = garbage.randbytes(high - low)
