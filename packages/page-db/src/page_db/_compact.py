"""Compaction: move data pages down into free slots so the file's tail can be cut.

Theory of operation
-------------------
Slots are handed out lowest first (:class:`~page_db._slots.SlotSpace`). Pages end up high
in the file anyway. A change set written while the previous copies are still durable
lands above them, and when the caller then frees the old pages their low slots fall
free. Nothing ever moved a page back down, so the file kept its high-water mark.

:func:`move_pages_down` walks the mapped data pages from the highest slot down. Each one
is copied into the lowest free slot while that slot is below it (copy on write, exactly
as a changed page is written at a checkpoint). The walk stops at the first page no lower
free slot can take. The copy is re-sealed with the pending checkpoint's epoch; the old
slot is released and becomes free when that checkpoint commits.

The store then rewrites page-table and free-list pages at or above the lowest free slot
left, and records in the superblock one past the highest slot the checkpoint references
(:meth:`SlotSpace.high_water`). Only after that superblock is durable does it truncate
the file there. A crash before the truncation leaves a longer file, and the bytes past
the slot count are free by definition (FORMAT.md), so the file opens the same.

Slots the durable checkpoint references are not free until this one commits. So space
released since the last checkpoint is reclaimed by the next compaction, not this one.
"""

from __future__ import annotations

from collections.abc import Callable

from . import _codec
from . import _layout as L
from ._pagetable import PageTable
from ._slots import SlotSpace

__all__ = ["move_pages_down"]


def move_pages_down(
    slots: SlotSpace,
    table: PageTable,
    read_page: Callable[[int, bytearray], None],
    write_slot: Callable[[int, bytearray], None],
    page_size: int,
    epoch: int,
) -> int:
    """Copy data pages from the highest slots into lower free ones.

    Args:
        slots: the store's slot bookkeeping (allocations and releases go through it).
        table: the page table; moved pages are remapped in it.
        read_page: reads and validates a page's current copy into a buffer.
        write_slot: writes one page to a slot.
        page_size: bytes per page.
        epoch: the pending checkpoint's sequence number, stamped on every copy.

    Returns:
        The lowest free slot left (the slot count if none). Page-table and free-list
        pages at or above it should move as well.
    """
    placed = sorted(((slot, pid) for pid, slot in enumerate(table.entries) if slot), reverse=True)
    buf = bytearray(page_size)
    for slot, pid in placed:
        target = slots.lowest_free()
        if target is None or target > slot:
            break
        read_page(pid, buf)
        _codec.seal_page(buf, L.PAGE_TYPE_DATA, pid, epoch)
        new_slot = slots.allocate()
        write_slot(new_slot, buf)
        table.set(pid, new_slot)
        slots.release(slot)
    lowest = slots.lowest_free()
    return slots.slot_count if lowest is None else lowest
