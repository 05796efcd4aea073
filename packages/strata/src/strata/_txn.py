"""Transactions: optimistic (snapshot or serializable) and pessimistic (lock-db).

Optimistic: reads at the snapshot taken at ``begin``; writes buffered (read-your-writes);
commit checks that no key written here was committed by someone else after the snapshot
(first committer wins) and, when serializable, that no key read and no key inside a
scanned range changed after it. Pessimistic (strict two-phase locking through lock-db):
IS/IX on the keyspace, S on each key read, X on each key written, S on each scanned range,
held to the end; reads see the latest commit (the locks keep it stable), so every
isolation level is serializable. Optimistic committers take X locks on their write sets
while any pessimistic transaction runs, so the two kinds never break each other's rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import lock_db

from ._codec import (
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    keyspace_prefix,
    scan_bounds,
    user_key,
)
from ._kv import Version, as_of_bound, check_limit, to_version
from ._records import OP_DELETE, OP_PUT
from .errors import (
    ConflictError,
    ReadOnlyError,
    StrataUsageError,
    TransactionAbortedError,
    TransactionClosedError,
)

if TYPE_CHECKING:
    from ._db import Engine

ISOLATION_LEVELS = ("snapshot", "serializable")
MODES = ("optimistic", "pessimistic")
_ids = itertools.count(1)


class Transaction:
    """One transaction. Use it as a context manager: it commits when the block ends and
    rolls back if the block raises. Not meant to be shared between threads.

    Attributes:
        kv: the default keyspace's KV primitive inside this transaction.
        isolation, mode, read_only: as given to ``db.transaction``.
        snapshot: the version this transaction reads at (optimistic).
        version: the commit version once committed (``None`` before, and for a commit
            that wrote nothing).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        isolation: str,
        mode: str,
        read_only: bool,
        lock_timeout: float | None,
    ) -> None:
        if isolation not in ISOLATION_LEVELS:
            raise StrataUsageError(
                f"isolation must be one of {ISOLATION_LEVELS}, got {isolation!r}"
            )
        if mode not in MODES:
            raise StrataUsageError(f"mode must be one of {MODES}, got {mode!r}")
        if not read_only:
            engine.check_writable()
        else:
            engine.check_open()
        self._engine = engine
        self.isolation = isolation
        self.mode = mode
        self.read_only = read_only
        self.id = next(_ids)
        self._timeout = lock_timeout
        self._writes: dict[bytes, bytes | None] = {}
        self._reads: set[bytes] = set()
        self._ranges: list[tuple[bytes, bytes | None]] = []
        self._locked: set[tuple[Any, ...]] = set()
        self._done = False
        self.version: int | None = None
        self.pessimistic = mode == "pessimistic"
        self._serializable = isolation == "serializable" and not self.pessimistic
        if self.pessimistic:
            engine.begin_pessimistic()
        self._token, self.snapshot = engine.begin_snapshot()
        self.kv = TxKV(self, "default")

    def keyspace(self, name: str) -> TxKV:
        """The KV primitive of keyspace ``name`` inside this transaction."""
        return TxKV(self, name)

    # -- used by TxKV ------------------------------------------------------------------

    def _check(self, write: bool = False) -> None:
        if self._done:
            raise TransactionClosedError("the transaction has already ended")
        self._engine.check_open()
        if write and self.read_only:
            raise ReadOnlyError("a read-only transaction cannot write")

    def _lock(
        self,
        space: str,
        key: bytes | None,
        mode: lock_db.LockMode,
        hi: bytes | None = None,
        is_range: bool = False,
    ) -> None:
        """Take a pessimistic lock (once per target and mode)."""
        target = (space, key, hi, is_range, mode)
        if target in self._locked:
            return
        engine = self._engine
        intent = lock_db.LockMode.IX if mode == lock_db.LockMode.X else lock_db.LockMode.IS
        try:
            engine.locks.acquire(self.id, ("keyspace", space), intent, self._timeout)
            if is_range:
                engine.locks.acquire_range(self.id, space, key, hi, mode, self._timeout)
            else:
                assert key is not None
                engine.locks.acquire_key(self.id, space, key, mode, self._timeout)
        except lock_db.LockError as exc:
            self._abort()
            raise engine.translate_lock_error(exc) from exc
        self._locked.add(target)

    def _read_version(self) -> int:
        """The version reads see: the snapshot, or the latest commit when pessimistic."""
        return self._engine.published if self.pessimistic else self.snapshot

    # -- ending ------------------------------------------------------------------------

    def commit(self) -> int | None:
        """Validate and commit.

        Returns:
            The commit version, or ``None`` if the transaction wrote nothing.

        Raises:
            ConflictError: optimistic validation failed (the transaction is rolled back).
            DeadlockError, LockTimeoutError: while taking commit-time locks.
            TransactionClosedError, DatabaseClosedError, DatabasePoisonedError.
        """
        self._check()
        engine = self._engine
        try:
            ops = [(OP_DELETE if v is None else OP_PUT, k, v) for k, v in self._writes.items()]
            validate = self._validate if self._serializable else None
            if not ops:
                if validate is not None:
                    with engine._commit_lock:
                        validate()
                return None
            if self.pessimistic:
                self.version = engine.commit(ops)  # the X locks it holds keep it safe
            else:
                self.version = engine.autocommit(ops, validate, snapshot=self.snapshot)
            return self.version
        except TransactionAbortedError:
            engine.counters["aborts"] += 1
            raise
        finally:
            self._finish()

    def rollback(self) -> None:
        """Discard every write; idempotent."""
        if not self._done:
            self._finish()

    def _abort(self) -> None:
        self._engine.counters["aborts"] += 1
        self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        engine = self._engine
        engine.end_snapshot(self._token)
        if self.pessimistic:
            engine.locks.release_all(self.id)
            engine.end_pessimistic()

    @property
    def closed(self) -> bool:
        """Whether the transaction has committed or rolled back."""
        return self._done

    def _validate(self) -> None:
        """Serializable checks, under the commit lock."""
        snapshot = self.snapshot
        versions = self._engine._versions
        for key in self._reads:
            entry = versions.newest(key)
            if entry is not None and entry[0] > snapshot:
                self._conflict(key, "read", entry[0])
        chains = versions.chains
        for lo, hi in self._ranges:
            for key in versions.iter_keys(lo, hi):
                chain = chains.get(key)
                if chain and chain[-1][0] > snapshot and key not in self._writes:
                    self._conflict(key, "range", chain[-1][0])

    def _conflict(self, key: bytes, reason: str, version: int) -> None:
        space, user = decode_key(key)
        self._engine.counters["conflicts"] += 1
        what = "read" if reason == "read" else "inside a range this transaction scanned"
        raise ConflictError(
            f"serializable: key {user!r} in keyspace {space!r}, {what}, was committed by "
            f"another transaction (version {version}) after this one's snapshot "
            f"(version {self.snapshot})",
            key=user,
            keyspace=space,
            reason=reason,
        )

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            if not self._done:
                self.commit()
        else:
            self.rollback()

    def __repr__(self) -> str:
        state = "done" if self._done else "open"
        return f"<strata Transaction {self.id} {self.isolation}/{self.mode} {state}>"


class TxKV:
    """The KV primitive inside a transaction: the methods of ``db.kv``, reading at the
    transaction's snapshot (plus its own writes) and buffering writes until commit.
    ``put`` returns ``None`` and ``cas`` a bool, since the version is only known at commit."""

    __slots__ = ("_plen", "_prefix", "_tx", "name")

    def __init__(self, tx: Transaction, name: str) -> None:
        self._tx = tx
        self._prefix = keyspace_prefix(name)
        self._plen = len(self._prefix)
        self.name = name

    def _entry(self, ek: bytes, as_of: object) -> tuple[bool, Any]:
        """(found, encoded value or None) as this transaction sees ``ek``."""
        tx = self._tx
        tx._check()
        versions = tx._engine._versions
        if as_of is not None:
            bound, by_ts = as_of_bound(as_of)
            entry = versions.read(ek, tx._read_version(), bound, by_ts)
            return entry is not None and entry[2] is not None, entry and entry[2]
        writes = tx._writes
        if ek in writes:
            raw = writes[ek]
            return raw is not None, raw
        if tx.pessimistic:
            tx._lock(self.name, ek, lock_db.LockMode.S)
        elif tx._serializable:
            tx._reads.add(ek)
        entry = versions.read(ek, tx._read_version())
        return entry is not None and entry[2] is not None, entry and entry[2]

    def get(self, key: str | bytes, default: Any = None, *, as_of: object = None) -> Any:
        """As ``db.kv.get``, at this transaction's snapshot and with its own writes."""
        found, raw = self._entry(encode_key(self._prefix, key), as_of)
        return decode_value(raw) if found else default

    def exists(self, key: str | bytes, *, as_of: object = None) -> bool:
        """As ``db.kv.exists``, inside the transaction."""
        return self._entry(encode_key(self._prefix, key), as_of)[0]

    def get_many(
        self, keys: Iterable[str | bytes], default: Any = None, *, as_of: object = None
    ) -> list[Any]:
        """As ``db.kv.get_many``, inside the transaction."""
        return [self.get(key, default, as_of=as_of) for key in keys]

    def put(self, key: str | bytes, value: Any) -> None:
        """Buffer ``key = value`` until commit. Raises as ``db.kv.put``."""
        ek = encode_key(self._prefix, key)
        encoded = encode_value(value)
        tx = self._tx
        tx._check(write=True)
        if tx.pessimistic:
            tx._lock(self.name, ek, lock_db.LockMode.X)
        tx._writes[ek] = encoded

    def put_many(self, items: Any) -> None:
        """Buffer every ``(key, value)`` of a mapping or an iterable of pairs."""
        pairs = items.items() if hasattr(items, "items") else items
        for key, value in pairs:
            self.put(key, value)

    def delete(self, key: str | bytes) -> bool:
        """Buffer a delete of ``key``; returns whether it existed for this transaction."""
        ek = encode_key(self._prefix, key)
        tx = self._tx
        tx._check(write=True)
        if tx.pessimistic:
            tx._lock(self.name, ek, lock_db.LockMode.X)
        found, _ = self._entry(ek, None)
        if found:
            tx._writes[ek] = None
        return found

    def delete_many(self, keys: Iterable[str | bytes]) -> int:
        """Delete each key; returns how many existed for this transaction."""
        return sum(self.delete(key) for key in keys)

    def cas(self, key: str | bytes, expected_version: int | None, value: Any) -> bool:
        """Write ``value`` if the version this transaction sees is ``expected_version``
        (``None``: the key must not exist). Returns whether it wrote.

        Raises:
            StrataUsageError: the key was already written in this transaction (its new
                version is not known until commit), or a bad ``expected_version``.
        """
        if expected_version is not None and type(expected_version) is not int:
            raise StrataUsageError(
                f"expected_version is an int or None, got {type(expected_version).__name__}"
            )
        ek = encode_key(self._prefix, key)
        tx = self._tx
        tx._check(write=True)
        if ek in tx._writes:
            raise StrataUsageError("cas on a key this transaction already wrote")
        if tx.pessimistic:
            tx._lock(self.name, ek, lock_db.LockMode.X)
        elif tx._serializable:
            tx._reads.add(ek)
        entry = tx._engine._versions.read(ek, tx._read_version())
        current = None if entry is None or entry[2] is None else entry[0]
        if current != expected_version:
            return False
        tx._writes[ek] = encode_value(value)
        return True

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
        """As ``db.kv.scan``, at this transaction's snapshot, merged with its own writes.
        Serializable transactions record the range; pessimistic ones lock it (S)."""
        tx = self._tx
        tx._check()
        lo, hi = scan_bounds(self._prefix, key_prefix=prefix, start=start, end=end)
        limit = check_limit(limit)
        bound = None if as_of is None else as_of_bound(as_of)
        # An empty or inverted range holds no key, now or later: nothing to lock or
        # validate (and lock-db refuses an empty range).
        if bound is None and (hi is None or lo < hi):
            if tx.pessimistic:
                tx._lock(self.name, lo, lock_db.LockMode.S, hi, is_range=True)
            elif tx._serializable:
                tx._ranges.append((lo, hi))
        return self._scan(lo, hi, reverse, limit, bound)

    def _scan(
        self,
        lo: bytes,
        hi: bytes | None,
        reverse: bool,
        limit: int | None,
        bound: tuple[int, bool] | None,
    ) -> Iterator[tuple[str | bytes, Any]]:
        tx = self._tx
        versions = tx._engine._versions
        at, by_ts = bound if bound is not None else (None, False)
        stored = (
            (k, e[2]) for k, e in versions.scan(lo, hi, tx._read_version(), at, by_ts, reverse)
        )
        own: list[tuple[bytes, bytes | None]] = []
        if bound is None:
            own = sorted(
                ((k, v) for k, v in tx._writes.items() if k >= lo and (hi is None or k < hi)),
                reverse=reverse,
            )
        n = 0
        for key, raw in _merge(stored, own, reverse):
            if limit is not None and n >= limit:
                return
            if raw is None:
                continue
            if tx._done:  # its snapshot is released: GC may already be removing it
                raise TransactionClosedError("the transaction ended while a scan was open")
            yield user_key(key, self._plen), decode_value(raw)
            n += 1

    def count(self, prefix: str | bytes | None = None) -> int:
        """Live keys (with ``prefix``) as this transaction sees them."""
        return sum(1 for _ in self.scan(prefix=prefix))

    def history(self, key: str | bytes, *, limit: int | None = None) -> list[Version]:
        """Retained committed versions of ``key`` up to this transaction's snapshot,
        newest first (its own uncommitted writes are not history yet)."""
        ek = encode_key(self._prefix, key)
        tx = self._tx
        tx._check()
        limit = check_limit(limit)
        entries = tx._engine._versions.history(ek, tx._read_version())
        return [to_version(e) for e in (entries if limit is None else entries[:limit])]


def _merge(
    stored: Iterator[tuple[bytes, bytes | None]],
    own: list[tuple[bytes, bytes | None]],
    reverse: bool,
) -> Iterator[tuple[bytes, bytes | None]]:
    """Merge the stored pairs with this transaction's writes (which win on equal keys)."""
    if not own:
        yield from stored
        return
    i = 0
    for key, raw in stored:
        while i < len(own) and (own[i][0] > key if reverse else own[i][0] < key):
            yield own[i]
            i += 1
        if i < len(own) and own[i][0] == key:
            yield own[i]
            i += 1
            continue
        yield key, raw
    yield from own[i:]
