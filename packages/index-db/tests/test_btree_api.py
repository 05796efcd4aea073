"""The B+tree's surface: point operations, scans, bounds, errors, overflow values, bulk
load, underflow, reopening, iterators under change and threads."""

from __future__ import annotations

import gc
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _btree_helpers import check_equal

from index_db import (
    BTree,
    CorruptIndexError,
    IndexUsageError,
    IteratorInvalidatedError,
    KeyTooLargeError,
    ValueTooLargeError,
)
from index_db.btree import _layout
from index_db.btree._node import decode_leaf, encode_leaf
from page_db import MemoryFile, PageStore


@pytest.fixture
def store() -> PageStore:
    return PageStore.memory(pool_pages=256)


@pytest.fixture
def tree(store: PageStore) -> BTree:
    return BTree.create(store)


def fill(tree: BTree, n: int, *, seed: int = 1, size: int = 40) -> dict[bytes, bytes]:
    rnd = random.Random(seed)
    model = {}
    for _ in range(n):
        key = rnd.randbytes(rnd.randint(1, 16))
        value = rnd.randbytes(rnd.randint(0, size))
        tree.put(key, value)
        model[key] = value
    return model


def test_empty_tree(tree: BTree) -> None:
    assert len(tree) == 0
    assert tree.get(b"a") is None
    assert tree.get(b"a", b"dflt") == b"dflt"
    assert list(tree.range()) == []
    assert list(tree.range(reverse=True)) == []
    assert tree.delete(b"a") is False
    assert tree.verify()["keys"] == 0


def test_put_get_replace_delete(tree: BTree) -> None:
    tree.put(b"k", b"v1")
    assert tree.get(b"k") == b"v1"
    tree.put(b"k", b"v2")  # same length: replaced in place
    assert tree.get(b"k") == b"v2"
    tree.put(b"k", b"longer value")
    assert tree.get(b"k") == b"longer value"
    assert len(tree) == 1
    assert b"k" in tree and b"x" not in tree
    assert tree.delete(b"k") is True
    assert tree.delete(b"k") is False
    assert len(tree) == 0
    tree.put(b"", b"")  # the empty key and value are ordinary entries
    assert tree.get(b"") == b""
    tree.verify()


def test_bytes_like_arguments_are_copied(tree: BTree) -> None:
    key = bytearray(b"key")
    tree.put(key, memoryview(b"value"))
    key[0] = ord("X")
    assert tree.get(b"key") == b"value"
    assert tree.get(bytearray(b"key")) == b"value"
    with pytest.raises(TypeError):
        tree.put("text", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tree.put(b"k", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tree.get(5)  # type: ignore[arg-type]


def test_many_random_operations_match_a_dict(tree: BTree) -> None:
    rnd = random.Random(7)
    model: dict[bytes, bytes] = {}
    for step in range(6000):
        key = rnd.randbytes(rnd.randint(1, 10))
        if rnd.random() < 0.6:
            value = rnd.randbytes(rnd.choice([0, 8, 100, 700, 3000]))
            tree.put(key, value)
            model[key] = value
        else:
            victim = rnd.choice(sorted(model)) if model and rnd.random() < 0.7 else key
            assert tree.delete(victim) is (victim in model)
            model.pop(victim, None)
        if step % 1000 == 999:
            tree.verify()
    tree.verify()
    check_equal(tree, model)


def test_range_bounds_and_direction(tree: BTree) -> None:
    for n in range(100):
        tree.put(b"%03d" % n, b"v%d" % n)
    keys = [b"%03d" % n for n in range(100)]

    def got(*args: object, **kw: object) -> list[bytes]:
        return [k for k, _ in tree.range(*args, **kw)]  # type: ignore[arg-type]

    assert got(b"010", b"020") == keys[10:20]
    assert got(b"010", b"020", hi_inclusive=True) == keys[10:21]
    assert got(b"010", b"020", lo_inclusive=False) == keys[11:20]
    assert got(b"010", b"020", reverse=True) == keys[10:20][::-1]
    assert (
        got(b"010", b"020", reverse=True, lo_inclusive=False, hi_inclusive=True)
        == (keys[11:21][::-1])
    )
    assert got(b"0105", b"0155") == keys[11:16]  # bounds between keys
    assert got(None, b"003") == keys[:3]
    assert got(b"097") == keys[97:]
    assert got(b"050", b"040") == []
    assert got(b"050", b"050") == []
    assert got(b"050", b"050", hi_inclusive=True) == [b"050"]


def test_prefix_and_seek(tree: BTree) -> None:
    for key in [b"a", b"ab", b"abc", b"abd", b"ac", b"b", b"\xff", b"\xff\xff", b"\xff\x00"]:
        tree.put(key, key)
    assert [k for k, _ in tree.prefix(b"ab")] == [b"ab", b"abc", b"abd"]
    assert [k for k, _ in tree.prefix(b"ab", reverse=True)] == [b"abd", b"abc", b"ab"]
    assert [k for k, _ in tree.prefix(b"\xff")] == [b"\xff", b"\xff\x00", b"\xff\xff"]
    assert len(list(tree.prefix(b""))) == 9
    assert [k for k, _ in tree.seek(b"abca")] == [
        b"abd",
        b"ac",
        b"b",
        b"\xff",
        b"\xff\x00",
        b"\xff\xff",
    ]
    assert [k for k, _ in tree.seek(b"abca", reverse=True)] == [b"abc", b"ab", b"a"]
    assert next(tree.seek(b"b"))[0] == b"b"


def test_max_key_size_is_enforced(store: PageStore, tree: BTree) -> None:
    limit = tree.max_key_size
    assert limit == (4096 - 32 - 16) // 4 - 12
    tree.put(b"k" * limit, b"v" * 5000)
    assert tree.get(b"k" * limit) == b"v" * 5000
    with pytest.raises(KeyTooLargeError):
        tree.put(b"k" * (limit + 1), b"v")
    with pytest.raises(KeyTooLargeError):
        BTree.create(store).bulk_load([(b"k" * (limit + 1), b"v")])
    tree.verify(other_pages=1)


def test_value_size_limit(tree: BTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_layout, "MAX_VALUE_SIZE", 10)
    with pytest.raises(ValueTooLargeError):
        tree.put(b"k", b"x" * 11)
    assert len(tree) == 0


def test_sixteen_mib_value_in_overflow_pages(store: PageStore, tree: BTree) -> None:
    big = random.Random(3).randbytes(16 << 20)
    tree.put(b"big", big)
    tree.put(b"small", b"s")
    stats = tree.verify()
    assert stats["overflow_pages"] == -(-len(big) // (store.payload_size - 12))
    assert tree.get(b"big") == big
    assert dict(tree.range()) == {b"big": big, b"small": b"s"}
    tree.put(b"big", b"now small")  # the chain is freed
    assert tree.verify()["overflow_pages"] == 0
    assert store.stats()["pages"] == tree.verify()["pages"]


def test_deleted_space_is_reused(store: PageStore, tree: BTree) -> None:
    model = fill(tree, 3000, size=200)
    grown = store.stats()["pages"]
    for key in sorted(model)[: len(model) - 20]:
        tree.delete(key)
    stats = tree.verify()
    assert stats["pages"] < grown // 10  # merges returned the pages to page-db
    assert store.stats()["pages"] == stats["pages"]
    fill(tree, 3000, seed=9, size=200)
    assert store.stats()["pages"] <= grown * 1.2  # freed ids were reused
    tree.verify()


def test_values_overwritten_smaller_merge_the_leaves_they_empty(tree: BTree) -> None:
    """An overwrite with a smaller value can take a leaf under a quarter full: it must be
    merged or refilled like a delete's leaf (verify() checks every leaf's fill)."""
    model = {b"%06d" % n: bytes([n % 251]) * 800 for n in range(400)}  # ~4 per leaf
    for key, value in model.items():
        tree.put(key, value)
    leaves = tree.verify()["leaves"]
    for n, key in enumerate(sorted(model)):
        model[key] = b"s"
        tree.put(key, b"s")
        if n % 20 == 0:
            tree.verify()
    assert tree.verify()["leaves"] < leaves // 10
    check_equal(tree, model)


def test_long_keys_build_deep_trees_and_shrink_back(tree: BTree) -> None:
    prefix = b"p" * 900
    keys = [prefix + n.to_bytes(2, "big") for n in range(400)]
    rnd = random.Random(4)
    rnd.shuffle(keys)
    for key in keys:
        tree.put(key, b"v")
    assert tree.height >= 4
    tree.verify()
    rnd.shuffle(keys)
    for n, key in enumerate(keys):
        assert tree.delete(key)
        if n % 50 == 0:
            tree.verify()
    assert tree.height == 1 and len(tree) == 0
    assert tree.verify()["pages"] == 1


def test_bulk_load_packs_leaves(store: PageStore, tree: BTree) -> None:
    items = [(b"%08d" % n, b"x" * 100) for n in range(20000)]
    assert tree.bulk_load(iter(items)) == 20000
    stats = tree.verify()
    assert stats["leaf_fill"] >= 0.9
    assert list(tree.range()) == items
    tree.put(b"%08d" % 5, b"changed")
    tree.delete(b"%08d" % 6)
    tree.verify()


def test_same_size_overwrites_land_on_their_cell_through_leaf_changes(tmp_path: Path) -> None:
    # A same-size overwrite patches the value's bytes at the offset from the leaf's cached
    # slot array; every insert, delete, split, merge and rewrite must drop that cache.
    # Checked from the pages themselves: checkpoint, reopen, compare with a model.
    rnd = random.Random(5)
    path = tmp_path / "t.pages"
    model = {b"%06d" % i: b"a" * 20 for i in range(0, 3000, 2)}
    store = PageStore.open(path, pool_pages=64)
    tree = BTree.create(store)
    tree.bulk_load(sorted(model.items()))
    live = sorted(model)
    for step in range(1, 12001):
        r = rnd.random()
        if r < 0.55 and live:
            key = rnd.choice(live)
            value = rnd.randbytes(len(model[key]))  # same size: the patch path
        elif r < 0.8 or not live:
            key, value = b"%06d" % rnd.randrange(6000), rnd.randbytes(20)
        elif r < 0.95:
            key = live.pop(rnd.randrange(len(live)))
            assert tree.delete(key)
            del model[key]
            continue
        else:
            key, value = rnd.choice(live), rnd.randbytes(rnd.choice((5, 60, 300)))
        if key not in model:
            live.append(key)
        tree.put(key, value)
        model[key] = value
        if step % 3000 == 0:
            tree.verify()
            store.checkpoint(tree.meta())
            store.close()
            store = PageStore.open(path, pool_pages=64)
            tree = BTree.open(store, store.meta)
            assert dict(tree.range()) == model
    store.close()


@pytest.mark.parametrize("fill_factor", [0.5, 0.75, 0.9])
def test_bulk_load_fill_leaves_room_for_inserts(fill_factor: float) -> None:
    items = [(b"%08d" % (2 * n), b"x" * 100) for n in range(6000)]
    trees = []
    for factor in (fill_factor, 1.0):
        store = PageStore.memory(pool_pages=1024)
        tree = BTree.create(store)
        tree.bulk_load(items, fill=factor)
        stats = tree.verify()
        assert factor - 0.07 <= stats["leaf_fill"] <= factor
        trees.append((store, tree, stats["pages"]))
    # One new key after every 40th old one: no leaf (16 to 34 entries) takes two.
    new = [b"%08d" % (2 * n + 1) for n in range(0, 6000, 40)]
    for _, tree, _ in trees:
        for key in new:
            tree.put(key, b"y" * 100)
        assert len(tree) == len(items) + len(new)
        tree.verify()
    (store, _, pages), (full_store, _, full_pages) = trees
    assert store.stats()["pages"] == pages  # room everywhere: no leaf split
    assert full_store.stats()["pages"] > full_pages + len(new) // 2  # packed: nearly all split


@pytest.mark.parametrize("bad", [0.49, 1.01, 0, float("nan"), "0.9", True, None])
def test_bulk_load_rejects_a_bad_fill(tree: BTree, bad: object) -> None:
    with pytest.raises(IndexUsageError, match="fill"):
        tree.bulk_load([(b"a", b"b")], fill=bad)  # type: ignore[arg-type]
    assert len(tree) == 0
    tree.bulk_load([(b"a", b"b")], fill=1)
    assert tree.get(b"a") == b"b"


@pytest.mark.parametrize("fixed_width", [True, False])
def test_bulk_load_writes_the_same_leaf_bytes_as_the_general_encoder(fixed_width: bool) -> None:
    # Fixed-width records take a faster cell packer; the pages must not differ.
    rnd = random.Random(3)
    keys = sorted({rnd.randbytes(12) for _ in range(9000)})
    if fixed_width:
        items = [(k, k[:4] * 20) for k in keys]
    else:  # mixed sizes, one value spilled to overflow pages, chunks with one size
        items = [(k, k * (i // 4096 % 3)) for i, k in enumerate(keys)]
        items[7000] = (keys[7000], b"x" * 3000)
    store = PageStore.memory(pool_pages=1024)
    tree = BTree.create(store)
    tree.bulk_load(items)
    tree.verify()
    assert list(tree.range()) == items
    pid, leaves = tree._core.descend(None, None, False).pid, 0
    while pid:
        with store.read(pid) as page:
            leaf = decode_leaf(page.payload, pid)
            expected = bytearray(len(page.payload))
            encode_leaf(memoryview(expected), leaf)
            assert bytes(page.payload) == bytes(expected)
        pid, leaves = leaf.next, leaves + 1
    assert leaves > 20


def test_bulk_load_rejects_bad_input_and_leaves_the_tree_empty(store: PageStore) -> None:
    tree = BTree.create(store)
    items = [(b"%05d" % n, b"v" * 300) for n in range(2000)] + [(b"00001", b"v")]
    with pytest.raises(IndexUsageError, match="sorted"):
        tree.bulk_load(items)
    assert len(tree) == 0 and list(tree.range()) == []
    assert tree.verify()["pages"] == store.stats()["pages"] == 1
    tree.put(b"a", b"b")
    with pytest.raises(IndexUsageError, match="empty"):
        tree.bulk_load([(b"b", b"c")])


def test_bulk_load_restores_the_garbage_collector(store: PageStore) -> None:
    """The load pauses gc; afterwards it is on again if (and only if) it was on before."""
    assert gc.isenabled()
    tree = BTree.create(store)
    seen: list[bool] = []

    def pairs() -> Iterator[tuple[bytes, bytes]]:
        for n in range(5000):
            if n == 2500:
                seen.append(gc.isenabled())
            yield b"%05d" % n, b"v"

    assert tree.bulk_load(pairs()) == 5000
    assert seen == [False] and gc.isenabled()
    with pytest.raises(IndexUsageError, match="sorted"):
        BTree.create(store).bulk_load([(b"b", b""), (b"a", b"")])
    assert gc.isenabled()
    gc.disable()
    try:
        BTree.create(store).bulk_load([(b"a", b"")])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_bulk_load_leaves_its_nodes_in_the_oldest_generation(store: PageStore) -> None:
    # So the first collection after a load does not walk them all; a process that froze
    # objects itself keeps them frozen.
    tree = BTree.create(store)
    tree.bulk_load((b"%05d" % n, b"v") for n in range(5000))
    leaf = tree._core.descend(None, None, False)
    oldest = gc.get_objects(generation=2)
    assert any(obj is leaf for obj in oldest)
    assert any(obj is leaf.keys for obj in oldest)
    frozen = object.__new__(type("Tracked", (), {}))  # a tracked object of this test's own
    gc.freeze()
    try:
        count = gc.get_freeze_count()
        BTree.create(store).bulk_load([(b"a", b"")])
        assert gc.get_freeze_count() >= count  # not thawed by the load
        assert not any(obj is frozen for obj in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()


def test_bulk_load_thaws_only_what_was_frozen_before_index_db(
    store: PageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CPython 3.12 starts with a few hundred objects frozen. Those (simulated here: frozen
    # before the module recorded its baseline) do not stop the promotion, and are thawed
    # with the load's objects; what the process freezes afterwards stays frozen.
    from index_db.btree import _bulk

    early = object.__new__(type("Early", (), {}))
    gc.freeze()
    try:
        monkeypatch.setattr(_bulk._Frozen, "interpreter", gc.get_freeze_count())
        tree = BTree.create(store)
        tree.bulk_load((b"%05d" % n, b"v") for n in range(2000))
        oldest = gc.get_objects(generation=2)
        assert any(obj is tree._core.descend(None, None, False) for obj in oldest)
        assert any(obj is early for obj in oldest)  # thawed with the rest
        late = object.__new__(type("Late", (), {}))
        gc.freeze()
        BTree.create(store).bulk_load([(b"a", b"")])
        assert not any(obj is late for obj in gc.get_objects(generation=2))  # still frozen
    finally:
        gc.unfreeze()


def test_meta_and_reopen_after_checkpoint(tmp_path: object) -> None:
    path = f"{tmp_path}/tree.pages"
    with PageStore.open(path) as store:
        tree = BTree.create(store)
        model = fill(tree, 2000, size=300)
        store.checkpoint(tree.meta())
        tree.put(b"after", b"the checkpoint")  # discarded by close()
    with PageStore.open(path) as store:
        tree = BTree.open(store, store.meta)
        tree.verify()
        check_equal(tree, model)
        calls = []
        stats = store.stats

        def counted_stats() -> dict[str, object]:
            calls.append(1)
            return stats()

        store.stats = counted_stats  # type: ignore[method-assign]
        by_root = BTree.open(store, tree.root)  # int root: the count is recounted
        assert len(by_root) == len(model)
        assert len(calls) <= 1  # not once per leaf: stats() walks the whole pool


def test_open_rejects_bad_meta(store: PageStore, tree: BTree) -> None:
    with pytest.raises(CorruptIndexError):
        BTree.open(store, b"")
    with pytest.raises(CorruptIndexError):
        BTree.open(store, b"XXXX" + tree.meta()[4:])
    with pytest.raises(TypeError):
        BTree.open(store, 1.5)  # type: ignore[arg-type]


def test_iterators_stay_valid_while_the_tree_changes(tree: BTree) -> None:
    for n in range(0, 4000, 2):
        tree.put(b"%06d" % n, b"v" * 50)
    seen = []
    for key, _ in tree.range():
        seen.append(key)
        n = int(key)
        if n % 100 == 0:
            tree.put(b"%06d" % (n + 1), b"new" * 30)  # after the cursor: seen later or not
            tree.delete(b"%06d" % (n + 510))  # leaves ahead of the cursor: never seen
    assert seen == sorted(set(seen))
    assert not any(int(k) % 100 == 10 and int(k) > 510 for k in seen)
    assert all(b"%06d" % n in seen for n in range(0, 4000, 2) if n % 100 != 10)
    tree.verify()


def test_reverse_iterator_survives_splits_and_merges(tree: BTree) -> None:
    for n in range(3000):
        tree.put(b"%06d" % n, b"v" * 60)
    out = []
    for key, _ in tree.range(reverse=True):
        out.append(key)
        if len(out) % 200 == 0:
            for m in range(50):
                tree.delete(b"%06d" % (m * 7))
                tree.put(b"%06d" % (5000 + m), b"w" * 200)
    assert out == sorted(out, reverse=True)
    assert out[0] == b"%06d" % 2999
    tree.verify()


def test_concurrent_readers_with_one_writer(tree: BTree) -> None:
    stable = {b"s%05d" % n: b"stable" for n in range(2000)}
    tree.bulk_load(sorted(stable.items()))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for key in list(stable)[::97]:
                    assert tree.get(key) == b"stable"
                keys = [k for k, _ in tree.prefix(b"s")]
                assert keys == sorted(stable)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    rnd = random.Random(2)
    for _ in range(3000):
        key = b"w" + rnd.randbytes(3)
        if rnd.random() < 0.7:
            tree.put(key, rnd.randbytes(rnd.randint(0, 400)))
        else:
            tree.delete(key)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    tree.verify()


def test_verify_reports_leaked_pages(store: PageStore, tree: BTree) -> None:
    fill(tree, 200)
    tree.verify()
    store.allocate()  # a page nobody links to
    with pytest.raises(CorruptIndexError, match="not reachable"):
        tree.verify()
    tree.verify(other_pages=1)
    tree.verify(other_pages=None)


def test_works_without_cached_extra_as_on_page_db_1_0(store: PageStore) -> None:
    tree = BTree.create(store)
    tree._core.peek = lambda pid: None  # what TreeCore uses when page-db lacks cached_extra
    tree._core.peek_unlocked = None  # ... and without peek_extra: every get is latched
    model = fill(tree, 1500, size=300)
    for key in sorted(model)[::3]:
        tree.delete(key)
        del model[key]
    tree.verify()
    check_equal(tree, model)
    assert list(tree.keys()) == sorted(model)
    assert list(tree.items()) == sorted(model.items())


def test_bad_bulk_pair_leaves_the_tree_usable(store: PageStore) -> None:
    tree = BTree.create(store)
    with pytest.raises(TypeError):
        tree.bulk_load([(b"a", b"1"), (b"b", "text")])  # type: ignore[list-item]
    assert len(tree) == 0
    tree.bulk_load([(b"a", b"1"), (b"b", b"2")])
    assert dict(tree.range()) == {b"a": b"1", b"b": b"2"}
    assert tree.verify()["pages"] == store.stats()["pages"]


def test_bulk_load_across_chunks_with_overflow_values(store: PageStore) -> None:
    rnd = random.Random(8)
    sizes = (0, 30, 100, 900, 1200, 6000)
    items = [(b"%07d" % n, rnd.randbytes(rnd.choice(sizes))) for n in range(9000)]
    tree = BTree.create(store)
    assert tree.bulk_load(items) == len(items)
    stats = tree.verify()
    assert stats["overflow_pages"] > 0
    assert list(tree.range()) == items
    with pytest.raises(TypeError, match="pairs"):
        BTree.create(store).bulk_load([(b"a", b"1", b"extra")])  # type: ignore[list-item]


def test_warm_lookups_decode_nothing(store: PageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = BTree.create(store)
    model = fill(tree, 3000, size=100)
    for key in model:  # warm: every node decoded once and cached
        tree.get(key)

    def no_decoding(*args: object) -> None:
        raise AssertionError("a warm lookup decoded a page")

    from index_db.btree import _core

    monkeypatch.setattr(_core, "decode_leaf", no_decoding)
    monkeypatch.setattr(_core, "decode_branch", no_decoding)
    for key, value in model.items():
        assert tree.get(key) == value
    assert len(list(tree.range())) == len(model)


def test_a_failed_write_makes_the_tree_refuse_use(
    store: PageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = BTree.create(store)
    for n in range(3000):
        tree.put(b"%05d" % n, b"v" * 50)
    scan = tree.range()
    next(scan)

    def failing_write(page_id: int, *args: object) -> object:
        raise OSError("disk on fire")

    store.checkpoint(tree.meta())  # every leaf encoded: a put's next change needs page-db
    monkeypatch.setattr(store, "write", failing_write)
    monkeypatch.setattr(store, "defer", failing_write)  # a put's first change to a leaf
    with pytest.raises(OSError):
        tree.put(b"new", b"value")
    monkeypatch.undo()
    with pytest.raises(IndexUsageError, match="reopen"):
        tree.get(b"00001")
    with pytest.raises(IndexUsageError):
        tree.put(b"x", b"y")
    with pytest.raises(IteratorInvalidatedError):
        list(scan)


def test_drop_frees_every_page_and_a_new_tree_reuses_them(store: PageStore) -> None:
    tree = BTree.create(store)
    tree.bulk_load((b"%08d" % i, b"v" * 50) for i in range(5000))
    tree.put(b"big", b"x" * 100_000)  # an overflow chain too
    store.checkpoint(tree.meta())
    pages = store.stats()["pages"]
    assert tree.drop() == pages
    assert store.stats()["pages"] == 0
    for call in (
        lambda: tree.get(b"00000001"),
        lambda: tree.put(b"a", b"b"),
        lambda: list(tree.items()),
        tree.verify,
        tree.drop,
    ):
        with pytest.raises(IndexUsageError, match="dropped"):
            call()
    fresh = BTree.create(store)
    fresh.bulk_load((b"%08d" % i, b"w") for i in range(100))
    assert fresh.verify()["keys"] == 100
    store.checkpoint(fresh.meta())
    assert store.stats()["pages"] <= pages


def test_a_crash_before_the_next_checkpoint_brings_the_dropped_tree_back() -> None:
    file = MemoryFile()
    store = PageStore.open_file(file, pool_pages=64)
    tree = BTree.create(store)
    tree.bulk_load((b"%04d" % i, b"v") for i in range(500))
    store.checkpoint(tree.meta())
    meta = tree.meta()
    tree.drop()
    BTree.create(store).put(b"other", b"tree")  # reuses the freed ids
    reopened = PageStore.open_file(MemoryFile(file.getvalue()))  # as after a crash
    again = BTree.open(reopened, meta)
    assert again.verify()["keys"] == 500 and again.get(b"0007") == b"v"


def test_drop_of_a_damaged_tree_raises_and_frees_nothing(store: PageStore) -> None:
    tree = BTree.create(store)
    tree.bulk_load((b"%04d" % i, b"v" * 30) for i in range(2000))
    pages = store.stats()["pages"]
    leaf = next(pid for pid in range(1, pages + 1) if pid != tree.root)
    with store.write(leaf) as page:
        page.payload[0] = 0x7F  # not a node kind
    with pytest.raises(CorruptIndexError):
        tree.drop()
    assert store.stats()["pages"] == pages
