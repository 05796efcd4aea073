"""Choosing which crash states to build from a crash space, deterministically.

Theory of operation
-------------------
Given the pending ops ``p[0] .. p[P-1]`` at a crash point (see
:mod:`strata_testkit._crashmodel`), the variants are, in the order they are offered:

==================  ======================================================================
variant             survivors (durable ops always survive)
==================  ======================================================================
``drop``            none of the pending ops
``keep``            all of them
``prefix-k``        ``p[0] .. p[k-1]``, for ``0 < k < P`` (SQLite's SEQUENTIAL device, B3)
``torn-k``          ``p[0] .. p[k-1]``; ``p[k]`` is a write torn at sector granularity: a
                    random non-empty proper subset of its sectors gets the new bytes
``torn-k/trashed``  like ``torn-k``, but a non-empty random set of its sectors gets random
                    garbage and each other sector new or old bytes (SQLite's "trash")
``subset``          each pending data op independently (reordering), plus a random-length
                    prefix of the pending directory ops (metadata is journaled in order)
==================  ======================================================================

Budget. ``drop`` and ``keep`` come first; the remaining ``max_states - 2`` slots are split
in thirds: up to a third for prefixes (always ``k = 1`` and ``k = P-1``, the rest sampled),
up to a third for torn writes (sampled), the rest for random subsets. Slots a category
cannot fill go to the next; then unsampled prefixes and torn writes, then more subsets,
until ``max_states`` distinct images are out or the candidates run dry (random subsets are
tried at most ``2 * max_states + 8`` times).

Duplicates. Two variants often leave the same files (a torn write whose new sectors equal
the old ones, a subset equal to a prefix); only the first state with a given image is
yielded, so every yielded state is a distinct image and ``drop`` is the only state when
nothing is pending.

Determinism. Every random choice draws from a ``random.Random`` seeded with a string built
from ``(seed, at, purpose)``, so a state is reproducible from its seed, crash point and
description alone, independent of ``PYTHONHASHSEED`` and of how many states were asked for.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from strata_testkit._crashmodel import CrashSpace, History, Tear
from strata_testkit._image import touched_sectors
from strata_testkit._livefs import MemoryFS
from strata_testkit._trace import Write

__all__ = ["CrashState", "Variant", "generate_states"]

Variant = Literal["drop", "keep", "prefix", "subset", "torn", "trashed"]
_T = TypeVar("_T")
_TearSpec = tuple[int, Literal["torn", "trashed"]]


@dataclass(frozen=True)
class CrashState:
    """One on-disk state power loss could leave.

    Attributes:
        files: name -> content of every file in the crashed directory, in name order.
        description: exactly which variant this is (crash point, surviving trace ops,
            torn sectors), enough to reproduce it with the same seed.
        variant: the variant family: drop, keep, prefix, subset, torn or trashed.
        at: the crash point (power was lost just before trace op ``at``).
    """

    files: dict[str, bytes]
    description: str
    variant: Variant
    at: int

    def fs(self) -> MemoryFS:
        """A fresh, mutable :class:`MemoryFS` holding these files (for recovery code)."""
        return MemoryFS(self.files)


def generate_states(
    history: History, at: int, *, seed: int, max_states: int, sector_size: int
) -> Iterator[CrashState]:
    """Yield up to ``max_states`` distinct crash states at ``at`` (see module docstring)."""
    seen: set[tuple[tuple[str, bytes], ...]] = set()
    for state in _Planner(history, at, seed, sector_size).candidates(max_states):
        image = tuple(state.files.items())
        if image in seen:
            continue
        seen.add(image)
        yield state
        if len(seen) >= max_states:
            return


def _ranges(indices: Sequence[int]) -> str:
    """Render trace indices compactly: ``[0-3, 7, 9-10]``."""
    runs: list[str] = []
    for _, group in itertools.groupby(enumerate(indices), key=lambda pair: pair[1] - pair[0]):
        values = [value for _, value in group]
        runs.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return "[" + ", ".join(runs) + "]"


def _split_sample(
    items: Sequence[_T], count: int, rng: random.Random, *, keep_ends: bool = False
) -> tuple[list[_T], list[_T]]:
    """Pick ``count`` of ``items`` (both ends first if asked); return (picked, rest), in order."""
    if len(items) <= count:
        return list(items), []
    positions = range(len(items))
    if keep_ends and count >= 2:
        middle = rng.sample(positions[1:-1], count - 2)
        picked = {0, len(items) - 1, *middle}
    else:
        picked = set(rng.sample(positions, count))
    chosen = [items[i] for i in positions if i in picked]
    rest = [items[i] for i in positions if i not in picked]
    return chosen, rest


class _Planner:
    """Builds the candidate states of one crash point, in the documented order."""

    def __init__(self, history: History, at: int, seed: int, sector_size: int) -> None:
        self.history = history
        self.space: CrashSpace = history.crash_space(at)
        self.at = at
        self.seed = seed
        self.sector_size = sector_size
        trace = history.trace
        if at < len(trace):
            self.where = f"power lost before trace op {at} {trace[at]!r}"
        else:
            self.where = f"power lost after all {at} trace ops"

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"strata-testkit/{self.seed}/{self.at}/{purpose}")

    def _state(
        self, variant: Variant, label: str, survivors: Sequence[int], tear: Tear | None = None
    ) -> CrashState:
        files = self.history.replay(self.at, [*self.space.durable, *survivors], tear)
        return CrashState(files, f"{label}: {self.where}; {self._detail()}", variant, self.at)

    def _detail(self) -> str:
        return f"{len(self.space.durable)} durable, {len(self.space.pending)} pending ops"

    def candidates(self, max_states: int) -> Iterator[CrashState]:
        pending = self.space.pending
        yield self._state("drop", "drop", [])
        yield self._state("keep", f"keep (all pending {_ranges(pending)} survive)", pending)
        budget = max(0, max_states - 2)
        share = -(-budget // 3)
        prefixes, more_prefixes = _split_sample(
            range(1, len(pending)), share, self._rng("sample-prefix"), keep_ends=True
        )
        tears, more_tears = _split_sample(self._tear_specs(), share, self._rng("sample-tear"))
        subsets = self._subsets(2 * max_states + 8)
        yield from (self._prefix(k) for k in prefixes)
        yield from (self._torn(spec) for spec in tears)
        yield from itertools.islice(subsets, max(0, budget - len(prefixes) - len(tears)))
        yield from (self._prefix(k) for k in more_prefixes)
        yield from (self._torn(spec) for spec in more_tears)
        yield from subsets

    def _prefix(self, k: int) -> CrashState:
        survivors = self.space.pending[:k]
        label = f"prefix-{k} (first {k} pending {_ranges(survivors)} survive)"
        return self._state("prefix", label, survivors)

    def _tear_specs(self) -> list[_TearSpec]:
        specs: list[_TearSpec] = []
        for k, index in enumerate(self.space.pending):
            op = self.history.trace[index]
            if not isinstance(op, Write):
                continue
            if len(touched_sectors(op.offset, len(op.data), self.sector_size)) >= 2:
                specs.append((k, "torn"))
            specs.append((k, "trashed"))
        return specs

    def _torn(self, spec: _TearSpec) -> CrashState:
        k, flavour = spec
        index = self.space.pending[k]
        write = self.history.trace[index]
        assert isinstance(write, Write)
        rng = self._rng(f"tear/{k}/{flavour}")
        touched = list(touched_sectors(write.offset, len(write.data), self.sector_size))
        garbage: list[int] = []
        if flavour == "torn":
            new = rng.sample(touched, rng.randint(1, len(touched) - 1))
        else:
            garbage = rng.sample(touched, rng.randint(1, len(touched)))
            new = [s for s in touched if s not in garbage and rng.random() < 0.5]
        tear = Tear(
            index, self.sector_size, frozenset(new), frozenset(garbage), rng.getrandbits(64)
        )
        name = "torn" if flavour == "torn" else "torn/trashed"
        label = (
            f"{name}-{k} (first {k} pending {_ranges(self.space.pending[:k])} survive; "
            f"trace op {index} {write!r} torn at {self.sector_size}-byte sectors: "
            f"new {sorted(new)}, old {tear.old(write)}"
            + (f", garbage {sorted(garbage)}" if garbage else "")
            + "; later pending ops lost)"
        )
        return self._state(flavour, label, self.space.pending[:k], tear)

    def _subsets(self, attempts: int) -> Iterator[CrashState]:
        data, dirs = self.space.pending_data, self.space.pending_dir
        if not data or len(self.space.pending) < 2:
            return
        rng = self._rng("subset")
        for _ in range(attempts):
            kept = [i for i in data if rng.random() < 0.5]
            lost = [i for i in data if i not in kept]
            dir_count = rng.randint(0, len(dirs))
            label = (
                f"subset (pending data ops {_ranges(kept)} survive, {_ranges(lost)} lost; "
                f"first {dir_count} of {len(dirs)} pending dir ops "
                f"{_ranges(dirs[:dir_count])} survive)"
            )
            yield self._state("subset", label, [*kept, *dirs[:dir_count]])
