"""The hash index's bytes: golden vectors of every page kind, and what a decoder rejects.

The hex strings here are the ones in docs/FORMAT.md; a change to either is a
format change.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index_db.errors import CorruptIndexError
from index_db.hash import HashIndex, _codec, _hashing
from index_db.hash import _layout as L
from page_db import PageStore

PAYLOAD = 4096 - 32

GOLDEN_ROOT = "48580101001300000200000000000000010000000100000002"
GOLDEN_DIRECTORY = "4858020100000000010000000000000003"
GOLDEN_BUCKET = (
    "48580301000002000000000000000000000000001200000005000200616c696365343203000000626f62"
)
GOLDEN_OVERFLOW = "485804010300010005000000090000000200000007000000010002006b7676"


def page_bytes(store: PageStore, page_id: int) -> bytes:
    with store.read(page_id) as page:
        return bytes(page.payload)


def test_hash_function_is_pinned() -> None:
    assert _hashing.hash_key(b"") == 0
    assert _hashing.hash_key(b"alice") == 0x278EBC47
    assert _hashing.hash_key(b"bob") == 0xF5CBB140
    assert _hashing.hash_key(b"123456789") == 0xCBF43926  # the CRC-32 check value


def test_golden_pages_of_a_two_key_index() -> None:
    store = PageStore.memory()
    index = HashIndex.create(store)
    index.put(b"alice", b"42")
    index.put(b"bob", b"")
    assert (index.root, index.global_depth) == (1, 0)
    for page_id, golden in ((1, GOLDEN_ROOT), (2, GOLDEN_DIRECTORY), (3, GOLDEN_BUCKET)):
        payload = page_bytes(store, page_id)
        expected = bytes.fromhex(golden)
        assert payload == expected + bytes(PAYLOAD - len(expected)), f"page {page_id}"


def test_golden_overflow_page_round_trips() -> None:
    bucket = _codec.Bucket(
        kind=L.KIND_OVERFLOW, local_depth=3, prefix=5, next_id=9, position=2, entries={b"k": b"vv"}
    )
    data = _codec.encode_bucket(bucket)
    assert data.hex() == GOLDEN_OVERFLOW
    decoded = _codec.decode_bucket(data + bytes(PAYLOAD - len(data)), 7, 19)
    assert (decoded.kind, decoded.local_depth, decoded.prefix, decoded.mask) == (4, 3, 5, 7)
    assert (decoded.next_id, decoded.position, decoded.entries, decoded.used) == (
        9,
        2,
        {b"k": b"vv"},
        7,
    )


def test_layout_constants() -> None:
    assert (L.ROOT_HEADER_SIZE, L.DIRECTORY_HEADER_SIZE, L.BUCKET_HEADER_SIZE) == (24, 16, 24)
    assert L.max_depth_for(4096 - 32) == 19
    assert L.max_depth_for(65536 - 32) == 27
    assert L.max_value_size(4096 - 32) == 3012


def padded(hex_or_bytes: str | bytes) -> bytearray:
    data = bytes.fromhex(hex_or_bytes) if isinstance(hex_or_bytes, str) else hex_or_bytes
    return bytearray(data + bytes(PAYLOAD - len(data)))


def patched(golden: str, offset: int, fmt: str, value: int) -> bytearray:
    data = padded(golden)
    struct.pack_into(fmt, data, offset, value)
    return data


BAD_BUCKETS = [
    (patched(GOLDEN_BUCKET, 0, "<H", 0x5858), "bad magic"),
    (patched(GOLDEN_BUCKET, 3, "<B", 2), "format version 2"),
    (patched(GOLDEN_BUCKET, 2, "<B", 1), "page kind 1"),
    (patched(GOLDEN_BUCKET, 4, "<B", 20), "local depth 20"),
    (patched(GOLDEN_BUCKET, 8, "<I", 1), "wider than local depth"),
    (patched(GOLDEN_BUCKET, 16, "<I", 1), "chain position 1"),
    (patched(GOLDEN_OVERFLOW, 16, "<I", 0), "chain position 0"),
    (patched(GOLDEN_BUCKET, 6, "<H", 3), "records end at 46, the header says 42"),
    (patched(GOLDEN_BUCKET, 6, "<H", 1), "records end at 35, the header says 42"),
    (patched(GOLDEN_BUCKET, 20, "<H", 19), "records end at 42, the header says 43"),
    (patched(GOLDEN_BUCKET, 22, "<H", 1), "local depth 0 above"),
    (patched(GOLDEN_BUCKET, 24, "<H", 5000), "runs past the page"),
    (patched(GOLDEN_BUCKET, 24, "<H", 1025), "runs past the page"),
    (patched(GOLDEN_BUCKET, 200, "<B", 1), "non-zero bytes after the end"),
    (padded(bytes.fromhex(GOLDEN_BUCKET)[:35] + b"\x05\x00\x00\x00" + b"alice"), "appears twice"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_BUCKETS)
def test_decode_bucket_rejects(payload: bytearray, reason: str) -> None:
    with pytest.raises(CorruptIndexError, match=reason) as info:
        _codec.decode_bucket(payload, 42, 19)
    assert info.value.page_id == 42


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (patched(GOLDEN_ROOT, 2, "<B", 3), "page kind 3"),
        (patched(GOLDEN_ROOT, 5, "<B", 27), "max depth 27"),
        (patched(GOLDEN_ROOT, 4, "<B", 20), "global depth 20"),
        (patched(GOLDEN_ROOT, 20, "<I", 2), "2 directory pages"),
        (patched(GOLDEN_ROOT, 16, "<I", 0), "bucket count 0"),
        (patched(GOLDEN_ROOT, 24, "<I", 0), "directory page id 0"),
        (
            patched(GOLDEN_ROOT, 28, "<B", 9),
            "non-zero bytes after the end of the page's content at 28",
        ),
    ],
)
def test_decode_root_rejects(payload: bytearray, reason: str) -> None:
    with pytest.raises(CorruptIndexError, match=reason):
        _codec.decode_root(payload, 1, 19)


@pytest.mark.parametrize(
    ("payload", "first", "count", "reason"),
    [
        (padded(GOLDEN_DIRECTORY), 1012, 1, "expected 1012\\+1"),
        (padded(GOLDEN_DIRECTORY), 0, 2, "expected 0\\+2"),
        (patched(GOLDEN_DIRECTORY, 16, "<I", 0), 0, 1, "slot 0 holds page id 0"),
        (patched(GOLDEN_DIRECTORY, 2, "<B", 4), 0, 1, "page kind 4"),
        (patched(GOLDEN_DIRECTORY, 4000, "<B", 1), 0, 1, "non-zero bytes after the end"),
    ],
)
def test_decode_directory_rejects(payload: bytearray, first: int, count: int, reason: str) -> None:
    with pytest.raises(CorruptIndexError, match=reason):
        _codec.decode_directory(payload, 2, first, count)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    head=st.binary(min_size=24, max_size=24),
    body=st.binary(max_size=200),
    template=st.sampled_from([GOLDEN_BUCKET, GOLDEN_OVERFLOW, GOLDEN_ROOT, GOLDEN_DIRECTORY]),
    flips=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 255)), max_size=4),
)
def test_decoders_raise_only_corrupt_index_error(
    head: bytes, body: bytes, template: str, flips: list[tuple[int, int]]
) -> None:
    candidates = [padded(head + body), padded(template)]
    for offset, mask in flips:
        candidates[1][offset] ^= mask
    for payload in candidates:
        for decode in (
            lambda p: _codec.decode_bucket(p, 5, 19),
            lambda p: _codec.decode_root(p, 5, 19),
            lambda p: _codec.decode_directory(p, 5, 0, 1),
        ):
            with contextlib.suppress(CorruptIndexError):
                decode(payload)
