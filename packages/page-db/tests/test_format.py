"""The on-disk format: golden vectors from docs/FORMAT.md, codec round trips, rejections."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from page_db import (
    FORMAT_VERSION,
    PAGE_HEADER_SIZE,
    CorruptPageError,
    MemoryFile,
    PageStore,
    _codec,
)
from page_db import _layout as L

FORMAT_DOC = Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md"
PS = 4096


def golden() -> dict[str, bytes]:
    text = FORMAT_DOC.read_text()
    blocks = re.findall(r"<!-- golden: (\S+) -->\s*```hex\n([0-9a-f\s]+)```", text)
    return {name: bytes.fromhex("".join(hex_text.split())) for name, hex_text in blocks}


def data_page(page_id: int, epoch: int, payload: bytes, lsn: int = 0) -> bytearray:
    page = bytearray(PS)
    L.LSN_STRUCT.pack_into(page, L.LSN_OFFSET, lsn)
    page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + len(payload)] = payload
    _codec.seal_page(page, L.PAGE_TYPE_DATA, page_id, epoch)
    return page


SB5 = _codec.Superblock(5, PS, 9, 4, 6, 1, 7, 1, b"meta")


def test_constants() -> None:
    assert FORMAT_VERSION == 1
    assert PAGE_HEADER_SIZE == 32
    assert L.MAGIC == b"STPG"
    assert crc32c.crc32c(b"123456789") == 0xE3069283


def test_the_doc_holds_every_vector() -> None:
    assert set(golden()) == {
        "data-page-header",
        "superblock-empty",
        "superblock-seq5",
        "page-table-leaf",
        "free-list",
    }


def test_golden_data_page_header() -> None:
    page = data_page(7, 3, b"hello", lsn=0x0102030405060708)
    assert bytes(page[:32]) == golden()["data-page-header"]
    assert not any(page[37:])


def test_golden_superblocks() -> None:
    vectors = golden()
    empty = _codec.encode_superblock(_codec.Superblock(1, PS, 2, 1, 0, 0, 0, 0, b""), 1)
    assert bytes(empty[:64]) == vectors["superblock-empty"]
    assert not any(empty[64:])
    seq5 = _codec.encode_superblock(SB5, 0)
    assert bytes(seq5[:68]) == vectors["superblock-seq5"]
    assert _codec.decode_superblock(seq5, 0, PS) == SB5


def test_golden_page_table_and_free_list() -> None:
    vectors = golden()
    leaf = _codec.encode_page_table_page(PS, 6, 5, 0, [0, 3, 0, 8])
    assert bytes(leaf[:56]) == vectors["page-table-leaf"]
    fl = _codec.encode_free_list_page(PS, 7, 5, 0, [2])
    assert bytes(fl[:44]) == vectors["free-list"]


def golden_image() -> bytes:
    vectors = golden()
    slots = [bytes(PS)] * 9

    def full(head: bytes) -> bytes:
        return head + bytes(PS - len(head))

    slots[0] = full(vectors["superblock-seq5"])
    slots[3] = bytes(data_page(1, 4, b"one"))
    slots[6] = full(vectors["page-table-leaf"])
    slots[7] = full(vectors["free-list"])
    slots[8] = bytes(data_page(3, 5, b"three"))
    return b"".join(slots)


def test_golden_store_image_opens() -> None:
    store = PageStore.open_file(MemoryFile(golden_image()))
    assert store.meta == b"meta"
    with store.read(1) as page:
        assert bytes(page.payload[:4]) == b"one\0"
    with store.read(3) as page:
        assert bytes(page.payload[:6]) == b"three\0"
    assert store.stats()["pages"] == 2
    assert store.allocate() == 2


def test_golden_store_written_by_the_store_reopens_identically() -> None:
    file = MemoryFile()
    store = PageStore.open_file(file)
    ids = [store.allocate() for _ in range(3)]
    store.free(ids[1])
    store.checkpoint(b"m")
    image = file.getvalue()
    reopened = PageStore.open_file(MemoryFile(image))
    assert reopened.stats()["pages"] == 2
    assert reopened.allocate() == ids[1]


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0, b"XTPG", "bad magic"),
        (4, struct.pack("<H", 2), "unsupported format version 2"),
        (6, b"\x02", "expected a data page"),
        (7, b"\x01", "unknown flags"),
        (8, struct.pack("<I", 8), "misdirected page"),
        (24, struct.pack("<Q", 4), "newer than its checkpoint"),
    ],
)
def test_page_rejections(offset: int, value: bytes, reason: str) -> None:
    page = data_page(7, 3, b"x")
    page[offset : offset + len(value)] = value
    if offset != 0:  # keep the CRC right so the targeted check is the one that fires
        struct.pack_into("<I", page, L.CRC_OFFSET, _codec.page_crc(page))
    with pytest.raises(CorruptPageError, match=reason) as info:
        _codec.check_page(
            page,
            page_size=PS,
            page_type=L.PAGE_TYPE_DATA,
            page_id=7,
            max_epoch=3,
            slot=9,
            logical=True,
        )
    assert info.value.page_id == 7
    assert info.value.slot == 9


def test_checksum_and_short_read_rejections() -> None:
    page = data_page(7, 3, b"x")
    page[100] ^= 1
    kwargs = dict(
        page_size=PS, page_type=L.PAGE_TYPE_DATA, page_id=7, max_epoch=3, slot=2, logical=True
    )
    with pytest.raises(CorruptPageError, match="checksum mismatch"):
        _codec.check_page(page, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(CorruptPageError, match="short read"):
        _codec.check_page(bytes(data_page(7, 3, b"x"))[:100], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("page_type", ["page-table", "free-list"])
def test_structural_pages_have_one_encoding(page_type: str) -> None:
    encode = (
        _codec.encode_page_table_page if page_type == "page-table" else _codec.encode_free_list_page
    )
    for offset, value in ((16, b"\x01"), (4095, b"\x01")):  # LSN, padding after entries
        page = encode(PS, 5, 1, 0, [3])
        page[offset : offset + 1] = value
        struct.pack_into("<I", page, L.CRC_OFFSET, _codec.page_crc(page))
        with pytest.raises(CorruptPageError, match=r"LSN 1|non-zero bytes"):
            if page_type == "page-table":
                _codec.decode_page_table_page(page, page_size=PS, slot=5, max_epoch=1, level=0)
            else:
                _codec.decode_free_list_page(page, page_size=PS, slot=5, max_epoch=1)


def resealed_superblock(**fields: int) -> bytearray:
    page = _codec.encode_superblock(SB5, 0)
    names = [
        "page_size",
        "slot_count",
        "next_page_id",
        "page_table_root",
        "page_table_depth",
        "free_list_head",
        "free_count",
        "meta_len",
    ]
    values = list(L.SUPERBLOCK_STRUCT.unpack_from(page, L.SUPERBLOCK_BODY_OFFSET))
    for name, value in fields.items():
        values[names.index(name)] = value
    L.SUPERBLOCK_STRUCT.pack_into(page, L.SUPERBLOCK_BODY_OFFSET, *values)
    _codec.seal_page(page, L.PAGE_TYPE_SUPERBLOCK, 0, SB5.seq)
    return page


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"page_size": 8192}, "page size field"),
        ({"slot_count": 1}, "slot count"),
        ({"next_page_id": 0}, "next page id 0"),
        ({"free_count": 4}, "free count"),
        ({"page_table_root": 9}, "page-table root slot 9 outside"),
        ({"page_table_root": 1}, "page-table root slot 1 outside"),
        ({"free_list_head": 0}, "free-list head 0 inconsistent"),
        ({"page_table_depth": 0}, "inconsistent with next id"),
        ({"page_table_depth": 9}, "depth 9"),
        ({"meta_len": 2**32 - 1}, "meta length"),
        ({"meta_len": 2}, "non-zero bytes after meta"),
    ],
)
def test_superblock_rejections(fields: dict[str, int], reason: str) -> None:
    with pytest.raises(CorruptPageError, match=reason):
        _codec.decode_superblock(resealed_superblock(**fields), 0, PS)


@given(
    st.integers(1, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=PS - 32),
)
def test_data_page_round_trip(page_id: int, lsn: int, epoch: int, payload: bytes) -> None:
    page = data_page(page_id, epoch, payload, lsn)
    _codec.check_page(
        page,
        page_size=PS,
        page_type=L.PAGE_TYPE_DATA,
        page_id=page_id,
        max_epoch=epoch,
        slot=2,
        logical=True,
    )
    assert bytes(page[32 : 32 + len(payload)]) == payload


@given(st.lists(st.integers(0, 2**32 - 1), max_size=L.entries_per_page(PS)), st.integers(0, 50))
def test_u32_pages_round_trip(entries: list[int], level: int) -> None:
    page = _codec.encode_page_table_page(PS, 5, 1, level, entries)
    assert (
        _codec.decode_page_table_page(page, page_size=PS, slot=5, max_epoch=1, level=level)
        == entries
    )
    page = _codec.encode_free_list_page(PS, 5, 1, level, entries)
    assert _codec.decode_free_list_page(page, page_size=PS, slot=5, max_epoch=1) == (level, entries)


@given(st.binary(min_size=0, max_size=PS + 10))
def test_arbitrary_bytes_never_escape_as_anything_but_corrupt_page_error(raw: bytes) -> None:
    for decode in (
        lambda: _codec.decode_superblock(raw, 0, PS),
        lambda: _codec.decode_page_table_page(raw, page_size=PS, slot=2, max_epoch=9, level=0),
        lambda: _codec.decode_free_list_page(raw, page_size=PS, slot=2, max_epoch=9),
    ):
        with pytest.raises(CorruptPageError):
            decode()
