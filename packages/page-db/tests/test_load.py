"""Opening hostile files whose checksums are all valid: each structural lie is caught.

The images are built directly with the encoders (as an attacker or a buggy writer could),
so every page passes its CRC and the loader's structural checks are what stands between the
bytes and the caller: slot bounds, shared slots, cycles, tree shape and id accounting.
"""

from __future__ import annotations

import pytest

from page_db import CorruptPageError, MemoryFile, PageStore, _codec
from page_db import _layout as L

PS = 4096


def data_page(page_id: int, epoch: int = 1) -> bytes:
    page = bytearray(PS)
    _codec.seal_page(page, L.PAGE_TYPE_DATA, page_id, epoch)
    return bytes(page)


def image(
    *,
    slots: int,
    next_id: int,
    leaf: list[int] | None = None,
    free: list[int] | None = None,
    free_count: int | None = None,
    free_next: int = 0,
    depth: int | None = None,
    extra: dict[int, bytes] | None = None,
    truncate_to: int | None = None,
) -> bytes:
    """A store: superblock in slot 0 (seq 2), page-table leaf in slot 2, free list in 3."""
    pages = [bytes(PS)] * slots
    root = 2 if leaf is not None else 0
    if leaf is not None:
        pages[2] = bytes(_codec.encode_page_table_page(PS, 2, 2, 0, leaf))
    head = 0
    if free is not None:
        head = 3
        pages[3] = bytes(_codec.encode_free_list_page(PS, 3, 2, free_next, free))
    for slot, page in (extra or {}).items():
        pages[slot] = page
    count = len(free or []) if free_count is None else free_count
    sb = _codec.Superblock(
        2, PS, slots, next_id, root, 1 if depth is None and root else depth or 0, head, count, b""
    )
    pages[0] = bytes(_codec.encode_superblock(sb, 0))
    raw = b"".join(pages)
    return raw[: truncate_to * PS] if truncate_to is not None else raw


def open_image(raw: bytes) -> PageStore:
    return PageStore.open_file(MemoryFile(raw))


def test_the_baseline_image_is_valid() -> None:
    raw = image(slots=6, next_id=3, leaf=[0, 4, 0], free=[2], extra={4: data_page(1)})
    store = open_image(raw)
    with store.read(1) as page:
        assert page.page_id == 1
    assert store.allocate() == 2


CASES = {
    "free id out of range": (
        dict(slots=6, next_id=3, leaf=[0, 4, 0], free=[7], extra={4: data_page(1)}),
        "outside",
    ),
    "free id also mapped": (
        dict(
            slots=6, next_id=3, leaf=[0, 4, 5], free=[2], extra={4: data_page(1), 5: data_page(2)}
        ),
        "both mapped and in the free list",
    ),
    "free id listed twice": (
        dict(
            slots=6,
            next_id=4,
            leaf=[0, 4, 0, 0],
            free=[2, 2],
            free_count=2,
            extra={4: data_page(1)},
        ),
        "twice",
    ),
    "id neither mapped nor free": (
        dict(slots=6, next_id=3, leaf=[0, 4, 0], extra={4: data_page(1)}),
        "neither mapped nor free",
    ),
    "free list longer than recorded": (
        dict(
            slots=6,
            next_id=4,
            leaf=[0, 4, 0, 0],
            free=[2, 3],
            free_count=1,
            extra={4: data_page(1)},
        ),
        "more than the 1 ids",
    ),
    "free list shorter than recorded": (
        dict(
            slots=6, next_id=4, leaf=[0, 4, 0, 0], free=[2], free_count=2, extra={4: data_page(1)}
        ),
        "holds 1 ids, superblock records 2",
    ),
    "free list cycle": (
        dict(slots=6, next_id=3, leaf=[0, 4, 0], free=[2], free_next=3, extra={4: data_page(1)}),
        "already in use",
    ),
    "free list runs into the page table": (
        dict(slots=6, next_id=3, leaf=[0, 4, 0], free=[2], free_next=2, extra={4: data_page(1)}),
        "already in use",
    ),
    "page-table entry outside the file": (
        dict(slots=6, next_id=2, leaf=[0, 6]),
        "outside",
    ),
    "page-table entry names a superblock": (
        dict(slots=6, next_id=2, leaf=[0, 1]),
        "outside",
    ),
    "two ids share one slot": (
        dict(slots=6, next_id=3, leaf=[0, 4, 4], extra={4: data_page(1)}),
        "already in use",
    ),
    "data page mapped onto the page table itself": (
        dict(slots=6, next_id=2, leaf=[0, 2]),
        "already in use",
    ),
    "leaf holds too few entries": (
        dict(slots=6, next_id=3, leaf=[0, 4], extra={4: data_page(1)}),
        "holds 2 entries, expected 3",
    ),
    "id 0 mapped": (
        dict(slots=6, next_id=2, leaf=[5, 4], extra={4: data_page(1)}),
        "page id 0 is mapped",
    ),
    "depth does not fit next id": (
        dict(slots=6, next_id=2, leaf=[0, 4], depth=2, extra={4: data_page(1)}),
        "does not fit next page id",
    ),
    "next id too large for the file": (
        dict(slots=6, next_id=2_000_000, leaf=[0, 4], depth=3, extra={4: data_page(1)}),
        "cannot fit in the file",
    ),
    "root is a free-list page": (
        dict(
            slots=6,
            next_id=2,
            leaf=[0, 4],
            extra={2: bytes(_codec.encode_free_list_page(PS, 2, 1, 0, [1])), 4: data_page(1)},
        ),
        "expected a page-table page",
    ),
    "file shorter than its slot count": (
        dict(slots=6, next_id=2, leaf=[0, 4], extra={4: data_page(1)}, truncate_to=5),
        "truncated",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_structural_lies_are_typed_errors(case: str) -> None:
    kwargs, reason = CASES[case]
    with pytest.raises(CorruptPageError, match=reason):
        open_image(image(**kwargs))  # type: ignore[arg-type]


def test_page_from_a_later_epoch_is_refused_on_read() -> None:
    raw = image(slots=6, next_id=2, leaf=[0, 4], extra={4: data_page(1, epoch=3)})
    store = open_image(raw)
    with pytest.raises(CorruptPageError, match="newer than its checkpoint") as info:
        store.read(1)
    assert (info.value.page_id, info.value.slot) == (1, 4)


def test_data_page_with_the_wrong_id_is_refused_on_read() -> None:
    raw = image(slots=6, next_id=2, leaf=[0, 4], extra={4: data_page(9)})
    with pytest.raises(CorruptPageError, match="misdirected"):
        open_image(raw).read(1)
