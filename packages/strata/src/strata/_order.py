"""Key order for scans: a sorted base list with a view of the newest values, plus the keys
created since it was built.

A dict lookup per key costs a scan most of its time: in key order the dict's entries, the
key objects and the version chains sit at random places in memory. So scans read from a
*view* built in key order instead — the sorted keys, their decoded user keys and their
newest encoded values as of one version (``View.version``), in parallel lists — and fall
back to the version chains only for the keys committed since (``View.touched``), for keys
created since (``fresh``, a sorted list, fed through ``incoming``), and for readers whose
snapshot is older than the view.

Concurrency: commits (under the database's commit lock) add new keys to ``incoming`` under
``lock`` and add every written key to each set in ``touching`` *before* the commit is
published, so a reader that sees a version newer than the view's also sees its key in
``touched``. A rebuild snapshots the key lists under ``lock``, installs a new touched set
(fed from then on), reads the published version, builds the lists without any lock (a key
whose newest version is already past that version goes into the new touched set), and
swaps the view in under ``lock``. Readers take ``lock`` only to absorb ``incoming`` and to
copy a short batch of fresh keys.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from heapq import merge
from itertools import islice
from operator import itemgetter
from typing import Any, cast

from sortedcontainers import SortedList

from ._gcpause import gc_paused

Entry = tuple[int, int, "bytes | None"]
_BATCH = 128
REBUILD_MIN = 4096  # rebuild once more than max(this, a quarter of the keys) changed


RAW = object()  # in View.decoded: the value is not kept decoded; decode View.values[i]
INLINE_MAX = 258  # encoded values up to this long are kept decoded in the view (if immutable)


def inline_values(values: list[bytes | None], decode: Callable[[bytes], Any]) -> list[Any]:
    """What the view keeps for each encoded value: the decoded value when it is small and
    immutable (bytes, str, int, float, bool, None: safe to hand to every reader, and laid
    out in key order in memory), else ``RAW`` (tombstones, lists, dicts, large values)."""
    tags = _CONTAINER_TAGS
    return [
        RAW
        if raw is None or len(raw) > INLINE_MAX or raw[0] in tags
        else raw[2:]  # bytes of up to 255 (msgpack bin 8), decode_value's own shortcut
        if raw[0] == 0xC4 and len(raw) > 1 and len(raw) == raw[1] + 2
        else decode(raw)
        for raw in values
    ]


# msgpack first bytes of arrays and maps: fixmap 0x80-0x8f, fixarray 0x90-0x9f,
# array 16/32 0xdc/0xdd, map 16/32 0xde/0xdf
_CONTAINER_TAGS = frozenset([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])


BLOCK_SHIFT = 6  # View.clean flags blocks of 64 rows


def _clean_blocks(decoded: list[Any]) -> bytearray:
    """``View.clean`` for these rows (a tombstone's ``decoded`` entry is ``RAW`` too)."""
    clean = bytearray(b"\x01") * ((len(decoded) >> BLOCK_SHIFT) + 1)
    at = 0
    try:
        while True:
            block = decoded.index(RAW, at) >> BLOCK_SHIFT  # a C-speed search
            clean[block] = 0
            at = (block + 1) << BLOCK_SHIFT  # the rest of this block need not be looked at
    except ValueError:
        return clean


class View:
    """Sorted keys with their user keys and newest values as of ``version``: ``values``
    the encoded ones (``None`` for a tombstone), ``decoded`` the decoded ones where
    :func:`inline_values` keeps them, else ``RAW``."""

    __slots__ = ("clean", "decoded", "keys", "touched", "users", "values", "version")

    def __init__(
        self,
        keys: list[bytes],
        users: list[Any],
        values: list[bytes | None],
        decoded: list[Any],
        version: int,
        touched: set[bytes],
        clean: bytearray | None = None,
    ) -> None:
        self.keys = keys
        self.users = users
        self.values = values
        self.decoded = decoded
        # per block of 2**BLOCK_SHIFT rows: 1 when no row is a tombstone or kept undecoded, so a
        # scan can take the block's (user, value) pairs without looking at each row
        self.clean = clean if clean is not None else bytearray()
        self.version = version
        self.touched = touched


class KeyOrder:
    """Every key of the version store, in order (see the module docstring)."""

    def __init__(
        self, user_keys: Callable[[list[bytes]], list[Any]], decode: Callable[[bytes], Any]
    ) -> None:
        self.lock = threading.Lock()
        self._user_keys = user_keys
        self._decode = decode
        self.view = View([], [], [], [], -1, set())
        self.fresh: SortedList = SortedList()
        self._next_fresh: SortedList | None = None  # keys created during a rebuild
        self.incoming: list[bytes] = []
        self.touching: list[set[bytes]] = [self.view.touched]
        self.swept = 0  # base keys whose chains GC removed since the last rebuild

    # -- writers (commit lock held) ----------------------------------------------------

    def created(self, keys: list[bytes]) -> None:
        """Record new keys (unsorted; sorted when a reader needs them). No lock: the
        ``incoming`` list is never replaced, ``extend`` is atomic under the GIL, and
        readers take only the prefix they saw (``_absorb``)."""
        self.incoming.extend(keys)

    def touch(self, keys: Any) -> None:
        """Record written keys; call before the commit is published."""
        for touched in self.touching:
            touched.update(keys)

    def removed(self, key: bytes) -> None:
        """A key's chain is gone (GC swept it)."""
        with self.lock:
            self._absorb()
            if key in self.fresh:
                self.fresh.remove(key)
            else:
                self.swept += 1  # still listed in the view's keys
            if self._next_fresh is not None:
                self._next_fresh.discard(key)
            for touched in self.touching:
                touched.add(key)

    def reset(self, keys: list[bytes]) -> None:
        """Replace everything with ``keys`` (after a bulk load); no view until a rebuild."""
        with self.lock:
            self.view = View(sorted(keys), [], [], [], -1, set())
            self.touching = [self.view.touched]
            self.fresh = SortedList()
            del self.incoming[:]
            self.swept = 0

    # -- readers -----------------------------------------------------------------------

    def _absorb(self) -> None:
        """Move ``incoming`` into the sorted fresh list(s). Caller holds ``lock``."""
        incoming = self.incoming
        if incoming:
            count = len(incoming)
            batch = incoming[:count]
            del incoming[:count]  # keys appended meanwhile stay for the next reader
            self.fresh.update(batch)
            if self._next_fresh is not None:
                self._next_fresh.update(batch)

    def __len__(self) -> int:
        with self.lock:
            self._absorb()
            return len(self.view.keys) + len(self.fresh) - self.swept

    def __contains__(self, key: bytes) -> bool:
        with self.lock:
            self._absorb()
            keys = self.view.keys
            i = bisect_left(keys, key)
            return (i < len(keys) and keys[i] == key) or key in self.fresh

    def current(self) -> tuple[View, SortedList]:
        """The view and the fresh list that goes with it, taken together: every key
        committed so far is in one of them (a rebuild replaces both)."""
        with self.lock:
            self._absorb()
            return self.view, self.fresh

    def fresh_edge(
        self, fresh: SortedList, lo: bytes, hi: bytes | None, reverse: bool
    ) -> bytes | None:
        """The first (``reverse``: last) key of ``fresh`` in ``[lo, hi)``, or None."""
        with self.lock:
            return next(iter(fresh.irange(lo, hi, (True, False), reverse)), None)

    def fresh_between(self, fresh: SortedList, lo: bytes, hi: bytes | None) -> list[bytes]:
        """The keys of ``fresh`` in ``[lo, hi)``, in order."""
        with self.lock:
            return list(fresh.irange(lo, hi, (True, False)))

    def needs_rebuild(self) -> bool:
        """Whether the view is missing or stale enough that a rebuild pays."""
        view = self.view
        return view.version < 0 or (
            len(view.touched) + len(self.fresh) + len(self.incoming)
            > max(REBUILD_MIN, len(view.keys) // 4)
        )

    def rebuild(self, chains: dict[bytes, list[Entry]], version: int) -> None:
        """Build a new view as of ``version``, a published version (see the module
        docstring); a no-op while another thread rebuilds."""
        with self.lock:
            if self._next_fresh is not None:
                return  # another reader is rebuilding
            self._absorb()
            old = self.view
            keys = merge_unique(old.keys, list(self.fresh)) if self.fresh else list(old.keys)
            self._next_fresh = SortedList()
            touched: set[bytes] = set()
            self.touching.append(touched)
        try:
            with gc_paused():
                live, users, values, decoded = self._build(keys, chains, version, touched)
                clean = _clean_blocks(decoded)
        except BaseException:
            with self.lock:
                self.touching.remove(touched)
                self._next_fresh = None
            raise
        with self.lock:
            self._absorb()
            self.view = View(live, users, values, decoded, version, touched, clean)
            self.touching = [touched]
            assert self._next_fresh is not None
            self.fresh, self._next_fresh = self._next_fresh, None
            self.swept = 0

    def _build(
        self, keys: list[bytes], chains: dict[bytes, list[Entry]], version: int, touched: set[bytes]
    ) -> tuple[list[bytes], list[Any], list[bytes | None], list[Any]]:
        """The view's lists as of ``version`` (keys already past it go into ``touched``)."""
        got = list(map(chains.get, keys))
        if None in got:  # swept, or about to be: never take the view's word for them
            touched.update(key for key, chain in zip(keys, got, strict=True) if chain is None)
            pairs = [(k, c) for k, c in zip(keys, got, strict=True) if c is not None]
            keys, got = [k for k, _ in pairs], [c for _, c in pairs]
        found = cast(list[list[Entry]], got)
        newest: list[Entry | None] = [chain[-1] for chain in found]
        values: list[bytes | None]
        if newest and max(map(itemgetter(0), newest)) > version:  # type: ignore[arg-type]
            for i, entry in enumerate(newest):
                if entry is not None and entry[0] > version:  # committed past the view
                    touched.add(keys[i])
                    older = [e for e in found[i] if e[0] <= version]
                    newest[i] = older[-1] if older else None
            values = [None if entry is None else entry[2] for entry in newest]
        else:
            values = [entry[2] for entry in newest]  # type: ignore[index]
        decoded = inline_values(values, self._decode)
        return keys, self._user_keys(keys), values, decoded

    def iter_keys(self, lo: bytes, hi: bytes | None, reverse: bool = False) -> Iterator[bytes]:
        """Every key in ``[lo, hi)`` in order (base and fresh merged), in short batches;
        keys created during the iteration may be seen or not; none is returned twice.
        Keys GC swept may appear: callers check the chain."""
        lo_inclusive = True
        while True:
            with self.lock:
                self._absorb()
                if hi is not None and lo >= hi:
                    return
                keys = self.view.keys
                if reverse:
                    end = len(keys) if hi is None else bisect_left(keys, hi)
                    start = bisect_left(keys, lo)
                    if not lo_inclusive and start < end and keys[start] == lo:
                        start += 1
                    base = keys[max(start, end - _BATCH) : end][::-1]
                    extra = list(
                        islice(self.fresh.irange(lo, hi, (lo_inclusive, False), True), _BATCH)
                    )
                    chunk = _unique(islice(merge(base, extra, reverse=True), _BATCH))
                else:
                    start = bisect_left(keys, lo)
                    if not lo_inclusive and start < len(keys) and keys[start] == lo:
                        start += 1
                    stop = len(keys) if hi is None else bisect_left(keys, hi)
                    base = keys[start : min(stop, start + _BATCH)]
                    extra = list(islice(self.fresh.irange(lo, hi, (lo_inclusive, False)), _BATCH))
                    chunk = _unique(islice(merge(base, extra), _BATCH)) if extra else base
            yield from chunk
            if len(chunk) < _BATCH and not (extra and len(base) + len(extra) > len(chunk)):
                return
            if reverse:
                hi = chunk[-1]
            else:
                lo = chunk[-1]
                lo_inclusive = False


def merge_unique(base: list[bytes], extra: list[bytes]) -> list[bytes]:
    """Two sorted key lists merged, without repeats (a key GC swept from the view's list
    and created again is in both). Sorting two runs is one linear merge, in C."""
    return list(dict.fromkeys(sorted(base + extra)))


def _unique(keys: Any) -> list[bytes]:
    """A sorted sequence without repeats (a key GC swept from the base and created again
    is in both the base and the fresh list)."""
    out: list[bytes] = []
    for key in keys:
        if not out or out[-1] != key:
            out.append(key)
    return out
