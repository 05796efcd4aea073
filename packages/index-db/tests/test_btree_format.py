"""Golden vectors of the B+tree's page formats (pinned in docs/FORMAT.md) and
round trips of the node codec, including the in-place leaf edits."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from index_db.btree import _layout as L
from index_db.btree._node import (
    Branch,
    Leaf,
    OverflowRef,
    branch_insert_in_place,
    decode_branch,
    decode_leaf,
    encode_branch,
    encode_leaf,
    leaf_delete_in_place,
    leaf_insert_in_place,
)

# A leaf {b"a": b"1", b"bc": <5000 bytes in the chain starting at page 9>}, sibling 8,
# encoded into a 48-byte payload (real payloads are page_size - 32 bytes; the heap ends
# at the payload's end either way).
GOLDEN_LEAF = bytes.fromhex(
    "4c0002001c00000008000000000000001c002400000000000000000001000100000061310200"
    "88130080626309000000"
)
# A leaf {b"a": b"1", b"b": b"2"}, sibling 8, in a 48-byte payload: cells of one width,
# which the encoder lays out from a cached slot array (the bulk-load case).
GOLDEN_FIXED_LEAF = bytes.fromhex(
    "4c000200200000000800000000000000200028000000000000000000000000000100010000006131"
    "0100010000006232"
)
# A level-1 branch: children 4 | "m" | 5 | "tx" | 6, in a 40-byte payload.
GOLDEN_BRANCH = bytes.fromhex(
    "42010200000000000000000000000000040000000500000006000000010002006d74780000000000"
)
# An overflow page holding b"hello", next page 10, in a 20-byte payload.
GOLDEN_OVERFLOW = bytes.fromhex("4f0000000a0000000500000068656c6c6f000000")
# The meta record of a tree with root page 3 and 2 keys.
GOLDEN_META = bytes.fromhex("4958425401000000030000000200000000000000")


def test_golden_leaf() -> None:
    buf = bytearray(48)
    encode_leaf(memoryview(buf), Leaf(7, [b"a", b"bc"], [b"1", OverflowRef(9, 5000)], 8))
    assert bytes(buf) == GOLDEN_LEAF
    leaf = decode_leaf(GOLDEN_LEAF, 7)
    assert leaf.keys == [b"a", b"bc"]
    assert leaf.vals == [b"1", OverflowRef(9, 5000)]
    assert leaf.next == 8 and leaf.top == 28 and leaf.garbage == 0


def test_golden_fixed_width_leaf() -> None:
    buf = bytearray(48)
    encode_leaf(memoryview(buf), Leaf(7, [b"a", b"b"], [b"1", b"2"], 8))
    assert bytes(buf) == GOLDEN_FIXED_LEAF
    leaf = decode_leaf(GOLDEN_FIXED_LEAF, 7)
    assert leaf.keys == [b"a", b"b"] and leaf.vals == [b"1", b"2"] and leaf.top == 32


@given(
    st.integers(0, 12),
    st.integers(0, 80),
    st.sampled_from([48, 200, 4064]),
    st.integers(0, 90),
)
def test_fixed_width_leaf_layout_matches_slot_by_slot(
    key_size: int, value_size: int, payload: int, count: int
) -> None:
    # Every cell the same width: the cached slot array must equal the offsets one by one.
    width = L.CELL_HEADER_SIZE + key_size + value_size
    count = min(count, (L.capacity(payload)) // (width + L.SLOT_SIZE), 256**key_size)
    keys = [i.to_bytes(key_size, "big") for i in range(count)]
    buf = bytearray(b"\xee" * payload)
    leaf = Leaf(3, keys, [bytes([i % 251]) * value_size for i in range(count)], 4)
    encode_leaf(memoryview(buf), leaf)
    top = payload - count * width
    slots = [int.from_bytes(buf[16 + 2 * i : 18 + 2 * i], "little") for i in range(count)]
    assert slots == [top + i * width for i in range(count)]
    assert bytes(buf[16 + 2 * count : top]) == bytes(top - 16 - 2 * count)
    back = decode_leaf(bytes(buf), 3)
    assert back.keys == leaf.keys and back.vals == leaf.vals and back.top == top


def test_golden_branch() -> None:
    buf = bytearray(40)
    encode_branch(memoryview(buf), Branch(3, 1, [b"m", b"tx"], [4, 5, 6]))
    assert bytes(buf) == GOLDEN_BRANCH
    node = decode_branch(GOLDEN_BRANCH, 3, 1)
    assert node.keys == [b"m", b"tx"] and node.children == [4, 5, 6]


def test_golden_overflow_and_meta() -> None:
    buf = bytearray(20)
    L.OVERFLOW_HEADER.pack_into(buf, 0, L.KIND_OVERFLOW, 10, 5)
    buf[12:17] = b"hello"
    assert bytes(buf) == GOLDEN_OVERFLOW
    assert L.META.pack(L.META_MAGIC, L.META_VERSION, 0, 3, 2) == GOLDEN_META


def test_sizes_at_4k_pages() -> None:
    payload = 4096 - 32
    assert L.capacity(payload) == 4048
    assert L.max_cell(payload) == 1012
    assert L.max_key_size(payload) == 1000
    assert L.min_fill(payload) == 1012


@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=60)), max_size=60))
def test_leaf_round_trip(entries: list[tuple[bytes, bytes]]) -> None:
    items = sorted(dict(entries).items())
    leaf = Leaf(1, [k for k, _ in items], [v for _, v in items], 5)
    if leaf.used > L.capacity(4064):
        return
    buf = bytearray(4064)
    encode_leaf(memoryview(buf), leaf)
    back = decode_leaf(bytes(buf), 1)
    assert back.keys == leaf.keys and back.vals == leaf.vals and back.used == leaf.used


def test_in_place_edits_match_the_model() -> None:
    rnd = random.Random(11)
    buf = bytearray(4064)
    view = memoryview(buf)
    leaf = Leaf(1, [], [], 0)
    encode_leaf(view, leaf)
    model: dict[bytes, bytes] = {}
    for _ in range(3000):
        key = rnd.randbytes(rnd.randint(0, 6))
        if key in model or (rnd.random() < 0.4 and model):
            key = rnd.choice(sorted(model)) if key not in model else key
            leaf_delete_in_place(view, leaf, leaf.keys.index(key))
            del model[key]
        else:
            value = rnd.randbytes(rnd.randint(0, 80))
            if leaf.used + 2 + 6 + len(key) + len(value) > L.capacity(4064):
                continue
            i = sorted([*model, key]).index(key)
            leaf_insert_in_place(view, leaf, i, key, value)
            model[key] = value
        back = decode_leaf(bytes(buf), 1)
        assert back.keys == sorted(model) == leaf.keys
        assert back.vals == [model[k] for k in back.keys]
        assert back.used == leaf.used and back.garbage == leaf.garbage


@given(
    st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=40, unique=True),
    st.data(),
)
def test_in_place_branch_insert_matches_a_whole_encode(
    keys: list[bytes], data: st.DataObject
) -> None:
    keys.sort()
    sep = keys.pop(data.draw(st.integers(0, len(keys) - 1)))
    node = Branch(3, 2, list(keys), list(range(10, 10 + len(keys) + 1)))
    buf = bytearray(L.HEADER_SIZE + node.used + 6 + len(sep) + data.draw(st.integers(0, 20)))
    encode_branch(memoryview(buf), node)
    index = sum(k < sep for k in keys)
    node.keys.insert(index, sep)
    node.children.insert(index + 1, 99)
    node.used += L.BRANCH_KEY_COST + len(sep)
    branch_insert_in_place(memoryview(buf), node, index)
    whole = bytearray(len(buf))
    encode_branch(memoryview(whole), Branch(3, 2, node.keys, node.children))
    assert bytes(buf) == bytes(whole)
    assert decode_branch(bytes(buf), 3, 2).keys == node.keys
