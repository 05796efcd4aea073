"""Free logical page ids: handed out smallest first, persisted as a chain of pages.

The set lives in memory (a heap for "smallest first" plus a set for membership). A
checkpoint that follows any change rewrites the whole chain to fresh slots — copy on
write, like every other page — and releases the old chain's slots; a checkpoint after no
change keeps the chain as it is. Loading and validating the chain is ``_load``'s job.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from . import _codec
from . import _layout as L

__all__ = ["FreeIds"]


class FreeIds:
    """The free logical ids and the slots of the free-list pages that hold them on disk."""

    def __init__(self, ids: list[int], chain: list[int]):
        self._heap = list(ids)
        heapq.heapify(self._heap)
        self._members = set(ids)
        self._chain = chain
        self._dirty = False

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, page_id: object) -> bool:
        return page_id in self._members

    def pop(self) -> int:
        """Take the smallest free id (the caller checks the set is not empty)."""
        page_id = heapq.heappop(self._heap)
        self._members.discard(page_id)
        self._dirty = True
        return page_id

    def push(self, page_id: int) -> None:
        """Add a freed id."""
        heapq.heappush(self._heap, page_id)
        self._members.add(page_id)
        self._dirty = True

    def persist(
        self,
        page_size: int,
        epoch: int,
        allocate: Callable[[], int],
        release: Callable[[int], None],
        write: Callable[[int, bytearray], None],
        *,
        above: int | None = None,
    ) -> int:
        """Write the chain if the ids changed; return the head slot (0 when empty).

        ``above``: also rewrite the chain if one of its slots is at or above this one, so
        it moves to the lowest free slots (compaction)."""
        if above is not None and any(slot >= above for slot in self._chain):
            self._dirty = True
        if self._dirty:
            for slot in self._chain:
                release(slot)
            ids = sorted(self._heap)
            per_page = L.entries_per_page(page_size)
            chunks = [ids[i : i + per_page] for i in range(0, len(ids), per_page)]
            slots = [allocate() for _ in chunks]
            for index, chunk in enumerate(chunks):
                next_slot = slots[index + 1] if index + 1 < len(slots) else 0
                page = _codec.encode_free_list_page(
                    page_size, slots[index], epoch, next_slot, chunk
                )
                write(slots[index], page)
            self._chain = slots
            self._dirty = False
        return self._chain[0] if self._chain else 0
