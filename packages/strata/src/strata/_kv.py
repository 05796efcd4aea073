"""The KV primitive outside transactions: every call is its own (autocommit) transaction.

Reads take no lock and decode one value; writes go straight to the commit path with the
check they need (``delete`` and ``cas`` decide under the commit lock, so they are atomic
with respect to every other commit).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._codec import (
    MAX_KEY_BYTES,
    TAG_BYTES,
    TAG_STR,
    decode_value,
    encode_key,
    encode_value,
    keyspace_prefix,
    scan_bounds,
    user_key,
)
from ._mvcc import Entry
from ._records import OP_DELETE, OP_PUT
from .errors import StrataUsageError

if TYPE_CHECKING:
    from ._db import Engine

Key = "str | bytes"


class Version(NamedTuple):
    """One retained version of a key (``history()``).

    Attributes:
        version: the commit version that wrote it.
        timestamp: the commit time, seconds since the Unix epoch.
        value: the value (``None`` for a delete).
        deleted: whether this version is a delete (a tombstone).
    """

    version: int
    timestamp: float
    value: Any
    deleted: bool


EAGER_LIMIT = 1024  # scans with a limit up to this are read at the call, as one list


class _NotAppliedError(Exception):
    """A conditional autocommit (delete, cas) found its condition false."""


def as_of_bound(as_of: object) -> tuple[int, bool]:
    """``(bound, by_ts)`` for an ``as_of`` argument.

    An ``int`` is a commit version; a ``float`` is a timestamp in seconds since the Unix
    epoch; a ``datetime`` is a timestamp (naive ones are local time).

    Raises:
        StrataUsageError: a negative version or timestamp, or another type.
    """
    if type(as_of) is int:
        if as_of < 0:
            raise StrataUsageError(f"as_of version must be ≥ 0, got {as_of}")
        return as_of, False
    if type(as_of) is float:
        if not 0 <= as_of < _MAX_SECONDS:
            raise StrataUsageError(f"as_of timestamp must be finite and ≥ 0, got {as_of}")
        return seconds_bound(as_of), True
    if isinstance(as_of, _dt.datetime):
        return seconds_bound(as_of.timestamp()), True
    raise StrataUsageError(
        f"as_of is a version (int) or a timestamp (float seconds or datetime), not "
        f"{type(as_of).__name__}"
    )


_MAX_SECONDS = 2.0**63 / 1e9


def seconds_bound(seconds: float) -> int:
    """The newest timestamp in ns that a version may have to be visible ``as_of`` seconds:
    the largest ``n`` with ``n / 1e9 <= seconds``, so that reading as of a version's
    public ``Version.timestamp`` (``ts_ns / 1e9``, a float that cannot hold every ns
    near the present) finds that version. ``int(seconds * 1e9)`` may land a few hundred
    ns below it."""
    if seconds <= 0:
        return 0
    lo = int(seconds * 1e9) - 2048  # a float near today holds time to ~240 ns
    hi = lo + 4096
    while lo < hi:  # bisect for the last n with n / 1e9 <= seconds
        mid = (lo + hi + 1) // 2
        if mid / 1e9 <= seconds:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 0)


def check_limit(limit: object) -> int | None:
    """Validate a scan limit (None or an int ≥ 0)."""
    if limit is None:
        return None
    if type(limit) is not int or limit < 0:
        raise StrataUsageError(f"limit must be None or an int ≥ 0, got {limit!r}")
    return limit


def to_version(entry: tuple[int, int, bytes | None]) -> Version:
    """The public form of one stored version."""
    raw = entry[2]
    return Version(
        entry[0], entry[1] / 1e9, None if raw is None else decode_value(raw), raw is None
    )


class KV:
    """A keyspace's KV primitive, each call an autocommit transaction (``db.kv``,
    ``db.keyspace(name)``). Thread-safe.

    Keys are ``str`` or ``bytes`` (different keys even when equal in UTF-8; bytes keys
    sort before str keys), at most 512 bytes (UTF-8 for str). Values: None, bool, int
    (64-bit), float, str, bytes, list, dict with str keys.
    """

    __slots__ = (
        "_bytes_prefix",
        "_engine",
        "_plen",
        "_prefix",
        "_str_prefix",
        "_versions",
        "name",
    )

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._versions = engine._versions
        self._prefix = keyspace_prefix(name)
        self._plen = len(self._prefix)
        self._bytes_prefix = self._prefix + bytes([TAG_BYTES])
        self._str_prefix = self._prefix + bytes([TAG_STR])
        self.name = name

    def __repr__(self) -> str:
        return f"<strata KV keyspace={self.name!r}>"

    # -- reads -------------------------------------------------------------------------

    def get(self, key: str | bytes, default: Any = None, *, as_of: object = None) -> Any:
        """The value of ``key``, or ``default`` if it has none.

        Args:
            key: a str or bytes key.
            default: returned when the key does not exist (or is deleted).
            as_of: read as of a version (int) or a time (float seconds, datetime).

        Returns:
            A fresh copy of the stored value, or ``default``.

        Raises:
            ValueTypeError, KeyTooLargeError: a bad key.
            HistoryUnavailableError: ``as_of`` needs history retention removed.
            DatabaseClosedError.
        """
        # the common keys inline (encode_key does the same, and raises for the rest)
        if type(key) is bytes and len(key) <= MAX_KEY_BYTES:
            ek = self._bytes_prefix + key
        elif type(key) is str and len(key) <= MAX_KEY_BYTES and key.isascii():
            ek = self._str_prefix + key.encode("ascii")
        else:
            ek = encode_key(self._prefix, key)
        engine = self._engine
        if engine._closed:
            engine.check_open()
        if as_of is None:
            chain = self._versions.chains.get(ek)
            if chain is None:
                return default
            entry: Entry = chain[-1]
            if entry[0] > engine.published:
                found = self._versions.read(ek, engine.published)
                if found is None:
                    return default
                entry = found
        else:
            bound, by_ts = as_of_bound(as_of)
            found = self._versions.read(ek, engine.published, bound, by_ts)
            if found is None:
                return default
            entry = found
        raw = entry[2]
        if raw is None:
            return default
        if raw[0] == 0xC4 and len(raw) == raw[1] + 2:  # bytes up to 255: msgpack bin 8
            return raw[2:]
        return decode_value(raw)

    def exists(self, key: str | bytes, *, as_of: object = None) -> bool:
        """Whether ``key`` has a live value (at ``as_of``, if given). Raises as ``get``."""
        sentinel = _MISSING
        return self.get(key, sentinel, as_of=as_of) is not sentinel

    def get_many(
        self, keys: Iterable[str | bytes], default: Any = None, *, as_of: object = None
    ) -> list[Any]:
        """The values of ``keys`` in order (``default`` for missing ones), all read at one
        snapshot. Raises as ``get``."""
        engine = self._engine
        engine.check_open()
        with engine.snapshot() as snap:
            at, by_ts = (None, False) if as_of is None else as_of_bound(as_of)
            read = self._versions.read
            out = []
            for key in keys:
                entry = read(encode_key(self._prefix, key), snap, at, by_ts)
                out.append(default if entry is None or entry[2] is None else decode_value(entry[2]))
            return out

    def scan(
        self,
        *,
        prefix: str | bytes | None = None,
        start: str | bytes | None = None,
        end: str | bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
        as_of: object = None,
    ) -> Iterator[tuple[str | bytes, Any]]:
        """``(key, value)`` pairs in key order, read at one snapshot.

        Args:
            prefix: only keys starting with it.
            start: first key (inclusive); end: last key (exclusive). ``prefix``, ``start``
                and ``end`` must all be str or all bytes, and select keys of that type.
            reverse: descending order.
            limit: at most this many pairs.
            as_of: scan as of a version or a time.

        Returns:
            An iterator. Arguments are checked at the call. A scan with a ``limit`` of at
            most 1,024 rows and no ``as_of`` is read at the call; any other is lazy: its
            snapshot is taken at the first ``next()`` and held (for GC) until the iterator
            ends or is closed.

        Raises:
            StrataUsageError, ValueTypeError, HistoryUnavailableError, DatabaseClosedError.
        """
        self._engine.check_open()
        lo, hi = scan_bounds(self._prefix, key_prefix=prefix, start=start, end=end)
        limit = check_limit(limit)
        bound = None if as_of is None else as_of_bound(as_of)
        if bound is None and limit is not None and limit <= EAGER_LIMIT:
            return iter(self._collect(lo, hi, reverse, limit))
        return self._scan(lo, hi, reverse, limit, bound)

    def _collect(
        self, lo: bytes, hi: bytes | None, reverse: bool, limit: int
    ) -> list[tuple[str | bytes, Any]]:
        """A short scan read at once (no generator between the rows and the caller)."""
        out: list[tuple[str | bytes, Any]] = []
        if limit == 0:
            return out
        engine = self._engine
        token, snap = engine.begin_snapshot()
        try:
            for rows in self._versions.scan_view(lo, hi, snap, reverse, limit):
                need = limit - len(out)
                out += rows[:need] if len(rows) > need else rows
                if len(out) >= limit:
                    break
        finally:
            engine.end_snapshot(token)
        return out

    def _scan(
        self,
        lo: bytes,
        hi: bytes | None,
        reverse: bool,
        limit: int | None,
        bound: tuple[int, bool] | None,
    ) -> Iterator[tuple[str | bytes, Any]]:
        if limit == 0:
            return
        plen = self._plen
        with self._engine.snapshot() as snap:
            n = 0
            if bound is None:
                for rows in self._versions.scan_view(lo, hi, snap, reverse):
                    batch = rows
                    if limit is not None and n + len(rows) >= limit:
                        batch = rows[: limit - n]
                    n += len(batch)
                    yield from batch
                    if n == limit:
                        return
                return
            at, by_ts = bound
            for ek, entry in self._versions.scan(lo, hi, snap, at, by_ts, reverse):
                yield user_key(ek, plen), decode_value(entry[2])  # type: ignore[arg-type]
                n += 1
                if n == limit:
                    return

    def count(self, prefix: str | bytes | None = None) -> int:
        """How many live keys (with ``prefix``, if given) the keyspace holds now."""
        self._engine.check_open()
        lo, hi = scan_bounds(self._prefix, key_prefix=prefix)
        with self._engine.snapshot() as snap:
            return sum(len(batch) for batch in self._versions.scan_view(lo, hi, snap))

    def history(self, key: str | bytes, *, limit: int | None = None) -> list[Version]:
        """Every retained version of ``key``, newest first, deletes included.

        Args:
            key: the key.
            limit: at most this many versions.

        Returns:
            ``Version(version, timestamp, value, deleted)`` tuples.
        """
        ek = encode_key(self._prefix, key)
        self._engine.check_open()
        limit = check_limit(limit)
        entries = self._versions.history(ek, self._engine.published)
        if limit is not None:
            entries = entries[:limit]
        return [to_version(entry) for entry in entries]

    # -- writes ------------------------------------------------------------------------

    def put(self, key: str | bytes, value: Any) -> int:
        """Set ``key`` to ``value``; returns the commit version.

        Raises:
            ValueTypeError: a key or value of an unsupported type (the message names the
                path inside the value).
            KeyTooLargeError, ValueTooLargeError, ReadOnlyError, DatabaseClosedError,
            DatabasePoisonedError; with pessimistic transactions running, DeadlockError
            or LockTimeoutError.
        """
        return self._engine.autocommit(
            [(OP_PUT, encode_key(self._prefix, key), encode_value(value))]
        )

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> int:
        """Set every ``(key, value)`` in one atomic commit (a later duplicate key wins);
        returns the commit version. Raises as ``put``; nothing is written on error."""
        pairs = items.items() if isinstance(items, Mapping) else items
        ops: dict[bytes, tuple[int, bytes, bytes | None]] = {}
        for key, value in pairs:
            ek = encode_key(self._prefix, key)
            ops[ek] = (OP_PUT, ek, encode_value(value))
        if not ops:
            return self._engine.published
        return self._engine.autocommit(list(ops.values()))

    def delete(self, key: str | bytes) -> bool:
        """Delete ``key``; returns whether it existed. Raises as ``put``."""
        ek = encode_key(self._prefix, key)
        newest = self._versions.newest

        def exists() -> None:
            entry = newest(ek)
            if entry is None or entry[2] is None:
                raise _NotAppliedError

        try:
            self._engine.autocommit([(OP_DELETE, ek, None)], exists)
        except _NotAppliedError:
            return False
        return True

    def delete_many(self, keys: Iterable[str | bytes]) -> int:
        """Delete ``keys`` in one atomic commit; returns how many existed."""
        ops = [
            (OP_DELETE, ek, None)
            for ek in dict.fromkeys(encode_key(self._prefix, key) for key in keys)
        ]
        newest = self._versions.newest

        def existing() -> None:
            ops[:] = [op for op in ops if (e := newest(op[1])) is not None and e[2] is not None]
            if not ops:
                raise _NotAppliedError

        try:
            self._engine.autocommit(ops, existing)  # type: ignore[arg-type]
        except _NotAppliedError:
            return 0
        return len(ops)

    def cas(self, key: str | bytes, expected_version: int | None, value: Any) -> int | None:
        """Compare and set: write ``value`` only if ``key``'s current version is
        ``expected_version`` (``None``: only if the key does not exist).

        Returns:
            The new version, or ``None`` if the current version differed.

        Raises:
            As ``put``; StrataUsageError if ``expected_version`` is not an int or None.
        """
        if expected_version is not None and type(expected_version) is not int:
            raise StrataUsageError(
                f"expected_version is an int or None, got {type(expected_version).__name__}"
            )
        ek = encode_key(self._prefix, key)
        encoded = encode_value(value)
        newest = self._versions.newest

        def matches() -> None:
            entry = newest(ek)
            current = None if entry is None or entry[2] is None else entry[0]
            if current != expected_version:
                raise _NotAppliedError

        try:
            return self._engine.autocommit([(OP_PUT, ek, encoded)], matches)
        except _NotAppliedError:
            return None


_MISSING = object()
