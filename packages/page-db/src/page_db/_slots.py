"""Physical slot bookkeeping for shadow paging.

Theory of operation
-------------------
Every slot of the file is in exactly one of four states:

* **durable** — referenced by the last durable checkpoint; never written until a later
  checkpoint has stopped referencing it *and* that checkpoint is durable;
* **released** — durable, but no longer referenced by the pending state; becomes free when
  the next checkpoint commits (the durable superblock still points at it until then);
* **written** — handed out since the last checkpoint and holding pending state; free to
  be overwritten in place, since no durable superblock references it;
* **free** — none of the above; handed out lowest first, to keep the file compact.

:meth:`commit` is called once a checkpoint's superblock is durable: written slots become
durable and released slots become free. Slots 0 and 1 (the superblocks) are never handed
out. Past the high-water mark the file grows one slot at a time.
"""

from __future__ import annotations

import heapq

from . import _layout as L
from .errors import PageError

__all__ = ["SlotSpace"]


class SlotSpace:
    """Which slots are durable, released, written since the last checkpoint, or free.

    Args:
        in_use: one byte per slot below ``slot_count``, 1 where the loaded checkpoint
            references the slot (superblocks included). Taken over, not copied.
        slot_count: the checkpoint's high-water mark.
    """

    def __init__(self, in_use: bytearray, slot_count: int):
        self._durable = in_use
        self.slot_count = slot_count
        self._free = [s for s in range(L.FIRST_DATA_SLOT, slot_count) if not in_use[s]]
        self._written: set[int] = set()
        self._released: list[int] = []

    def is_durable(self, slot: int) -> bool:
        """Whether the last durable checkpoint references ``slot``."""
        return bool(self._durable[slot])

    def allocate(self) -> int:
        """A slot no durable state references, marked written; grows the file if needed.

        Raises:
            PageError: the file already has 2**32 slots.
        """
        if self._free:
            slot = heapq.heappop(self._free)
        else:
            slot = self.slot_count
            if slot > L.MAX_SLOT:
                raise PageError("file is full: 2**32 slots in use")
            self.slot_count += 1
            if len(self._durable) < self.slot_count:
                self._durable.extend(bytes(max(64, len(self._durable) // 2)))
        self._written.add(slot)
        return slot

    def release(self, slot: int) -> None:
        """``slot`` no longer holds pending state: free now, or at the next commit."""
        if self._durable[slot]:
            self._released.append(slot)
        else:
            self._written.discard(slot)
            heapq.heappush(self._free, slot)

    def commit(self) -> None:
        """The checkpoint is durable: written slots are now durable, released ones free."""
        durable = self._durable
        for slot in self._released:
            durable[slot] = 0
        for slot in self._written:
            durable[slot] = 1
        self._free.extend(self._released)
        heapq.heapify(self._free)
        self._released.clear()
        self._written.clear()

    def lowest_free(self) -> int | None:
        """The slot :meth:`allocate` would hand out next without growing, or None."""
        return self._free[0] if self._free else None

    def high_water(self) -> int:
        """One past the highest slot the pending checkpoint references: everything above
        is free once it commits (superblocks count, so at least 2)."""
        durable = bytearray(self._durable[: self.slot_count])
        for slot in self._released:
            durable[slot] = 0
        top = max(durable.rfind(1), max(self._written, default=0), L.FIRST_DATA_SLOT - 1)
        return top + 1

    def shrink(self, slot_count: int) -> None:
        """Forget the slots from ``slot_count`` on (all free: call after :meth:`commit`)."""
        if slot_count >= self.slot_count:
            return
        if any(self._durable[slot_count : self.slot_count]):
            raise PageError("cannot shrink below a slot in use")
        self._free = [slot for slot in self._free if slot < slot_count]
        heapq.heapify(self._free)
        self.slot_count = slot_count

    @property
    def free_count(self) -> int:
        """Free slots below the high-water mark."""
        return len(self._free)
