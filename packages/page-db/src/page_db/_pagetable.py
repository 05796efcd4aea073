"""The logical → physical page table and its persistence as a radix tree of pages.

Theory of operation
-------------------
In memory the table is a flat ``array('I')``: ``entries[page_id]`` is the slot holding
that logical page, 0 when the id is unmapped (free). On disk it is a radix tree of
page-table pages, ``E = entries_per_page(page_size)`` entries each:

* level 0 (leaves): leaf ``i`` holds ``entries[i*E : (i+1)*E]``, cut at ``next_page_id``;
* level ``k``: page ``j`` holds the slots of level ``k-1`` pages ``j*E .. (j+1)*E - 1``;
* the single page of the top level is the root recorded in the superblock.

The shape is a pure function of ``next_page_id``, so the loader knows exactly how many
pages exist at each level and how many entries each must hold; it reads them level by
level from the root, marking every referenced slot in a bitmap sized by the file, so a
cycle, a shared slot or a slot outside the file is a :class:`CorruptPageError`, and the
work done is bounded by the number of pages the file can hold.

A checkpoint rewrites only the leaves whose entries changed, plus their ancestors (copy on
write: each gets a fresh slot; the old slot is released by the store).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

from . import _layout as L
from .errors import CorruptPageError

__all__ = ["PageTable", "shape", "mark_slot"]

# read_page(slot, level, expected_count) -> entries ; write_page(level, entries, old) -> slot
ReadPage = Callable[[int, int, int], list[int]]
WritePage = Callable[[int, list[int], int], int]


def shape(next_page_id: int, per_page: int) -> list[int]:
    """Page counts per level, leaves first; ``[]`` for a store with no pages."""
    if next_page_id <= 1:
        return []
    counts = [-(-next_page_id // per_page)]
    while counts[-1] > 1:
        counts.append(-(-counts[-1] // per_page))
    return counts


class PageTable:
    """In-memory page table plus the slots of its on-disk pages."""

    def __init__(self, page_size: int):
        self.per_page = L.entries_per_page(page_size)
        self.entries = array("I", [0])  # id 0 is never a page
        self.levels: list[list[int]] = []  # slots of the table's pages, leaves first
        self.dirty_leaves: set[int] = set()

    @property
    def next_page_id(self) -> int:
        """One past the highest logical id ever handed out."""
        return len(self.entries)

    def grow(self) -> int:
        """Append a new, unmapped id and return it."""
        page_id = len(self.entries)
        self.entries.append(0)
        self.dirty_leaves.add(page_id // self.per_page)
        return page_id

    def set(self, page_id: int, slot: int) -> None:
        """Map ``page_id`` to ``slot`` (0 to unmap)."""
        self.entries[page_id] = slot
        self.dirty_leaves.add(page_id // self.per_page)

    def load(
        self, read_page: ReadPage, root: int, depth: int, next_page_id: int, seen: bytearray
    ) -> None:
        """Load the tree rooted at ``root`` from a validated superblock.

        Args:
            read_page: reads and validates one page-table page at a level.
            root: the root slot, ``depth``: the level count, as in the superblock.
            next_page_id: the superblock's high-water id; fixes the tree's shape.
            seen: one byte per slot in the file; referenced slots are marked, and a slot
                referenced twice is corruption.

        Raises:
            CorruptPageError: the tree does not have the shape the superblock implies, a
                slot is out of range or shared, or a page fails validation.
        """
        counts = shape(next_page_id, self.per_page)
        if len(counts) != depth:
            raise CorruptPageError(
                f"page-table depth {depth} does not fit next page id {next_page_id}"
            )
        if depth == 0:
            return
        if next_page_id > len(seen) * self.per_page:
            raise CorruptPageError(f"next page id {next_page_id} cannot fit in the file")
        mark_slot(seen, root, "page-table root")
        level_slots = [root]
        levels: list[list[int]] = [[] for _ in counts]
        for level in range(depth - 1, -1, -1):
            levels[level] = level_slots
            total = next_page_id if level == 0 else counts[level - 1]
            children: list[int] = []
            for index, slot in enumerate(level_slots):
                expected = min(self.per_page, total - index * self.per_page)
                entries = read_page(slot, level, expected)
                if len(entries) != expected:
                    raise CorruptPageError(
                        f"page-table page holds {len(entries)} entries, expected {expected}",
                        slot=slot,
                    )
                for child in entries:
                    if child or level > 0:
                        mark_slot(seen, child, "page-table entry", slot)
                children.extend(entries)
            level_slots = children
        if level_slots[0] != 0:
            raise CorruptPageError("page id 0 is mapped", slot=levels[0][0])
        self.entries = array("I", level_slots)
        self.levels = levels

    def persist(self, write_page: WritePage, *, above: int | None = None) -> tuple[int, int]:
        """Write changed leaves and their ancestors; return the new ``(root, depth)``.

        Args:
            write_page: writes one page to a fresh slot (releasing the old one).
            above: also rewrite every table page whose slot is at or above this one, so
                it moves to the lowest free slot (compaction); None for none.
        """
        counts = shape(self.next_page_id, self.per_page)
        dirty = set(self.dirty_leaves)
        for level, count in enumerate(counts):
            if level == len(self.levels):
                self.levels.append([])
            slots = self.levels[level]
            if above is not None:
                dirty.update(i for i, slot in enumerate(slots) if slot >= above)
            dirty.update(range(len(slots), count))
            slots.extend([0] * (count - len(slots)))
            source: array[int] | list[int] = self.entries if level == 0 else self.levels[level - 1]
            for index in sorted(dirty):
                start = index * self.per_page
                chunk = list(source[start : start + self.per_page])
                slots[index] = write_page(level, chunk, slots[index])
            dirty = {index // self.per_page for index in dirty}
        self.dirty_leaves.clear()
        if not counts:
            return 0, 0
        return self.levels[-1][0], len(counts)


def mark_slot(seen: bytearray, slot: int, what: str, parent: int | None = None) -> None:
    if not L.FIRST_DATA_SLOT <= slot < len(seen):
        raise CorruptPageError(
            f"{what} points to slot {slot}, outside [2, {len(seen)})", slot=parent
        )
    if seen[slot]:
        raise CorruptPageError(
            f"{what} points to slot {slot}, which is already in use", slot=parent
        )
    seen[slot] = 1
