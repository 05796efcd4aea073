"""Scans read a sorted view of the newest values (``_order.KeyOrder``) and the version
chains only for keys written since: whatever the view's age, a scan must equal the model."""

from __future__ import annotations

import random
import threading

import pytest

import strata
from strata import KeepLast, _order


def model_scan(
    model: dict[object, object],
    kind: type,
    lo: object = None,
    hi: object = None,
    reverse: bool = False,
    limit: int | None = None,
) -> list[tuple[object, object]]:
    rows = sorted(
        (k, v)
        for k, v in model.items()
        if type(k) is kind and (lo is None or k >= lo) and (hi is None or k < hi)
    )
    if reverse:
        rows.reverse()
    return rows if limit is None else rows[:limit]


@pytest.mark.parametrize("rebuild_min", [0, 8, 4096])
@pytest.mark.parametrize("seed", range(4))
def test_scans_equal_the_model_through_writes_deletes_gc_and_rebuilds(
    monkeypatch: pytest.MonkeyPatch, rebuild_min: int, seed: int
) -> None:
    monkeypatch.setattr(_order, "REBUILD_MIN", rebuild_min)
    rnd = random.Random(seed)
    model: dict[object, object] = {}
    with strata.open_memory() as db:
        db.set_retention(KeepLast(1))
        kv = db.kv
        for step in range(600):
            key: object = (
                f"k{rnd.randrange(60):02}" if rnd.random() < 0.5 else b"b%02d" % rnd.randrange(60)
            )
            action = rnd.random()
            if action < 0.45:
                value = rnd.choice(
                    [b"x" * rnd.randrange(300), rnd.randrange(100), None, "s", [step], {"n": step}]
                )
                kv.put(key, value)
                model[key] = value
            elif action < 0.65:
                assert kv.delete(key) == (key in model)
                model.pop(key, None)
            elif action < 0.7:
                db.gc()  # sweeps deleted keys: they leave the view's key list
            else:
                kind = type(key)
                bounds = sorted(
                    f"k{rnd.randrange(60):02}" if kind is str else b"b%02d" % rnd.randrange(60)
                    for _ in range(2)
                )
                lo, hi = bounds if rnd.random() < 0.7 else (None, None)
                reverse = rnd.random() < 0.3
                limit = rnd.choice([None, 1, 5, 200])
                got = list(
                    kv.scan(start=lo, end=hi, reverse=reverse, limit=limit)
                    if lo is not None
                    else kv.scan(prefix="k" if kind is str else b"b", reverse=reverse, limit=limit)
                )
                assert got == model_scan(model, kind, lo, hi, reverse, limit), step
                assert kv.count() == len(model)
        assert db.verify()["ok"]


def test_a_scan_at_a_snapshot_older_than_the_view_reads_the_chains() -> None:
    with strata.open_memory() as db:
        db.kv.put_many({f"k{i}": i for i in range(50)})
        with db.transaction() as old:
            db.kv.put_many({f"k{i}": -i for i in range(50)})
            assert [v for _, v in db.kv.scan()] == [-i for i in sorted(range(50), key=str)]
            assert [v for _, v in old.kv.scan()] == sorted(range(50), key=str)


def test_scans_racing_writers_see_only_committed_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer keeps every key of a group equal; concurrent scans (rebuilding the view
    as they go) must never see a group half old, half new."""
    monkeypatch.setattr(_order, "REBUILD_MIN", 16)
    with strata.open_memory() as db:
        db.kv.put_many({f"g{i:03}": 0 for i in range(200)})
        stop = threading.Event()
        errors: list[str] = []

        def writer() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                db.kv.put_many({f"g{i:03}": n for i in range(200)})
                db.kv.put(f"new{n:05}", n)  # keys created during scans

        def scanner() -> None:
            for _ in range(150):
                values = {v for _, v in db.kv.scan(prefix="g")}
                if len(values) != 1:
                    errors.append(f"torn scan: {sorted(values)[:5]}")
                    return

        threads = [threading.Thread(target=writer)] + [
            threading.Thread(target=scanner) for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join()
        stop.set()
        threads[0].join()
        assert not errors
        assert db.verify()["ok"]


def test_a_view_built_at_an_older_version_sends_newer_keys_to_their_chains() -> None:
    """A rebuild as of version v (a reader's snapshot) while commits past v are already
    applied must not let a later reader take the view's older value."""
    with strata.open_memory() as db:
        v1 = db.kv.put("a", "old")
        db.kv.put("b", "only")
        db.kv.put("a", "new")
        versions = db._engine._versions
        versions.order.rebuild(versions.chains, v1)
        assert versions.order.view.version == v1 and not versions.order.needs_rebuild()
        assert list(db.kv.scan()) == [("a", "new"), ("b", "only")]
        assert list(db.kv.scan(reverse=True)) == [("b", "only"), ("a", "new")]


def test_scanned_lists_and_dicts_are_fresh_copies_and_small_values_shared_safely() -> None:
    """The view keeps small immutable values decoded and shares them; lists and dicts are
    decoded for every read, so a caller mutating one changes nothing stored."""
    with strata.open_memory() as db:
        db.kv.put_many({"a": {"tags": ["x"]}, "b": b"v" * 10, "c": b"w" * 1000, "d": [1]})
        first = dict(db.kv.scan())
        first["a"]["tags"].append("mutated")
        first["d"].append(2)
        again = dict(db.kv.scan())
        assert again == {"a": {"tags": ["x"]}, "b": b"v" * 10, "c": b"w" * 1000, "d": [1]}
        assert again["a"] is not first["a"]


@pytest.mark.parametrize("reverse", [False, True])
def test_scans_across_clean_and_dirty_blocks_of_the_view(reverse: bool) -> None:
    """The view takes blocks of 64 rows with no tombstone and no undecoded value in one
    step; blocks holding either are read row by row. Every range must equal the model."""
    rnd = random.Random(7)
    with strata.open_memory() as db:
        model = {f"k{i:04}": (b"v%d" % i if i % 97 else {"n": i}) for i in range(1000)}
        db.kv.put_many(model)
        for i in range(0, 1000, 131):  # tombstones in some blocks
            db.kv.delete(f"k{i:04}")
            model.pop(f"k{i:04}")
        versions = db._engine._versions
        versions.order.rebuild(versions.chains, db.version)
        clean = versions.order.view.clean
        assert 0 < clean.count(0) < len(clean)  # both kinds of block exist
        for _ in range(200):
            a, b = sorted(rnd.sample(range(1001), 2))
            lo, hi = f"k{a:04}", f"k{b:04}"
            limit = rnd.choice([None, 1, 63, 64, 65, 100, 500])
            got = list(db.kv.scan(start=lo, end=hi, reverse=reverse, limit=limit))
            assert got == model_scan(model, str, lo, hi, reverse, limit)


@pytest.mark.parametrize("reverse", [False, True])
def test_keys_created_since_the_view_join_only_the_chunks_they_fall_in(
    monkeypatch: pytest.MonkeyPatch, reverse: bool
) -> None:
    """Keys created after the view was built are merged into the 128-row chunks whose key
    interval holds them; the other chunks keep the view's fast path. Every range, with or
    without an end, a limit or rows on either side, must equal the model."""
    monkeypatch.setattr(_order, "REBUILD_MIN", 10**9)  # keep the first view for the test
    rnd = random.Random(11)
    with strata.open_memory() as db:
        model: dict[object, object] = {f"k{i:05}": b"v%d" % i for i in range(0, 4000, 2)}
        db.kv.put_many(model)
        versions = db._engine._versions
        assert len(list(db.kv.scan())) == 2000  # builds the view
        view = versions.order.view
        created = [i for i in range(1, 4000, 2) if i < 9 or 900 < i < 1000 or i % 173 == 0]
        created += list(range(4000, 4050))  # past the last view key, like appended rows
        for i in created:
            db.kv.put(f"k{i:05}", b"n%d" % i)
            model[f"k{i:05}"] = b"n%d" % i
        for i in created[::5] + list(range(0, 4000, 250)):  # fresh and view keys deleted
            if db.kv.delete(f"k{i:05}"):
                model.pop(f"k{i:05}")
        order = versions.order
        assert order.view is view and len(order.incoming) + len(order.fresh) == len(created)
        for _ in range(300):
            a, b = sorted(rnd.sample(range(4060), 2))
            lo = f"k{a:05}"
            hi = f"k{b:05}" if rnd.random() < 0.6 else None
            limit = rnd.choice([None, 1, 7, 100, 128, 129, 1000])
            got = list(db.kv.scan(start=lo, end=hi, reverse=reverse, limit=limit))
            assert got == model_scan(model, str, lo, hi, reverse, limit), (lo, hi, limit)
        assert list(db.kv.scan(reverse=reverse)) == model_scan(model, str, reverse=reverse)
        assert db.kv.count() == len(model)
