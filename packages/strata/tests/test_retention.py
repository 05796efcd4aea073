"""Retention policies and garbage collection: what each policy removes, what GC must never
remove (versions an open snapshot reads), tombstone sweeping and the history floor,
persistence across reopen, validation, and the background collector."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import strata
from strata import (
    Composite,
    HistoryUnavailableError,
    KeepAll,
    KeepFor,
    KeepLast,
    ReadOnlyError,
    StrataUsageError,
)
from strata._retention import decode_policy, encode_policy, policy_from_json


@pytest.fixture(params=["standard", "cache"])
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[strata.Database]:
    database = (
        strata.open(tmp_path / "db", gc_interval=1e6)
        if request.param == "standard"
        else strata.open_memory(gc_interval=1e6)
    )
    yield database
    database.close()


def write_versions(kv: strata.KV, key: str, count: int) -> list[int]:
    return [kv.put(key, i) for i in range(count)]


def values(kv: strata.KV, key: str) -> list[object]:
    return [h.value for h in kv.history(key)]


# -- what each policy removes -----------------------------------------------------------


def test_keep_all_removes_nothing(db: strata.Database) -> None:
    write_versions(db.kv, "k", 5)
    db.kv.delete("k")
    assert db.retention == KeepAll()
    assert db.gc() == {"versions_removed": 0, "keys_swept": 0}
    assert len(db.kv.history("k")) == 6


def test_keep_last_keeps_n_newest(db: strata.Database) -> None:
    versions = write_versions(db.kv, "k", 6)
    write_versions(db.kv, "short", 2)
    db.set_retention(KeepLast(3))
    assert db.gc() == {"versions_removed": 3, "keys_swept": 0}
    assert values(db.kv, "k") == [5, 4, 3]
    assert values(db.kv, "short") == [1, 0]
    assert db.kv.get("k", as_of=versions[3]) == 3
    with pytest.raises(HistoryUnavailableError):
        db.kv.get("k", as_of=versions[2])  # removed: never a wrong answer
    with pytest.raises(HistoryUnavailableError):
        list(db.kv.scan(as_of=versions[2]))
    assert db.gc() == {"versions_removed": 0, "keys_swept": 0}  # idempotent
    assert db.stats()["gc"]["versions_removed"] == 3


def test_keep_last_sweeps_deleted_keys_and_sets_floor(db: strata.Database) -> None:
    v_put = db.kv.put("gone", 1)
    db.kv.put("gone", 2)
    db.kv.delete("gone")
    tomb = db.kv.history("gone")[0].version
    v_kept = db.kv.put("kept", "x")
    db.set_retention(KeepLast(5))
    assert db.gc() == {"versions_removed": 3, "keys_swept": 1}
    assert db.kv.history("gone") == []
    assert db.stats()["gc"]["swept_version"] == tomb
    assert db.kv.get("gone") is None
    with pytest.raises(HistoryUnavailableError):
        db.kv.get("gone", as_of=v_put)  # older than the swept floor: cannot tell
    with pytest.raises(HistoryUnavailableError):
        db.kv.get("never", as_of=tomb - 1)
    with pytest.raises(HistoryUnavailableError):
        list(db.kv.scan(as_of=tomb - 1))
    assert db.kv.get("gone", as_of=tomb) is None  # at or after the floor: known absent
    assert db.kv.get("kept", as_of=v_kept) == "x"
    assert list(db.kv.scan(as_of=tomb)) == []
    db.kv.put("gone", "again")  # a swept key can come back
    assert values(db.kv, "gone") == ["again"]


def test_keep_for_zero_sweeps_at_once(db: strata.Database) -> None:
    write_versions(db.kv, "k", 4)
    db.kv.put("d", 1)
    db.kv.delete("d")
    db.set_retention(KeepFor(0))
    assert db.gc() == {"versions_removed": 5, "keys_swept": 1}
    assert values(db.kv, "k") == [3]
    assert db.kv.history("d") == []


def test_keep_for_long_window_keeps_everything(db: strata.Database) -> None:
    write_versions(db.kv, "k", 4)
    db.kv.put("d", 1)
    db.kv.delete("d")
    db.set_retention(KeepFor(3600))
    assert db.gc() == {"versions_removed": 0, "keys_swept": 0}
    assert values(db.kv, "k") == [3, 2, 1, 0]


def test_keep_for_logic_against_timestamps() -> None:
    """The version current at the window's start stays; older ones go."""
    policy = KeepFor(10)
    s = 1_000_000_000
    now = 100 * s
    chain = [(1, 50 * s, b"a"), (2, 85 * s, b"b"), (3, 95 * s, b"c"), (4, 99 * s, b"d")]
    # cutoff 90 s: v1 stopped being current at 85 s (gone); v2 was current until 95 s
    assert policy.removable("ks", chain, 3, now) == 1
    assert policy.removable("ks", chain, 0, now) == 0  # hidden limits it
    tomb = [(1, 50 * s, b"a"), (2, 80 * s, None)]
    assert policy.removable("ks", tomb, 1, now) == 2  # deleted before the window: sweep
    # v1 was current until 95 s, inside the window: an as_of read there needs it
    fresh_tomb = [(1, 50 * s, b"a"), (2, 95 * s, None)]
    assert policy.removable("ks", fresh_tomb, 1, now) == 0
    older = [(1, 50 * s, b"a"), (2, 85 * s, b"b"), (3, 95 * s, None)]
    assert policy.removable("ks", older, 2, now) == 1


def test_composite_overrides_per_keyspace(db: strata.Database) -> None:
    logs, cfg = db.keyspace("logs"), db.keyspace("config")
    for kv in (db.kv, logs, cfg):
        write_versions(kv, "k", 4)
    db.set_retention(Composite(KeepAll(), {"logs": KeepLast(1), "config": KeepLast(2)}))
    assert db.gc() == {"versions_removed": 3 + 2, "keys_swept": 0}
    assert values(db.kv, "k") == [3, 2, 1, 0]
    assert values(logs, "k") == [3]
    assert values(cfg, "k") == [3, 2]
    db.set_retention(Composite(KeepLast(1), {"logs": KeepAll()}))
    assert db.gc() == {"versions_removed": 3 + 1, "keys_swept": 0}
    assert values(db.kv, "k") == [3] and values(cfg, "k") == [3]


# -- GC and open snapshots --------------------------------------------------------------


def test_gc_keeps_what_an_open_transaction_reads(db: strata.Database) -> None:
    db.kv.put_many({"k": "old", "d": "alive"})
    db.set_retention(KeepLast(1))
    with db.transaction() as tx:
        assert tx.kv.get("k") == "old"
        for i in range(5):
            db.kv.put("k", i)
        db.kv.delete("d")
        db.gc()
        assert tx.kv.get("k") == "old"
        assert tx.kv.get("d") == "alive"  # the tombstone is newer than the snapshot
        assert dict(tx.kv.scan()) == {"d": "alive", "k": "old"}
        assert db.stats()["open_snapshots"] >= 1
    assert db.kv.history("d") != []  # it was not swept while the snapshot needed it
    db.gc()
    assert values(db.kv, "k") == [4]
    assert db.kv.history("d") == []


def test_gc_keeps_what_an_open_scan_reads(db: strata.Database) -> None:
    db.kv.put_many({f"k{i}": "old" for i in range(5)})
    db.set_retention(KeepLast(1))
    it = db.kv.scan()
    assert next(it) == ("k0", "old")  # the snapshot is taken here
    db.kv.put_many({f"k{i}": "new" for i in range(5)})
    db.kv.delete("k3")
    db.gc()
    assert list(it) == [(f"k{i}", "old") for i in range(1, 5)]
    db.gc()
    assert dict(db.kv.scan()) == {"k0": "new", "k1": "new", "k2": "new", "k4": "new"}


# -- persistence ------------------------------------------------------------------------


def test_policy_persists_across_reopen(tmp_path) -> None:
    policy = Composite(KeepFor(86400), {"logs": KeepLast(3), "raw": KeepAll()})
    with strata.open(tmp_path / "db") as db:
        assert db.retention == KeepAll()
        db.set_retention(policy)
    with strata.open(tmp_path / "db") as db:
        assert db.retention == policy
        assert repr(db.retention) == repr(policy)
        assert db.stats()["retention"] == repr(policy)


def test_gc_removals_survive_checkpoint_and_reopen(tmp_path) -> None:
    with strata.open(tmp_path / "db", gc_interval=1e6) as db:
        for i in range(5):
            db.kv.put_many({f"k{j}": i for j in range(30)})
        db.checkpoint()  # the old versions are in the page file now
        db.kv.put("d", 1)
        db.kv.delete("d")
        tomb = db.version
        db.set_retention(KeepLast(2))
        assert db.gc() == {"versions_removed": 30 * 3 + 2, "keys_swept": 1}
        db.checkpoint()
        assert db.verify()["ok"]
        before = db.stats()["versions"]
        history = db.kv.history("k0")
    with strata.open(tmp_path / "db", gc_interval=1e6) as db:
        report = db.verify()
        assert report["ok"], report["errors"]
        assert db.stats()["versions"] == before == 60
        assert db.kv.history("k0") == history
        assert db.kv.history("d") == []
        assert db.stats()["gc"]["swept_version"] == tomb
        with pytest.raises(HistoryUnavailableError):
            db.kv.get("k0", as_of=1)  # pruned keys stay pruned after reopen
        with pytest.raises(HistoryUnavailableError):
            db.kv.get("d", as_of=tomb - 1)
        assert db.gc() == {"versions_removed": 0, "keys_swept": 0}


def test_gc_removals_reach_the_page_file_at_close(tmp_path) -> None:
    """No explicit checkpoint: close() writes the GC's removals."""
    with strata.open(tmp_path / "db", gc_interval=1e6) as db:
        for i in range(4):
            db.kv.put("k", i)
        db.checkpoint()
        db.set_retention(KeepLast(1))
        db.gc()
    with strata.open(tmp_path / "db") as db:
        assert db.verify()["ok"]
        assert values(db.kv, "k") == [3]
        assert db.stats()["versions"] == 1


def test_gc_refused_read_only(tmp_path) -> None:
    with strata.open(tmp_path / "db") as db:
        db.kv.put("k", 1)
    with strata.open(tmp_path / "db", read_only=True) as ro:
        with pytest.raises(ReadOnlyError):
            ro.gc()
        with pytest.raises(ReadOnlyError):
            ro.set_retention(KeepLast(1))


# -- background collector ---------------------------------------------------------------


def test_background_gc_runs(tmp_path) -> None:
    with strata.open(tmp_path / "db", gc_interval=0.05) as db:
        runs = db.stats()["gc"]["runs"]
        assert runs == 0  # KeepAll: nothing to collect, the collector stays idle
        write_versions(db.kv, "k", 5)
        db.set_retention(KeepLast(1))
        deadline = time.monotonic() + 30.0
        while db.stats()["gc"]["runs"] == 0:
            assert time.monotonic() < deadline, "the background collector never ran"
            time.sleep(0.05)
        stats = db.stats()["gc"]
        assert stats["versions_removed"] == 4 and stats["last_run"] is not None
        assert values(db.kv, "k") == [4]


# -- validation, equality, stored form --------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: KeepLast(0),
        lambda: KeepLast(-1),
        lambda: KeepLast(1.5),
        lambda: KeepLast(True),
        lambda: KeepLast("3"),
        lambda: KeepFor(-1),
        lambda: KeepFor(float("nan")),
        lambda: KeepFor(float("inf")),
        lambda: KeepFor("60"),
        lambda: KeepFor(None),
        lambda: Composite("keep"),
        lambda: Composite(KeepAll(), {"x": 3}),
        lambda: Composite(KeepAll(), {1: KeepAll()}),
        lambda: Composite(Composite(KeepAll())),
        lambda: Composite(KeepAll(), {"x": Composite(KeepAll())}),
    ],
)
def test_policy_validation(make) -> None:
    with pytest.raises(StrataUsageError):
        make()


def test_set_retention_needs_a_policy(db: strata.Database) -> None:
    with pytest.raises(StrataUsageError):
        db.set_retention("keep_last")  # type: ignore[arg-type]
    assert db.retention == KeepAll()


def test_equality_hash_and_repr() -> None:
    assert KeepAll() == KeepAll() and hash(KeepAll()) == hash(KeepAll())
    assert KeepLast(2) == KeepLast(2) and KeepLast(2) != KeepLast(3)
    assert KeepFor(60) == KeepFor(60.0) and hash(KeepFor(60)) == hash(KeepFor(60.0))
    assert KeepLast(1) != KeepAll() and KeepLast(1) != "KeepLast(1)"
    a = Composite(KeepAll(), {"x": KeepLast(1), "y": KeepFor(5)})
    b = Composite(KeepAll(), {"y": KeepFor(5), "x": KeepLast(1)})
    assert a == b and hash(a) == hash(b)
    assert a != Composite(KeepAll(), {"x": KeepLast(2), "y": KeepFor(5)})
    assert len({KeepLast(1), KeepLast(1), KeepAll()}) == 2
    assert repr(KeepAll()) == "KeepAll()"
    assert repr(KeepLast(3)) == "KeepLast(3)"
    assert repr(KeepFor(60)) == "KeepFor(60.0)"
    assert (
        repr(Composite(KeepAll(), {"x": KeepLast(1)})) == "Composite(KeepAll(), {'x': KeepLast(1)})"
    )
    for policy in (KeepAll(), KeepLast(3), KeepFor(1.5), a):
        assert eval(repr(policy)) == policy


def test_stored_form_round_trips_and_rejects_garbage() -> None:
    for policy in (
        KeepAll(),
        KeepLast(7),
        KeepFor(0.25),
        Composite(KeepFor(3600), {"logs": KeepLast(2)}),
    ):
        assert decode_policy(encode_policy(policy)) == policy
    assert encode_policy(KeepLast(7)) == b'{"n":7,"policy":"keep_last"}'
    for bad in (
        b"not json",
        b"[]",
        b'{"policy":"keep_some"}',
        b'{"policy":"keep_last","n":0}',
        b'{"policy":"composite","default":{"policy":"keep_all"},"overrides":[]}',
        b"\xff",
    ):
        with pytest.raises(StrataUsageError):
            decode_policy(bad)
    with pytest.raises(StrataUsageError):
        policy_from_json("keep_all")
