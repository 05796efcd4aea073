"""Buffer-pool replacement policies behind one small interface.

The pool tells the policy when a frame is used (:meth:`Replacer.touch`) or emptied
(:meth:`Replacer.remove`) and asks it for a victim among the frames it may evict
(:meth:`Replacer.victim`). Pinned frames are never evictable; a policy that finds no
evictable frame returns ``None`` and the pool raises ``PoolExhaustedError`` — it never
waits. Policies are called with the pool's lock held, so they need no locking of their own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

__all__ = ["Replacer", "ClockReplacer", "LruReplacer", "make_replacer"]


class Replacer(Protocol):
    """A replacement policy over frame indexes ``0 .. capacity - 1``."""

    def touch(self, frame: int) -> None:
        """Record a use of ``frame`` (a hit or a fresh load)."""
        ...

    def remove(self, frame: int) -> None:
        """Forget ``frame``: it no longer holds a page."""
        ...

    def victim(self, evictable: Callable[[int], bool]) -> int | None:
        """Pick a frame to reuse among those ``evictable`` accepts, or ``None``."""
        ...


class ClockReplacer:
    """Second-chance clock: a reference bit per frame and a sweeping hand."""

    def __init__(self, capacity: int):
        self._ref = bytearray(capacity)
        self._present = bytearray(capacity)
        self._hand = 0

    def touch(self, frame: int) -> None:
        """See :meth:`Replacer.touch`."""
        self._ref[frame] = 1
        self._present[frame] = 1

    def remove(self, frame: int) -> None:
        """See :meth:`Replacer.remove`."""
        self._ref[frame] = 0
        self._present[frame] = 0

    def victim(self, evictable: Callable[[int], bool]) -> int | None:
        """See :meth:`Replacer.victim`. Sweeps at most twice round the clock."""
        capacity = len(self._ref)
        for _ in range(2 * capacity):
            frame = self._hand
            self._hand = (frame + 1) % capacity
            if not self._present[frame] or not evictable(frame):
                continue
            if self._ref[frame]:
                self._ref[frame] = 0
                continue
            return frame
        return None


class LruReplacer:
    """Least recently used first."""

    def __init__(self, capacity: int):
        self._order: OrderedDict[int, None] = OrderedDict()

    def touch(self, frame: int) -> None:
        """See :meth:`Replacer.touch`."""
        self._order[frame] = None
        self._order.move_to_end(frame)

    def remove(self, frame: int) -> None:
        """See :meth:`Replacer.remove`."""
        self._order.pop(frame, None)

    def victim(self, evictable: Callable[[int], bool]) -> int | None:
        """See :meth:`Replacer.victim`."""
        for frame in self._order:
            if evictable(frame):
                return frame
        return None


def make_replacer(policy: str | Callable[[int], Replacer], capacity: int) -> Replacer:
    """Build the policy named ``"clock"`` or ``"lru"``, or call a factory with ``capacity``."""
    if policy == "clock":
        return ClockReplacer(capacity)
    if policy == "lru":
        return LruReplacer(capacity)
    if callable(policy):
        return policy(capacity)
    raise ValueError(f"unknown replacement policy {policy!r}; use 'clock', 'lru' or a factory")
