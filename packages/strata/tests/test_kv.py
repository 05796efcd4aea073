"""The KV primitive (``db.kv``, ``db.keyspace(name)``): every method, its edge cases and
its errors, on a file-backed database and (where it matters) in cache mode."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import strata
from strata import (
    DatabaseClosedError,
    KeepLast,
    KeyTooLargeError,
    ReadOnlyError,
    StrataUsageError,
    ValueTooLargeError,
    ValueTypeError,
)


@pytest.fixture(params=["standard", "cache"])
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[strata.Database]:
    database = strata.open(tmp_path / "db") if request.param == "standard" else strata.open_memory()
    yield database
    database.close()


@pytest.fixture
def disk_db(tmp_path) -> Iterator[strata.Database]:
    database = strata.open(tmp_path / "db")
    yield database
    database.close()


# -- put / get / exists -----------------------------------------------------------------


def test_put_returns_increasing_versions(db: strata.Database) -> None:
    versions = [db.kv.put(f"k{i}", i) for i in range(5)]
    assert versions == sorted(set(versions))
    assert versions[0] >= 1
    assert db.version == versions[-1]
    assert db.kv.put("k0", "again") == versions[-1] + 1


def test_get_default_and_exists(db: strata.Database) -> None:
    assert db.kv.get("missing") is None
    assert db.kv.get("missing", "fallback") == "fallback"
    assert db.kv.exists("missing") is False
    db.kv.put("k", None)  # a stored None is a value, not absence
    assert db.kv.exists("k") is True
    assert db.kv.get("k", "fallback") is None
    db.kv.delete("k")
    assert db.kv.exists("k") is False
    assert db.kv.get("k", "fallback") == "fallback"


def test_get_many_keeps_order_and_default(db: strata.Database) -> None:
    db.kv.put_many({"a": 1, "c": 3})
    assert db.kv.get_many(["c", "missing", "a", "c"]) == [3, None, 1, 3]
    assert db.kv.get_many(["missing"], default=0) == [0]
    assert db.kv.get_many([]) == []


def test_put_many_is_atomic(db: strata.Database) -> None:
    db.kv.put("a", "old")
    before = db.version
    with pytest.raises(ValueTypeError):
        db.kv.put_many([("a", "new"), ("b", object()), ("c", 3)])
    assert db.version == before
    assert db.kv.get("a") == "old"
    assert not db.kv.exists("b") and not db.kv.exists("c")


def test_put_many_one_version_later_duplicate_wins(db: strata.Database) -> None:
    version = db.kv.put_many([("a", 1), ("b", 2), ("a", 3)])
    assert db.kv.get("a") == 3 and db.kv.get("b") == 2
    assert [h.version for h in db.kv.history("a")] == [version]
    assert db.kv.history("b")[0].version == version
    assert db.kv.put_many({}) == version  # nothing to write: no commit


def test_delete_returns_whether_it_existed(db: strata.Database) -> None:
    assert db.kv.delete("k") is False
    version = db.version
    db.kv.put("k", 1)
    assert db.kv.delete("k") is True
    assert db.kv.delete("k") is False
    assert db.version == version + 2  # the failed deletes committed nothing


def test_delete_many_counts_existing(db: strata.Database) -> None:
    db.kv.put_many({"a": 1, "b": 2, "c": 3})
    assert db.kv.delete_many(["a", "b", "x", "a"]) == 2
    assert db.kv.get_many(["a", "b", "c"]) == [None, None, 3]
    assert db.kv.delete_many(["a", "x"]) == 0


# -- cas --------------------------------------------------------------------------------


def test_cas_semantics(db: strata.Database) -> None:
    v1 = db.kv.cas("k", None, "first")  # None: must not exist
    assert v1 is not None and db.kv.get("k") == "first"
    assert db.kv.cas("k", None, "again") is None
    assert db.kv.cas("k", v1 + 100, "wrong") is None
    v2 = db.kv.cas("k", v1, "second")
    assert v2 == v1 + 1 and db.kv.get("k") == "second"
    assert db.kv.cas("k", v1, "stale") is None
    assert db.kv.get("k") == "second"


def test_cas_deleted_key_counts_as_missing(db: strata.Database) -> None:
    v1 = db.kv.put("k", 1)
    v2_ = db.kv.delete("k")
    assert v2_ is True
    tomb = db.kv.history("k")[0].version
    assert db.kv.cas("k", tomb, "x") is None  # the tombstone's version is no current version
    assert db.kv.cas("k", v1, "x") is None
    assert db.kv.cas("k", None, "back") is not None
    assert db.kv.get("k") == "back"


def test_cas_rejects_bad_expected(db: strata.Database) -> None:
    with pytest.raises(StrataUsageError):
        db.kv.cas("k", "1", "v")  # type: ignore[arg-type]


# -- history ----------------------------------------------------------------------------


def test_history_newest_first_with_timestamps_and_deleted(db: strata.Database) -> None:
    before = time.time()
    v1 = db.kv.put("k", "one")
    v2 = db.kv.put("k", {"two": [2]})
    db.kv.delete("k")
    v4 = db.kv.put("k", "four")
    after = time.time()
    history = db.kv.history("k")
    assert [h.version for h in history] == [v4, v4 - 1, v2, v1]
    assert [h.deleted for h in history] == [False, True, False, False]
    assert [h.value for h in history] == ["four", None, {"two": [2]}, "one"]
    stamps = [h.timestamp for h in history]
    assert stamps == sorted(stamps, reverse=True)
    assert before - 1 <= stamps[-1] and stamps[0] <= after + 1
    assert db.kv.history("k", limit=2) == history[:2]
    assert db.kv.history("k", limit=0) == []
    assert db.kv.history("missing") == []
    with pytest.raises(StrataUsageError):
        db.kv.history("k", limit=-1)


# -- scan -------------------------------------------------------------------------------


@pytest.fixture
def scanned(db: strata.Database) -> strata.Database:
    db.kv.put_many(
        [("b", 2), ("a", 1), ("ab", 12), (b"b", "B"), (b"a", "A"), ("c", 3), ("\u00e9", "e-acute")]
    )
    db.kv.put("gone", 0)
    db.kv.delete("gone")
    return db


def test_scan_orders_bytes_before_str(scanned: strata.Database) -> None:
    assert [k for k, _ in scanned.kv.scan()] == [b"a", b"b", "a", "ab", "b", "c", "\u00e9"]
    assert [k for k, _ in scanned.kv.scan(reverse=True)] == [
        "\u00e9",
        "c",
        "b",
        "ab",
        "a",
        b"b",
        b"a",
    ]
    assert dict(scanned.kv.scan())["ab"] == 12


def test_scan_bounds_select_one_key_type(scanned: strata.Database) -> None:
    kv = scanned.kv
    assert list(kv.scan(prefix="a")) == [("a", 1), ("ab", 12)]
    assert list(kv.scan(prefix=b"a")) == [(b"a", "A")]
    assert [k for k, _ in kv.scan(start="ab")] == ["ab", "b", "c", "\u00e9"]
    assert [k for k, _ in kv.scan(end="b")] == ["a", "ab"]
    assert [k for k, _ in kv.scan(start="ab", end="c")] == ["ab", "b"]
    assert [k for k, _ in kv.scan(start=b"", end=b"b")] == [b"a"]
    assert [k for k, _ in kv.scan(start="c", end="a")] == []  # inverted: empty
    assert [k for k, _ in kv.scan(prefix="a", start="ab", reverse=True)] == ["ab"]
    assert [k for k, _ in kv.scan(limit=3)] == [b"a", b"b", "a"]
    assert [k for k, _ in kv.scan(reverse=True, limit=2)] == ["\u00e9", "c"]
    assert list(kv.scan(limit=0)) == []
    assert list(kv.scan(prefix="gone")) == []  # deleted keys are not listed


def test_scan_mixed_bound_types_raise(scanned: strata.Database) -> None:
    with pytest.raises(StrataUsageError):
        scanned.kv.scan(prefix="a", start=b"a")
    with pytest.raises(StrataUsageError):
        scanned.kv.scan(start="a", end=b"z")
    with pytest.raises(StrataUsageError):
        scanned.kv.scan(limit=-1)
    with pytest.raises(ValueTypeError):
        scanned.kv.scan(prefix=3)  # type: ignore[arg-type]


def test_count(scanned: strata.Database) -> None:
    assert scanned.kv.count() == 7
    assert scanned.kv.count("a") == 2
    assert scanned.kv.count(b"") == 2
    assert scanned.kv.count("zz") == 0


# -- as_of ------------------------------------------------------------------------------


def test_as_of_version_timestamp_and_datetime(db: strata.Database) -> None:
    v1 = db.kv.put("k", "one")
    t1 = db.kv.history("k")[0].timestamp
    time.sleep(0.002)  # distinct commit timestamps, not synchronisation
    v2 = db.kv.put("k", "two")
    t2 = db.kv.history("k")[0].timestamp
    assert t2 > t1
    kv = db.kv
    assert kv.get("k", as_of=v1 - 1) is None
    assert kv.get("k", as_of=v1) == "one"
    assert kv.get("k", as_of=v2) == "two"
    assert kv.get("k", as_of=t1) == "one"
    assert kv.get("k", as_of=(t1 + t2) / 2) == "one"
    assert kv.get("k", as_of=t2) == "two"
    for version in kv.history("k"):  # a version's own timestamp finds it
        assert kv.get("k", as_of=version.timestamp) == version.value
    assert kv.get("k", as_of=t1 - 1.0) is None
    assert kv.get("k", as_of=dt.datetime.fromtimestamp(t1 - 1.0, tz=dt.timezone.utc)) is None
    assert kv.get("k", as_of=dt.datetime.fromtimestamp(t2 + 1.0, tz=dt.timezone.utc)) == "two"
    assert kv.get("k", as_of=dt.datetime.fromtimestamp(t2 + 1.0)) == "two"  # naive: local
    assert kv.exists("k", as_of=v1) and not kv.exists("k", as_of=0)
    assert kv.get_many(["k", "x"], as_of=v1) == ["one", None]
    assert list(kv.scan(as_of=v1)) == [("k", "one")]
    assert list(kv.scan(as_of=t2)) == [("k", "two")]


def test_as_of_future_sees_latest(db: strata.Database) -> None:
    v = db.kv.put("k", 1)
    assert db.kv.get("k", as_of=v + 1000) == 1
    assert db.kv.get("k", as_of=time.time() + 3600.0) == 1
    assert list(db.kv.scan(as_of=v + 1000)) == [("k", 1)]


def test_as_of_after_delete(db: strata.Database) -> None:
    v1 = db.kv.put("k", 1)
    db.kv.delete("k")
    assert db.kv.get("k", as_of=v1) == 1
    assert db.kv.get("k") is None
    assert list(db.kv.scan(as_of=v1)) == [("k", 1)]
    assert list(db.kv.scan()) == []


@pytest.mark.parametrize("bad", [-1, -0.5, float("inf"), float("nan"), "3", [1], 1 + 0j])
def test_as_of_rejects_bad_values(db: strata.Database, bad: object) -> None:
    db.kv.put("k", 1)
    with pytest.raises(StrataUsageError):
        db.kv.get("k", as_of=bad)


# -- keyspaces --------------------------------------------------------------------------


def test_keyspaces_are_isolated(db: strata.Database) -> None:
    one, two = db.keyspace("one"), db.keyspace("two")
    assert db.keyspace("one") is one
    one.put("k", 1)
    two.put("k", 2)
    db.kv.put("k", 0)
    assert (one.get("k"), two.get("k"), db.kv.get("k")) == (1, 2, 0)
    assert list(one.scan()) == [("k", 1)]
    assert one.count() == 1 and two.count() == 1
    two.delete("k")
    assert one.get("k") == 1 and not two.exists("k")
    assert db.keyspace("default") is db.kv


def test_keyspace_name_limits(db: strata.Database) -> None:
    db.keyspace("x" * 64).put("k", 1)
    with pytest.raises(KeyTooLargeError):
        db.keyspace("x" * 65)
    with pytest.raises(StrataUsageError):
        db.keyspace("")


# -- values and keys --------------------------------------------------------------------

ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    1.5,
    float("inf"),
    "",
    "text \u00e9\u4e2d",
    b"",
    b"\x00\xff",
    [],
    [1, [2, [3]]],
    {},
    {"a": {"b": [None, b"x", 1.0]}},
    {"list": [{"deep": [[[{"x": "y"}]]]}]},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_values_round_trip(disk_db: strata.Database, value: object, tmp_path) -> None:
    disk_db.kv.put("k", value)
    got = disk_db.kv.get("k")
    assert got == value and type(got) is type(value)
    disk_db.close()
    with strata.open(tmp_path / "db") as again:
        assert again.kv.get("k") == value


def test_returned_values_are_fresh_copies(db: strata.Database) -> None:
    db.kv.put("k", {"a": [1]})
    got = db.kv.get("k")
    got["a"].append(2)
    assert db.kv.get("k") == {"a": [1]}


@pytest.mark.parametrize(
    "value, path",
    [
        (object(), "$"),
        ({"a": [1, 2, {3}]}, '$["a"][2]'),
        ([1, (2, 3)], "$[1]"),
        ({1: "int key"}, "$"),
        (2**64, "$"),
    ],
)
def test_bad_value_names_its_path(db: strata.Database, value: object, path: str) -> None:
    with pytest.raises(ValueTypeError) as info:
        db.kv.put("k", value)
    assert isinstance(info.value, TypeError)
    assert info.value.path == path
    assert not db.kv.exists("k")


def test_bad_key_types(db: strata.Database) -> None:
    for key in (1, None, ("a",)):
        with pytest.raises(ValueTypeError):
            db.kv.put(key, 1)  # type: ignore[arg-type]
        with pytest.raises(ValueTypeError):
            db.kv.get(key)  # type: ignore[arg-type]


def test_key_size_limit(db: strata.Database) -> None:
    db.kv.put("k" * 512, 1)
    db.kv.put(b"k" * 512, 1)
    assert db.kv.get("k" * 512) == 1
    with pytest.raises(KeyTooLargeError):
        db.kv.put("k" * 513, 1)
    with pytest.raises(KeyTooLargeError):
        db.kv.put("\u00e9" * 257, 1)  # 514 bytes of UTF-8
    with pytest.raises(KeyTooLargeError):
        db.kv.get(b"k" * 513)


def test_value_size_limit(db: strata.Database) -> None:
    with pytest.raises(ValueTooLargeError):
        db.kv.put("k", b"x" * (16 * 1024 * 1024 + 1))
    assert not db.kv.exists("k")


# -- lifetime and modes -----------------------------------------------------------------


def test_use_after_close(db: strata.Database) -> None:
    db.kv.put("k", 1)
    kv = db.kv
    db.close()
    db.close()  # idempotent
    calls = [
        lambda: kv.get("k"),
        lambda: kv.put("k", 2),
        lambda: kv.delete("k"),
        lambda: kv.exists("k"),
        lambda: list(kv.scan()),
        kv.count,
        lambda: kv.history("k"),
        lambda: kv.put_many({"a": 1}),
        lambda: kv.get_many(["k"]),
        lambda: kv.delete_many(["k"]),
        lambda: kv.cas("k", None, 1),
        db.stats,
        db.verify,
        db.gc,
    ]
    for call in calls:
        with pytest.raises(DatabaseClosedError):
            call()


def test_read_only_database_refuses_writes(tmp_path) -> None:
    with strata.open(tmp_path / "db") as db:
        v = db.kv.put("k", 1)
    with strata.open(tmp_path / "db", read_only=True) as ro:
        assert ro.read_only and ro.kv.get("k") == 1 and ro.version == v
        for call in (
            lambda: ro.kv.put("k", 2),
            lambda: ro.kv.delete("k"),
            lambda: ro.kv.put_many({"a": 1}),
            lambda: ro.kv.cas("k", v, 3),
            lambda: ro.kv.delete_many(["k"]),
            lambda: ro.set_retention(KeepLast(1)),
        ):
            with pytest.raises(ReadOnlyError):
                call()
        assert ro.kv.get("k") == 1


def test_read_only_open_of_nothing(tmp_path) -> None:
    with pytest.raises(StrataUsageError):
        strata.open(tmp_path / "none", read_only=True)


# -- stats, verify, compact -------------------------------------------------------------


def test_stats_keys_and_figures(disk_db: strata.Database) -> None:
    disk_db.kv.put_many({"a": 1, "b": 2})
    disk_db.kv.put("a", 3)
    disk_db.kv.delete("b")
    stats = disk_db.stats()
    for key in (
        "durability",
        "path",
        "read_only",
        "version",
        "keys",
        "versions",
        "open_snapshots",
        "retention",
        "transactions",
        "gc",
        "bytes",
        "pages",
        "wal",
        "checkpoint",
        "recovery",
    ):
        assert key in stats, key
    assert stats["durability"] == "standard" and stats["version"] == disk_db.version
    assert stats["keys"] == 2 and stats["versions"] == 4
    assert stats["transactions"]["commits"] == 3
    assert stats["open_snapshots"] == 0
    assert stats["retention"] == "KeepAll()"
    assert stats["wal"]["bytes_since_checkpoint"] > 0
    assert 0.0 <= stats["pages"]["cache_hit_rate"] <= 1.0
    assert stats["bytes"]["page_file"] > 0
    assert disk_db.checkpoint() is True
    after = disk_db.stats()
    assert after["checkpoint"]["version"] == disk_db.version
    assert after["checkpoint"]["count"] == stats["checkpoint"]["count"] + 1
    assert after["wal"]["bytes_since_checkpoint"] == 0
    assert disk_db.checkpoint() is False  # nothing new


def test_stats_in_cache_mode() -> None:
    with strata.open_memory() as db:
        db.kv.put("a", 1)
        stats = db.stats()
        assert stats["durability"] == "cache" and stats["path"] is None
        assert stats["keys"] == 1 and stats["versions"] == 1
        assert stats["bytes"] == {"page_file": 0, "wal": 0}
        assert db.checkpoint() is False


def test_verify_ok(db: strata.Database) -> None:
    db.kv.put_many({f"k{i}": i for i in range(50)})
    db.kv.delete("k3")
    report = db.verify()
    assert report["ok"] is True and report["errors"] == []
    assert report["keys"] == 50
    if db.durability != "cache":
        db.checkpoint()
        report = db.verify()
        assert report["ok"] and report["checked_versions"] == 51


def test_compact_reduces_versions_with_keep_last(disk_db: strata.Database) -> None:
    for i in range(10):
        disk_db.kv.put_many({f"k{j}": i for j in range(20)})
    assert disk_db.stats()["versions"] == 200
    disk_db.set_retention(KeepLast(2))
    figures = disk_db.compact()
    assert figures["versions_removed"] == 160
    assert figures["keys_swept"] == 0
    assert set(figures["bytes_before"]) == {"page_file", "wal"}
    assert figures["bytes_after"]["page_file"] > 0
    assert disk_db.stats()["versions"] == 40
    assert [h.value for h in disk_db.kv.history("k0")] == [9, 8]
    assert disk_db.verify()["ok"]


def test_compact_gives_the_space_of_deleted_data_back(tmp_path: Path) -> None:
    path = tmp_path / "db"
    big = "x" * 400
    with strata.open(path) as db:
        db.kv.put_many({f"k{i:05d}": big for i in range(6000)})
        db.checkpoint()
        db.set_retention(KeepLast(1))
        db.kv.delete_many([f"k{i:05d}" for i in range(0, 6000) if i % 10])
        figures = db.compact()
        assert figures["page_bytes_released"] > 0
        before, after = figures["bytes_before"]["page_file"], figures["bytes_after"]["page_file"]
        assert after < before / 3, (before, after)
        assert figures["bytes_after"]["wal"] < 1024  # one segment header: the WAL is cut
        assert db.kv.count() == 600
        assert db.verify()["ok"]
    with strata.open(path) as db:
        assert db.kv.count() == 600
        assert db.kv.get("k00010") == big and db.kv.get("k00011") is None
        assert db.verify()["ok"]


def test_as_of_each_versions_own_timestamp(db: strata.Database) -> None:
    """``Version.timestamp`` is a float that cannot hold every ns; reading as of it must
    still find that version (truncating it to ns used to miss about half of them)."""
    for i in range(200):
        db.kv.put("k", i)
    for version in db.kv.history("k"):
        assert db.kv.get("k", as_of=version.timestamp) == version.value
        assert db.kv.get("k", as_of=version.version) == version.value
