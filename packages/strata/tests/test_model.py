"""Model-based tests of the whole engine (issue 7): a Hypothesis state machine drives
``strata`` and a dict-of-versions model side by side and compares every answer.

The model keeps, per ``(keyspace, key)``, the retained versions oldest first as
``(version, value)`` pairs (``DELETED`` for a tombstone), plus the two pieces of retention
state the engine documents (``_mvcc.py``, ``_retention.py``): the set of *pruned* keys
(GC removed their older versions, so an ``as_of`` read that finds no version there raises
``HistoryUnavailableError``) and the *swept floor* (the newest tombstone GC swept with its
key; any ``as_of`` read below it that finds nothing raises, and every ``as_of`` scan below
it raises). No snapshot is open while the machine runs GC, so the horizon is the newest
version and the collector follows the policy alone.

Semantics pinned down here (the docs leave them implicit):

- every commit takes the next version, ``set_retention`` included; a delete of a missing
  key, a ``delete_many`` of only missing keys, a ``cas`` that fails and a transaction that
  wrote nothing take none;
- inside a transaction, deleting a key the transaction itself created writes a tombstone;
- GC removals are not logged: they become durable at the next checkpoint, so after a
  crash the retention state is the one of the last checkpoint (plus the replayed commits);
- ``standard`` mode: after power loss the recovered state is the model after some commit
  between the last checkpoint and the last commit; ``always`` mode: after the last commit.

Crash steps run the database on a ``strata_testkit.CrashFS`` and reopen it on one of the
images a power loss could leave (dropped, kept, prefixes, torn writes of unsynced data).

Default example counts keep this file well under a minute; ``STRATA_SLOW=1`` runs more.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import strata
from strata import Composite, HistoryUnavailableError, KeepAll, KeepFor, KeepLast

pytest.importorskip("strata_testkit")
from strata_testkit import CrashFS

SLOW = bool(os.environ.get("STRATA_SLOW"))


class _Deleted:
    """The model's tombstone; one instance, which copies keep (``is`` compares it)."""

    def __repr__(self) -> str:
        return "DELETED"

    def __deepcopy__(self, memo: dict[int, Any]) -> _Deleted:
        return self


DELETED = _Deleted()
SPACES = ("default", "other")
KEYS = ["a", "ab", "b", b"a", b"ab", b"\x00"]
key_st = st.sampled_from(KEYS)
space_st = st.sampled_from(SPACES)
value_st = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3), max_size=2),
)
policy_st = st.sampled_from(
    [
        KeepAll(),
        KeepLast(1),
        KeepLast(2),
        KeepLast(3),
        KeepFor(1e7),
        Composite(KeepAll(), {"other": KeepLast(1)}),
        Composite(KeepLast(2), {"other": KeepAll()}),
    ]
)


def sort_key(key: str | bytes) -> tuple[int, Any]:
    """Scan order inside a keyspace: bytes keys bytewise, then str keys by code point."""
    return (0, key) if isinstance(key, bytes) else (1, key)


class Model:
    """The expected state: retained versions, pruned keys, swept floor, policy."""

    def __init__(self) -> None:
        self.chains: dict[tuple[str, Any], list[tuple[int, Any]]] = {}
        self.pruned: set[tuple[str, Any]] = set()
        self.swept_version = 0
        self.version = 0
        self.policy: strata.RetentionPolicy = KeepAll()

    def copy(self) -> Model:
        return copy.deepcopy(self)

    # -- writes -----------------------------------------------------------------------

    def commit(self, writes: dict[tuple[str, Any], Any]) -> int:
        self.version += 1
        for sk, value in writes.items():
            self.chains.setdefault(sk, []).append((self.version, value))
        return self.version

    def live(self, sk: tuple[str, Any]) -> bool:
        chain = self.chains.get(sk)
        return bool(chain) and chain[-1][1] is not DELETED

    def current_version(self, sk: tuple[str, Any]) -> int | None:
        return self.chains[sk][-1][0] if self.live(sk) else None

    # -- reads ------------------------------------------------------------------------

    def get(self, sk: tuple[str, Any], as_of: int | None = None) -> Any:
        """The value (DELETED when none); raises HistoryUnavailableError as documented."""
        for version, value in reversed(self.chains.get(sk, [])):
            if as_of is None or version <= as_of:
                return value
        if as_of is not None and (sk in self.pruned or as_of < self.swept_version):
            raise HistoryUnavailableError("model")
        return DELETED

    def scan(self, space: str, lo_test: Any, as_of: int | None) -> list[tuple[Any, Any]]:
        if as_of is not None and as_of < self.swept_version:
            raise HistoryUnavailableError("model")
        keys = sorted((k for s, k in self.chains if s == space and lo_test(k)), key=sort_key)
        out = []
        for key in keys:
            value = self.get((space, key), as_of)
            if value is not DELETED:
                out.append((key, value))
        return out

    # -- retention --------------------------------------------------------------------

    def gc(self, horizon: int | None = None) -> tuple[int, int]:
        """The collector; ``horizon`` is the oldest open snapshot (default: none open)."""
        horizon = self.version if horizon is None else horizon
        removed = swept = 0
        for sk in list(self.chains):
            chain = self.chains[sk]
            if len(chain) == 1 and chain[0][1] is not DELETED:
                continue
            # versions below index j are hidden from every reader
            j = max((i for i, (v, _) in enumerate(chain) if v <= horizon), default=-1)
            if j < 0:
                continue
            policy = self.policy
            if isinstance(policy, Composite):
                policy = policy.policy_for(sk[0])
            tomb = chain[-1][1] is DELETED
            if isinstance(policy, KeepLast):
                n = len(chain) if tomb else max(0, min(j, len(chain) - policy.n))
            else:  # KeepAll, and KeepFor with a window longer than the test
                n = 0
            if not (n >= len(chain) and tomb and chain[-1][0] <= horizon):
                n = min(n, j)
            if n <= 0:
                continue
            removed += n
            if n >= len(chain):
                del self.chains[sk]
                self.pruned.discard(sk)
                self.swept_version = max(self.swept_version, chain[-1][0])
                swept += 1
            else:
                self.chains[sk] = chain[n:]
                self.pruned.add(sk)
        return removed, swept


def scan_filter(prefix: Any, start: Any, end: Any) -> Any:
    bounds = [b for b in (prefix, start, end) if b is not None]
    kind = type(bounds[0]) if bounds else None

    def test(key: Any) -> bool:
        if kind is not None and type(key) is not kind:
            return False
        if prefix is not None and not key.startswith(prefix):
            return False
        if start is not None and key < start:
            return False
        return not (end is not None and key >= end)

    return test


class _Base(RuleBasedStateMachine):
    """Rules shared by the file-backed and the cache-mode machines."""

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.log: list[tuple[int, dict[tuple[str, Any], Any], Any]] = []
        self.db: strata.Database | None = None

    def commit(
        self, writes: dict[tuple[str, Any], Any], policy: strata.RetentionPolicy | None = None
    ) -> int:
        """Record one commit in the model and in the log a crash replays."""
        version = self.model.commit(writes)
        if policy is not None:
            self.model.policy = policy
        self.log.append((version, dict(writes), policy))
        return version

    def kv(self, space: str) -> strata.KV:
        assert self.db is not None
        return self.db.keyspace(space)

    def teardown(self) -> None:
        if self.db is not None:
            self.db.close()

    # -- writes -----------------------------------------------------------------------

    @rule(space=space_st, key=key_st, value=value_st)
    def put(self, space: str, key: Any, value: Any) -> None:
        version = self.kv(space).put(key, value)
        assert version == self.commit({(space, key): value})

    @rule(space=space_st, key=key_st)
    def delete(self, space: str, key: Any) -> None:
        existed = self.model.live((space, key))
        assert self.kv(space).delete(key) is existed
        if existed:
            self.commit({(space, key): DELETED})

    @rule(space=space_st, items=st.lists(st.tuples(key_st, value_st), max_size=4))
    def put_many(self, space: str, items: list[tuple[Any, Any]]) -> None:
        version = self.kv(space).put_many(items)
        if items:
            assert version == self.commit({(space, k): v for k, v in items})
        else:
            assert version == self.model.version

    @rule(space=space_st, keys=st.lists(key_st, max_size=4))
    def delete_many(self, space: str, keys: list[Any]) -> None:
        existing = {(space, k): DELETED for k in keys if self.model.live((space, k))}
        assert self.kv(space).delete_many(keys) == len(existing)
        if existing:
            self.commit(existing)

    @rule(space=space_st, key=key_st, value=value_st, right=st.booleans(), offset=st.integers(1, 3))
    def cas(self, space: str, key: Any, value: Any, right: bool, offset: int) -> None:
        current = self.model.current_version((space, key))
        if right:
            expected = current
        else:
            expected = offset if current is None else (None if offset == 1 else current + offset)
        result = self.kv(space).cas(key, expected, value)
        if expected == current:
            assert result == self.commit({(space, key): value})
        else:
            assert result is None

    @rule(
        ops=st.lists(
            st.tuples(st.sampled_from(["put", "delete", "cas"]), space_st, key_st, value_st),
            min_size=1,
            max_size=5,
        ),
        rollback=st.booleans(),
    )
    def transaction(self, ops: list[tuple[str, str, Any, Any]], rollback: bool) -> None:
        assert self.db is not None
        writes: dict[tuple[str, Any], Any] = {}
        try:
            with self.db.transaction() as tx:
                for op, space, key, value in ops:
                    sk = (space, key)
                    seen = writes.get(
                        sk, DELETED if not self.model.live(sk) else self.model.chains[sk][-1][1]
                    )
                    txkv = tx.keyspace(space)
                    if op == "put":
                        txkv.put(key, value)
                        writes[sk] = value
                    elif op == "delete":
                        if sk in writes and not self.model.live(sk):
                            # deleting a key this transaction created: whether that writes
                            # a tombstone is _txn.py's call (and has changed); not pinned
                            continue
                        assert txkv.delete(key) is (seen is not DELETED)
                        if seen is not DELETED:
                            writes[sk] = DELETED
                    elif sk not in writes:  # cas with the version the tx sees
                        expected = self.model.current_version(sk)
                        assert txkv.cas(key, expected, value) is True
                        writes[sk] = value
                    got = txkv.get(key, DELETED)
                    assert got == writes.get(sk, seen) or (
                        got is DELETED and sk not in writes and seen is DELETED
                    )
                if rollback:
                    raise _RollbackError
        except _RollbackError:
            return
        if writes:
            assert tx.version == self.commit(writes)
        else:
            assert tx.version is None

    @initialize(
        policy=st.sampled_from(
            [
                KeepLast(1),
                KeepLast(2),
                KeepLast(1),
                Composite(KeepLast(1), {"other": KeepLast(3)}),
                KeepAll(),
            ]
        )
    )
    def start_with_policy(self, policy: strata.RetentionPolicy) -> None:
        """Most runs collect garbage from the start (GC under KeepAll tests little)."""
        self.set_retention(policy)

    @rule(policy=policy_st)
    def set_retention(self, policy: strata.RetentionPolicy) -> None:
        assert self.db is not None
        assert self.db.set_retention(policy) == self.commit({}, policy)
        assert self.db.retention == policy

    @rule()
    def gc(self) -> None:
        assert self.db is not None
        removed, swept = self.model.gc()
        assert self.db.gc() == {"versions_removed": removed, "keys_swept": swept}

    @rule(
        space=space_st,
        key=key_st,
        values=st.lists(value_st, min_size=1, max_size=4),
        then_delete=st.booleans(),
    )
    def churn_then_gc(self, space: str, key: Any, values: list[Any], then_delete: bool) -> None:
        """Several versions of one key (maybe deleted after), then GC: the steps that give
        retention something to remove."""
        for value in values:
            self.put(space, key, value)
        if then_delete:
            self.delete(space, key)
        self.gc()

    @rule()
    def compact(self) -> None:
        assert self.db is not None
        removed, swept = self.model.gc()
        figures = self.db.compact()
        assert (figures["versions_removed"], figures["keys_swept"]) == (removed, swept)
        self.compacted()

    def compacted(self) -> None:
        """Hook: a file-backed machine records the checkpoint compact() wrote."""

    @rule(
        space=space_st,
        key=key_st,
        values=st.lists(value_st, min_size=2, max_size=4),
        then_delete=st.booleans(),
        others=st.lists(st.tuples(space_st, key_st), max_size=3),
    )
    def gc_under_snapshot(
        self,
        space: str,
        key: Any,
        values: list[Any],
        then_delete: bool,
        others: list[tuple[str, Any]],
    ) -> None:
        """GC while a transaction is open keeps everything its snapshot reads."""
        assert self.db is not None
        self.put(space, key, values[0])
        before = self.model.copy()
        with self.db.transaction(read_only=True) as tx:
            for value in values[1:]:
                self.put(space, key, value)
            if then_delete:
                self.delete(space, key)
            for other_space, other in others:
                self.delete(other_space, other)
            removed, swept = self.model.gc(horizon=before.version)
            assert self.db.gc() == {"versions_removed": removed, "keys_swept": swept}
            for sp in SPACES:
                for k in KEYS:
                    expected = before.get((sp, k))
                    got = tx.keyspace(sp).get(k, DELETED)
                    assert got is expected if expected is DELETED else got == expected
                expected_scan = before.scan(sp, scan_filter(None, None, None), None)
                assert list(tx.keyspace(sp).scan()) == expected_scan

    # -- reads ------------------------------------------------------------------------

    @rule(space=space_st, key=key_st)
    def get_latest(self, space: str, key: Any) -> None:
        expected = self.model.get((space, key))
        assert self.kv(space).get(key, DELETED) == expected or (
            expected is DELETED and self.kv(space).get(key, DELETED) is DELETED
        )
        assert self.kv(space).exists(key) is (expected is not DELETED)

    @rule(space=space_st, key=key_st, data=st.data())
    def get_as_of(self, space: str, key: Any, data: st.DataObject) -> None:
        as_of = data.draw(st.integers(0, self.model.version + 1), label="as_of")
        try:
            expected = self.model.get((space, key), as_of)
        except HistoryUnavailableError:
            with pytest.raises(HistoryUnavailableError):
                self.kv(space).get(key, as_of=as_of)
            return
        got = self.kv(space).get(key, DELETED, as_of=as_of)
        assert got is expected if expected is DELETED else got == expected

    @rule(space=space_st, key=key_st, limit=st.one_of(st.none(), st.integers(0, 3)))
    def history(self, space: str, key: Any, limit: int | None) -> None:
        expected = [
            (v, None if x is DELETED else x, x is DELETED)
            for v, x in reversed(self.model.chains.get((space, key), []))
        ]
        if limit is not None:
            expected = expected[:limit]
        got = self.kv(space).history(key, limit=limit)
        assert [(h.version, h.value, h.deleted) for h in got] == expected
        stamps = [h.timestamp for h in got]
        assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)

    @rule(
        space=space_st,
        kind=st.sampled_from([str, bytes]),
        data=st.data(),
        reverse=st.booleans(),
        limit=st.one_of(st.none(), st.integers(0, 4)),
        use_as_of=st.booleans(),
    )
    def scan(
        self,
        space: str,
        kind: type,
        data: st.DataObject,
        reverse: bool,
        limit: int | None,
        use_as_of: bool,
    ) -> None:
        bound = st.one_of(
            st.none(),
            st.sampled_from(["", "a", "ab", "b", "c"]).map(
                lambda s: s if kind is str else s.encode()
            ),
        )
        prefix, start, end = (data.draw(bound, label=n) for n in ("prefix", "start", "end"))
        as_of = data.draw(st.integers(0, self.model.version), label="as_of") if use_as_of else None
        try:
            expected = self.model.scan(space, scan_filter(prefix, start, end), as_of)
        except HistoryUnavailableError:
            with pytest.raises(HistoryUnavailableError):
                list(self.kv(space).scan(prefix=prefix, start=start, end=end, as_of=as_of))
            return
        if reverse:
            expected.reverse()
        if limit is not None:
            expected = expected[:limit]
        got = list(
            self.kv(space).scan(
                prefix=prefix, start=start, end=end, reverse=reverse, limit=limit, as_of=as_of
            )
        )
        assert got == expected

    @rule(space=space_st, prefix=st.sampled_from([None, "a", b"a", "", b""]))
    def count(self, space: str, prefix: Any) -> None:
        expected = len(self.model.scan(space, scan_filter(prefix, None, None), None))
        assert self.kv(space).count(prefix) == expected

    @invariant()
    def verifies(self) -> None:
        if self.db is not None:
            report = self.db.verify()
            assert report["ok"], report["errors"]
            assert self.db.version == self.model.version


class _RollbackError(Exception):
    pass


class FileMachine(_Base):
    """The engine on a crash-simulating file system: checkpoints, reopen, power loss."""

    durability = "standard"

    def __init__(self) -> None:
        super().__init__()
        self.fs = CrashFS()
        self.checkpointed = Model()  # the model as of the last checkpoint
        self.db = self.open()

    def open(self) -> strata.Database:
        # no background checkpoint, GC or WAL sync: the machine decides when they run, so
        # a crash state is a function of the steps (Hypothesis replays them)
        return strata.open(
            self.fs,
            durability=self.durability,
            checkpoint_interval=1e6,
            gc_interval=1e6,
            sync_interval=1e6,
        )

    @rule()
    def checkpoint(self) -> None:
        assert self.db is not None
        self.db.checkpoint()
        self.checkpointed = self.model.copy()

    def compacted(self) -> None:
        self.checkpointed = self.model.copy()

    @rule()
    def close_reopen(self) -> None:
        assert self.db is not None
        self.db.close()
        with pytest.raises(strata.DatabaseClosedError):
            self.db.kv.get("a")
        self.checkpointed = self.model.copy()
        self.db = self.open()
        assert self.db.retention == self.model.policy

    @rule(data=st.data())
    def power_loss(self, data: st.DataObject) -> None:
        assert self.db is not None
        seed, pick = data.draw(st.tuples(st.integers(0, 3), st.integers(0, 5)), label="crash")
        states = list(self.fs.crash_states(seed=seed, max_states=6))
        state = states[pick % len(states)]
        self.db.close()  # stops its threads; what it writes now is after the crash
        self.fs = CrashFS(state.files)
        self.db = self.open()
        recovered = self.db.version
        if self.durability == "always":
            assert recovered == self.model.version, state.description
        else:
            assert self.checkpointed.version <= recovered <= self.model.version, state.description
        self.model = self.replay(recovered)
        assert self.db.retention == self.model.policy

    def replay(self, upto: int) -> Model:
        """The model after a crash that kept the commits up to ``upto``: the checkpoint's
        state (with its GC) plus the later commits, which the WAL replays."""
        model = self.checkpointed.copy()
        for version, writes, policy in self.log:
            if model.version < version <= upto:
                assert model.commit(writes) == version
                if policy is not None:
                    model.policy = policy
        self.log = [entry for entry in self.log if entry[0] <= upto]
        return model


class AlwaysFileMachine(FileMachine):
    """``always`` mode: every commit that returned survives any power loss."""

    durability = "always"


class CacheMachine(_Base):
    """``open_memory()``: the same rules without files."""

    def __init__(self) -> None:
        super().__init__()
        self.db = strata.open_memory(gc_interval=1e6)


_SETTINGS = settings(
    max_examples=300 if SLOW else 75,
    stateful_step_count=80 if SLOW else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # STRATA_NO_SHRINK=1: report the first failure as found (while debugging the engine)
    **(
        {"phases": [Phase.generate], "database": None} if os.environ.get("STRATA_NO_SHRINK") else {}
    ),
)
TestStandardModel = FileMachine.TestCase
TestStandardModel.settings = _SETTINGS
TestAlwaysModel = AlwaysFileMachine.TestCase
TestAlwaysModel.settings = _SETTINGS
TestCacheModel = CacheMachine.TestCase
TestCacheModel.settings = settings(_SETTINGS, max_examples=500 if SLOW else 100)
