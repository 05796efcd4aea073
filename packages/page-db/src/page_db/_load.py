"""Opening a store's file: pick the superblock, load the page table and the free list.

Theory of operation
-------------------
Two superblocks alternate in slots 0 and 1; a checkpoint with sequence ``n`` writes slot
``n % 2`` only after every page it references is durable. So on open the valid superblock
with the higher sequence names the last complete checkpoint, and a superblock torn by a
crash simply fails validation and loses to the other one.

From that superblock the loader reads the page-table tree (its shape is fixed by the
superblock's ``next_page_id``) and the free-list chain, marking every slot it meets in a
bitmap of the file's slots. Every length is checked before it is trusted, every slot
before it is followed, and no slot may be used twice, so a corrupt or hostile file ends
in :class:`~page_db.errors.CorruptPageError` after work bounded by the file's size —
never a loop, a huge allocation or a partial load. Finally the two views must agree:
every id below ``next_page_id`` is either mapped or in the free list, never both.

What stays unread: data pages. Each is verified when the buffer pool first reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import _codec
from . import _layout as L
from ._pagetable import PageTable, mark_slot
from .errors import CorruptPageError, PageSizeMismatchError

__all__ = ["LoadedCheckpoint", "load_checkpoint", "initial_image"]

ReadSlot = Callable[[int, int], bytes]  # (slot, page_size) -> bytes read


@dataclass
class LoadedCheckpoint:
    """Everything the store needs from the last durable checkpoint."""

    superblock: _codec.Superblock
    page_table: PageTable
    free_ids: list[int]
    free_list_slots: list[int]
    in_use: bytearray  # one byte per slot below slot_count: 1 if the checkpoint uses it


def initial_image(page_size: int) -> bytes:
    """The bytes of a new, empty store: slot 0 zeroed, slot 1 holding checkpoint 1."""
    sb = _codec.Superblock(
        seq=1,
        page_size=page_size,
        slot_count=2,
        next_page_id=1,
        page_table_root=0,
        page_table_depth=0,
        free_list_head=0,
        free_count=0,
        meta=b"",
    )
    return bytes(page_size) + bytes(_codec.encode_superblock(sb, 1))


def load_checkpoint(read_slot: ReadSlot, file_size: int, page_size: int) -> LoadedCheckpoint:
    """Load the newest valid checkpoint of a file.

    Args:
        read_slot: reads ``page_size`` bytes of a slot (fewer at end of file).
        file_size: the file's length in bytes.
        page_size: the page size the caller opened with.

    Returns:
        The validated checkpoint.

    Raises:
        PageSizeMismatchError: the file is valid but has another page size.
        CorruptPageError: no valid superblock, or the chosen checkpoint's page table or
            free list fails validation.
    """
    sb = _pick_superblock(read_slot, file_size, page_size)
    file_slots = file_size // page_size
    if sb.slot_count > file_slots:
        raise CorruptPageError(
            f"file holds {file_slots} slots but checkpoint {sb.seq} needs {sb.slot_count}"
            " (file truncated)"
        )
    in_use = bytearray(sb.slot_count)
    in_use[0] = in_use[1] = 1
    table = PageTable(page_size)

    def read_table_page(slot: int, level: int, expected: int) -> list[int]:
        return _codec.decode_page_table_page(
            read_slot(slot, page_size),
            page_size=page_size,
            slot=slot,
            max_epoch=sb.seq,
            level=level,
        )

    table.load(read_table_page, sb.page_table_root, sb.page_table_depth, sb.next_page_id, in_use)
    free_ids, free_list_slots = _load_free_list(read_slot, sb, in_use)
    _check_accounting(table, free_ids, sb)
    return LoadedCheckpoint(sb, table, free_ids, free_list_slots, in_use)


def _pick_superblock(read_slot: ReadSlot, file_size: int, page_size: int) -> _codec.Superblock:
    found: list[_codec.Superblock] = []
    problems: list[str] = []
    for slot in L.SUPERBLOCK_SLOTS:
        try:
            found.append(_codec.decode_superblock(read_slot(slot, page_size), slot, page_size))
        except CorruptPageError as exc:
            problems.append(f"slot {slot}: {exc.reason}")
    if found:
        return max(found, key=lambda sb: sb.seq)
    for other in L.VALID_PAGE_SIZES:
        if other == page_size or 2 * other > file_size:
            continue
        for slot in L.SUPERBLOCK_SLOTS:
            try:
                _codec.decode_superblock(read_slot(slot, other), slot, other)
            except CorruptPageError:
                continue
            raise PageSizeMismatchError(page_size, other)
    raise CorruptPageError("no valid superblock (" + "; ".join(problems) + ")")


def _load_free_list(
    read_slot: ReadSlot, sb: _codec.Superblock, in_use: bytearray
) -> tuple[list[int], list[int]]:
    free_ids: list[int] = []
    chain: list[int] = []
    slot = sb.free_list_head
    while slot:
        mark_slot(in_use, slot, "free-list link", chain[-1] if chain else None)
        chain.append(slot)
        next_slot, ids = _codec.decode_free_list_page(
            read_slot(slot, sb.page_size), page_size=sb.page_size, slot=slot, max_epoch=sb.seq
        )
        free_ids.extend(ids)
        if len(free_ids) > sb.free_count:
            raise CorruptPageError(
                f"free list holds more than the {sb.free_count} ids the superblock records",
                slot=slot,
            )
        slot = next_slot
    if len(free_ids) != sb.free_count:
        raise CorruptPageError(
            f"free list holds {len(free_ids)} ids, superblock records {sb.free_count}"
        )
    return free_ids, chain


def _check_accounting(table: PageTable, free_ids: list[int], sb: _codec.Superblock) -> None:
    entries = table.entries
    seen: set[int] = set()
    for page_id in free_ids:
        if not 0 < page_id < sb.next_page_id:
            raise CorruptPageError(
                f"free list names page {page_id}, outside [1, {sb.next_page_id})"
            )
        if entries[page_id] != 0:
            raise CorruptPageError("page is both mapped and in the free list", page_id=page_id)
        if page_id in seen:
            raise CorruptPageError("page is in the free list twice", page_id=page_id)
        seen.add(page_id)
    unmapped = entries.count(0) - 1  # id 0 is never mapped
    if unmapped != len(free_ids):
        raise CorruptPageError(f"{unmapped - len(free_ids)} page ids are neither mapped nor free")
