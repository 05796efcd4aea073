"""The in-memory multi-version index: every retained version of every key.

``chains`` maps an encoded key (``_codec.encode_key``) to its versions, oldest first, as
``(version, timestamp ns, encoded value or None for a tombstone)`` tuples. ``keys`` is the
same set of encoded keys in a sorted list for ordered scans.

Concurrency (docs/architecture.md, D16): every change runs under the database's commit
lock (one writer at a time). Readers take no lock: under the GIL a dict lookup, a list
index and ``list.append`` are atomic, a chain only ever grows at its end while readers
walk it from the end, and garbage collection replaces a chain with a new list instead of
cutting it in place, so a reader holding the old list keeps a consistent view. Versions
above the published version (applied, not yet visible) are skipped by every read. Only
the key order (``_order.KeyOrder``: a sorted view of the newest values plus the keys
created since) has a lock of its own, held for short batches.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from ._codec import decode_value, user_key, user_keys
from ._order import BLOCK_SHIFT, RAW, KeyOrder, merge_unique
from .errors import HistoryUnavailableError

Entry = tuple[int, int, "bytes | None"]
_STEP = 128


class VersionStore:
    """All retained versions in memory, plus what the next checkpoint must write."""

    def __init__(self, *, track_changes: bool) -> None:
        self.chains: dict[bytes, list[Entry]] = {}
        self.order = KeyOrder(
            user_keys,
            decode_value,
        )
        # keys whose older history GC removed: an as_of read that finds no version raises
        self.pruned: set[bytes] = set()
        # the newest tombstone GC swept whole (with its key): reads older than it that
        # find nothing cannot tell "never existed" from "swept", so they raise
        self.swept_version = 0
        self.swept_ts = 0
        self.track_changes = track_changes
        self.dirty: set[bytes] = set()  # keys with versions the next checkpoint writes
        self.removed: dict[bytes, list[int]] = {}  # versions GC removed since it

    # -- writing (commit lock held) ----------------------------------------------------

    def apply(self, version: int, ts_ns: int, ops: list[tuple[bytes, bytes | None]]) -> None:
        """Append one commit's versions. The caller holds the commit lock."""
        chains = self.chains
        new: list[bytes] = []
        for key, value in ops:
            chain = chains.get(key)
            if chain is None:
                chains[key] = [(version, ts_ns, value)]
                new.append(key)
            else:
                chain.append((version, ts_ns, value))
        if new:
            self.order.created(new)
        self.order.touch([key for key, _ in ops])
        if self.track_changes:
            self.dirty.update(key for key, _ in ops)

    def load_chain(self, key: bytes, chain: list[Entry], pruned: bool) -> None:
        """Install one key's versions read from disk (open and restore only)."""
        self.chains[key] = chain
        if pruned:
            self.pruned.add(key)

    def rebuild_keys(self) -> None:
        """Build the sorted key list from ``chains`` after a bulk load."""
        self.order.reset(list(self.chains))

    # -- reading (no lock) -------------------------------------------------------------

    def newest(self, key: bytes) -> Entry | None:
        """The newest applied version of ``key`` (published or not), or None."""
        chain = self.chains.get(key)
        return chain[-1] if chain else None

    def read(
        self, key: bytes, published: int, bound: int | None = None, by_ts: bool = False
    ) -> Entry | None:
        """The version of ``key`` a reader sees.

        Args:
            key: the encoded key.
            published: the newest version readers may see.
            bound: ``None`` for the newest visible version; else a version number, or a
                timestamp in ns when ``by_ts``: the newest version at or below it.
            by_ts: whether ``bound`` is a timestamp.

        Returns:
            The entry (its value is ``None`` for a tombstone), or ``None`` if the key has
            no version there.

        Raises:
            HistoryUnavailableError: retention removed the history the read needs.
        """
        chain = self.chains.get(key)
        if chain is not None:
            entry = chain[-1]
            if bound is None:
                if entry[0] <= published:
                    return entry
                for entry in reversed(chain):
                    if entry[0] <= published:
                        return entry
            else:
                for entry in reversed(chain):
                    if entry[0] <= published and (entry[1] if by_ts else entry[0]) <= bound:
                        return entry
        if bound is not None:
            self.check_history(key, bound, by_ts)
        return None

    def check_history(self, key: bytes, bound: int, by_ts: bool) -> None:
        """Raise if a read at ``bound`` that found nothing may have missed removed history."""
        if key in self.pruned:
            raise HistoryUnavailableError(
                "retention removed the versions of this key older than the oldest one kept; "
                f"none is visible at {'timestamp' if by_ts else 'version'} {bound}"
            )
        self.check_floor(bound, by_ts)

    def check_floor(self, bound: int, by_ts: bool) -> None:
        """Raise if ``bound`` is older than the newest tombstone GC swept away."""
        floor = self.swept_ts if by_ts else self.swept_version
        if bound < floor:
            what = "timestamp" if by_ts else "version"
            raise HistoryUnavailableError(
                f"retention swept deleted keys up to {what} {floor}; a read at {what} "
                f"{bound} cannot tell a swept key from one that never existed"
            )

    def iter_keys(self, lo: bytes, hi: bytes | None, reverse: bool = False) -> Iterator[bytes]:
        """Encoded keys in ``[lo, hi)`` in order (see ``KeyOrder.iter_keys``); keys added
        during the iteration are seen or not; none is returned twice."""
        return self.order.iter_keys(lo, hi, reverse)

    def scan_view(
        self,
        lo: bytes,
        hi: bytes | None,
        published: int,
        reverse: bool = False,
        first: int = _STEP,
    ) -> Iterator[list[tuple[Any, Any]]]:
        """Lists of ``(user key, value)`` — values decoded, fresh objects for lists and
        dicts — of the live keys in ``[lo, hi)`` at the newest version a reader at
        ``published`` sees, in key order: the fast path of scans at a current snapshot.
        It reads the key order's view (rebuilt first when stale) and the version chains
        only for keys written or created since the view was built. ``first`` bounds the
        rows the first list looks at (a scan's limit), later lists look at 128."""
        order = self.order
        if order.needs_rebuild():
            order.rebuild(self.chains, published)
        if order.incoming or order.fresh:
            view, fresh = order.current()
        else:  # nothing created since the view: any view read now holds every key we see
            view, fresh = order.view, None
        decode = decode_value
        read = self.read
        if view.version < 0 or published < view.version:
            batch: list[tuple[Any, Any]] = []
            for key, entry in self.scan(lo, hi, published, reverse=reverse):
                batch.append((user_key(key, key[0] + 1), decode(entry[2])))  # type: ignore[arg-type]
                if len(batch) == _STEP:
                    yield batch
                    batch = []
            if batch:
                yield batch
            return
        keys, users, values, decoded = view.keys, view.users, view.values, view.decoded
        touched = view.touched
        start = bisect_left(keys, lo)
        stop = len(keys) if hi is None else bisect_left(keys, hi)
        # keys created since the view was built (in ``fresh``) are merged in per chunk: a
        # chunk of view rows covers the key interval [lower, upper) up to the next chunk,
        # and only a chunk whose interval holds the next fresh key reads key by key
        pending = order.fresh_edge(fresh, lo, hi, reverse) if fresh else None
        edge = stop if reverse else start
        step = max(1, min(first, _STEP))
        while True:
            if reverse:
                a, b, edge = max(start, edge - step), edge, max(start, edge - step)
            else:
                a, b, edge = edge, min(stop, edge + step), min(stop, edge + step)
            step = _STEP
            if pending is not None:
                lower = lo if a == start else keys[a]
                upper = hi if b == stop else keys[b]
                if (lower <= pending) if reverse else (upper is None or pending < upper):
                    extra = order.fresh_between(fresh, lower, upper)
                    rows = []
                    for key in merge_unique(keys[a:b], extra):
                        current = read(key, published)
                        if current is not None and current[2] is not None:
                            rows.append((user_key(key, key[0] + 1), decode(current[2])))
                    if reverse:
                        rows.reverse()
                        pending = order.fresh_edge(fresh, lo, lower, True)
                    else:
                        pending = (
                            None if upper is None else order.fresh_edge(fresh, upper, hi, False)
                        )
                    if rows:
                        yield rows
                    if (edge <= start) if reverse else (edge >= stop):
                        return
                    continue
            if touched:
                rows = []
                for key, user, raw, value in zip(
                    keys[a:b], users[a:b], values[a:b], decoded[a:b], strict=True
                ):
                    if key in touched:
                        current = read(key, published)
                        if current is not None and current[2] is not None:
                            rows.append((user, decode(current[2])))
                    elif raw is not None:
                        rows.append((user, decode(raw) if value is RAW else value))
            elif a == b:
                rows = []
            elif view.clean.find(0, a >> BLOCK_SHIFT, ((b - 1) >> BLOCK_SHIFT) + 1) < 0:
                rows = list(zip(users[a:b], decoded[a:b], strict=True))  # all live, decoded
            else:  # no chain touched, but tombstones or lists and dicts to decode
                rows = [
                    (user, decode(raw) if value is RAW else value)
                    for user, raw, value in zip(users[a:b], values[a:b], decoded[a:b], strict=True)
                    if raw is not None
                ]
            if reverse:
                rows.reverse()
            if rows:
                yield rows
            if (edge <= start) if reverse else (edge >= stop):
                return

    def scan(
        self,
        lo: bytes,
        hi: bytes | None,
        published: int,
        bound: int | None = None,
        by_ts: bool = False,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, Entry]]:
        """``(key, entry)`` of every key in ``[lo, hi)`` with a live (non-tombstone) version
        visible to the reader, in key order. Raises HistoryUnavailableError as ``read``."""
        if bound is not None:
            self.check_floor(bound, by_ts)
        chains = self.chains
        for key in self.iter_keys(lo, hi, reverse):
            chain = chains.get(key)
            if chain is None:
                continue
            found: Entry | None = None
            entry = chain[-1]
            if bound is None and entry[0] <= published:
                found = entry
            else:
                for entry in reversed(chain):
                    if entry[0] <= published and (
                        bound is None or (entry[1] if by_ts else entry[0]) <= bound
                    ):
                        found = entry
                        break
                if found is None and bound is not None and key in self.pruned:
                    self.check_history(key, bound, by_ts)
            if found is not None and found[2] is not None:
                yield key, found

    def history(self, key: bytes, published: int) -> list[Entry]:
        """Every retained version of ``key`` up to ``published``, newest first."""
        chain = self.chains.get(key)
        if not chain:
            return []
        return [entry for entry in reversed(chain) if entry[0] <= published]

    # -- garbage collection (commit lock held per batch by the caller) -------------------

    def collect(
        self, keys: list[bytes], horizon: int, removable: Callable[[bytes, list[Entry], int], int]
    ) -> tuple[int, int]:
        """Drop versions no reader at or after ``horizon`` can see and the policy allows.

        Args:
            keys: the keys to look at (a batch; the caller holds the commit lock).
            horizon: the oldest version any reader may still read at (the oldest open
                snapshot, else the published version).
            removable: ``(key, chain, j) -> n``, how many of the oldest entries the
                retention policy lets go, given that entries below index ``j`` are hidden
                from every reader; ``n == len(chain)`` sweeps the key (its newest entry is
                then a tombstone at or below the horizon).

        Returns:
            ``(versions removed, keys swept)``.
        """
        removed_versions = 0
        swept = 0
        chains = self.chains
        for key in keys:
            chain = chains.get(key)
            if chain is None or (len(chain) == 1 and chain[0][2] is not None):
                continue
            # j: the entry visible at the horizon; everything older is hidden
            j = len(chain) - 1
            while j >= 0 and chain[j][0] > horizon:
                j -= 1
            if j < 0:
                continue
            n = removable(key, chain, j)
            if n <= 0:
                continue
            newest = chain[-1]
            if not (n >= len(chain) and newest[2] is None and newest[0] <= horizon):
                n = min(n, j)  # only a tombstone every reader sees may take its key along
            if n <= 0:
                continue
            gone = chain[:n]
            if self.track_changes:
                self.removed.setdefault(key, []).extend(entry[0] for entry in gone)
            removed_versions += n
            if n >= len(chain):
                del chains[key]
                self.order.removed(key)
                self.pruned.discard(key)
                self.dirty.discard(key)
                tomb = chain[-1]
                self.swept_version = max(self.swept_version, tomb[0])
                self.swept_ts = max(self.swept_ts, tomb[1])
                swept += 1
            else:
                chains[key] = chain[n:]
                self.pruned.add(key)
        return removed_versions, swept

    def version_count(self) -> int:
        """How many versions (tombstones included) are retained."""
        return sum(len(chain) for chain in list(self.chains.values()))
