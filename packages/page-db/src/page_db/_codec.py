"""Pure encoders and decoders for page-db's on-disk structures (sans-IO).

Theory of operation
-------------------
Every page, whatever its type, is ``page_size`` bytes: a 32-byte header followed by a
body. The header's CRC32C covers the whole page except the four CRC bytes themselves,
so a torn write, a bit flip or a page that landed in the wrong slot is caught on read:

* the magic and format version say "this is a page-db page we can read";
* the page type and page id say "this is the page we asked for" (a data page carries its
  logical id, the structural pages carry their own slot number, so a misdirected write
  or a stale mapping is detected even when the bytes are internally consistent);
* the epoch is the checkpoint sequence number the page was written under; a page
  reachable from checkpoint ``S`` must have ``epoch <= S`` — anything newer was written
  after that checkpoint into a slot the checkpoint had already given up, so its contents
  do not belong to it.

Nothing here touches a file: functions map bytes to values and back, and raise
:class:`~page_db.errors.CorruptPageError` for bytes that fail validation.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import crc32c as _crc32c

from . import _layout as L
from .errors import CorruptPageError

_crc = _crc32c.crc32c

__all__ = [
    "Superblock",
    "page_crc",
    "seal_page",
    "check_page",
    "encode_superblock",
    "decode_superblock",
    "encode_page_table_page",
    "decode_page_table_page",
    "encode_free_list_page",
    "decode_free_list_page",
]

_ACCEPTED_VERSIONS: Final = frozenset({1})


def page_crc(page: bytes | bytearray | memoryview) -> int:
    """CRC32C of a whole page with the CRC field (bytes 12..16) left out."""
    view = memoryview(page)
    return _crc(view[L.CRC_END :], _crc(view[: L.CRC_OFFSET]))


_pack_front = L.HEADER_FRONT_STRUCT.pack_into
_pack_epoch = L.EPOCH_STRUCT.pack_into
_pack_crc = L.CRC_STRUCT.pack_into


def _zero_from(page: bytes | bytearray | memoryview, start: int) -> bool:
    """Whether every byte from ``start`` on is zero (C speed: ``any()`` costs 14x more)."""
    tail = memoryview(page)[start:].tobytes()
    return tail.count(0) == len(tail)


def seal_page(page: bytearray, page_type: int, page_id: int, epoch: int) -> None:
    """Stamp the header (keeping the page's LSN) and the CRC into ``page`` in place."""
    _pack_front(page, 0, L.MAGIC, L.FORMAT_VERSION, page_type, 0, page_id, 0)
    _pack_epoch(page, L.EPOCH_OFFSET, epoch)
    _pack_crc(page, L.CRC_OFFSET, page_crc(page))


def check_page(
    page: bytes | bytearray | memoryview,
    *,
    page_size: int,
    page_type: int,
    page_id: int,
    max_epoch: int,
    slot: int,
    logical: bool,
) -> None:
    """Validate a page read from ``slot``.

    Args:
        page: the bytes read; fewer than ``page_size`` means the file was cut short.
        page_size: the store's page size.
        page_type: the type the caller expects.
        page_id: the logical id (data pages) or slot number (structural pages) expected.
        max_epoch: the newest epoch a page reachable from here may carry.
        slot: where the bytes came from, for the error message.
        logical: whether ``page_id`` is a logical id (reported as ``page_id``) or a slot.

    Raises:
        CorruptPageError: naming the page and slot and what failed.
    """
    reported_id = page_id if logical else None
    if len(page) != page_size:
        raise CorruptPageError(
            f"short read: {len(page)} of {page_size} bytes (file truncated?)",
            page_id=reported_id,
            slot=slot,
        )
    magic, version, ptype, flags, stored_id, stored_crc, lsn, epoch = L.HEADER_STRUCT.unpack_from(
        page, 0
    )
    problem = None
    if magic != L.MAGIC:
        problem = f"bad magic {magic!r}"
    elif page_crc(page) != stored_crc:
        problem = "checksum mismatch"
    elif version not in _ACCEPTED_VERSIONS:
        problem = f"unsupported format version {version}"
    elif ptype != page_type:
        got = L.PAGE_TYPE_NAMES.get(ptype, str(ptype))
        problem = f"expected a {L.PAGE_TYPE_NAMES[page_type]} page, found {got}"
    elif flags != 0:
        problem = f"unknown flags {flags:#x}"
    elif stored_id != page_id:
        problem = f"misdirected page: header says id {stored_id}, expected {page_id}"
    elif epoch > max_epoch:
        problem = f"page epoch {epoch} is newer than its checkpoint ({max_epoch})"
    elif lsn != 0 and not logical:
        problem = f"LSN {lsn} on a {L.PAGE_TYPE_NAMES[page_type]} page (must be 0)"
    if problem is not None:
        raise CorruptPageError(problem, page_id=reported_id, slot=slot)


@dataclass(frozen=True)
class Superblock:
    """The decoded contents of one superblock slot: the root of one checkpoint."""

    seq: int
    page_size: int
    slot_count: int
    next_page_id: int
    page_table_root: int
    page_table_depth: int
    free_list_head: int
    free_count: int
    meta: bytes


def encode_superblock(sb: Superblock, slot: int) -> bytearray:
    """Encode ``sb`` as the full page to write into superblock ``slot`` (0 or 1)."""
    if len(sb.meta) > L.max_meta_size(sb.page_size):
        raise ValueError("meta too large for the page size")
    page = bytearray(sb.page_size)
    L.SUPERBLOCK_STRUCT.pack_into(
        page,
        L.SUPERBLOCK_BODY_OFFSET,
        sb.page_size,
        sb.slot_count,
        sb.next_page_id,
        sb.page_table_root,
        sb.page_table_depth,
        sb.free_list_head,
        sb.free_count,
        len(sb.meta),
    )
    page[L.SUPERBLOCK_META_OFFSET : L.SUPERBLOCK_META_OFFSET + len(sb.meta)] = sb.meta
    seal_page(page, L.PAGE_TYPE_SUPERBLOCK, slot, sb.seq)
    return page


def decode_superblock(
    page: bytes | bytearray | memoryview, slot: int, page_size: int
) -> Superblock:
    """Decode and fully validate the superblock read from ``slot``.

    Raises:
        CorruptPageError: the page fails its checks or a field is out of range.
    """
    check_page(
        page,
        page_size=page_size,
        page_type=L.PAGE_TYPE_SUPERBLOCK,
        page_id=slot,
        max_epoch=(1 << 64) - 1,
        slot=slot,
        logical=False,
    )
    (seq,) = L.LSN_STRUCT.unpack_from(page, 24)
    (stored_size, slot_count, next_id, root, depth, fl_head, free_count, meta_len) = (
        L.SUPERBLOCK_STRUCT.unpack_from(page, L.SUPERBLOCK_BODY_OFFSET)
    )

    def bad(reason: str) -> CorruptPageError:
        return CorruptPageError(f"superblock: {reason}", slot=slot)

    if stored_size != page_size:
        raise bad(f"page size field {stored_size} != {page_size}")
    if seq == 0:
        raise bad("sequence number 0")
    if slot_count < L.FIRST_DATA_SLOT:
        raise bad(f"slot count {slot_count} < 2")
    if next_id < 1:
        raise bad("next page id 0")
    if free_count >= next_id:
        raise bad(f"free count {free_count} >= next page id {next_id}")
    for name, ref in (("page-table root", root), ("free-list head", fl_head)):
        if ref != 0 and not L.FIRST_DATA_SLOT <= ref < slot_count:
            raise bad(f"{name} slot {ref} outside [2, {slot_count})")
    if (next_id == 1) != (root == 0) or (next_id == 1) != (depth == 0):
        raise bad(f"page-table root {root}/depth {depth} inconsistent with next id {next_id}")
    if depth > L.MAX_PAGE_TABLE_DEPTH:
        raise bad(f"page-table depth {depth} > {L.MAX_PAGE_TABLE_DEPTH}")
    if (free_count == 0) != (fl_head == 0):
        raise bad(f"free-list head {fl_head} inconsistent with free count {free_count}")
    if meta_len > L.max_meta_size(page_size):
        raise bad(f"meta length {meta_len} exceeds the page")
    meta_end = L.SUPERBLOCK_META_OFFSET + meta_len
    meta = bytes(page[L.SUPERBLOCK_META_OFFSET : meta_end])
    if not _zero_from(page, meta_end):
        raise bad("non-zero bytes after meta")
    return Superblock(seq, page_size, slot_count, next_id, root, depth, fl_head, free_count, meta)


def _encode_u32_page(
    page_size: int,
    slot: int,
    epoch: int,
    page_type: int,
    first: int,
    entries: Sequence[int],
) -> bytearray:
    if len(entries) > L.entries_per_page(page_size):
        raise ValueError("too many entries for one page")
    page = bytearray(page_size)
    L.PAGE_TABLE_STRUCT.pack_into(page, L.PAGE_HEADER_SIZE, first, len(entries))
    start = L.PAGE_TABLE_ENTRIES_OFFSET
    struct.pack_into(f"<{len(entries)}I", page, start, *entries)
    seal_page(page, page_type, slot, epoch)
    return page


def _decode_u32_page(
    page: bytes | bytearray | memoryview,
    *,
    page_size: int,
    slot: int,
    max_epoch: int,
    page_type: int,
) -> tuple[int, list[int]]:
    check_page(
        page,
        page_size=page_size,
        page_type=page_type,
        page_id=slot,
        max_epoch=max_epoch,
        slot=slot,
        logical=False,
    )
    first, count = L.PAGE_TABLE_STRUCT.unpack_from(page, L.PAGE_HEADER_SIZE)
    capacity = L.entries_per_page(page_size)
    if count > capacity:
        kind = L.PAGE_TYPE_NAMES[page_type]
        raise CorruptPageError(f"{kind} page: entry count {count} > {capacity}", slot=slot)
    end = L.PAGE_TABLE_ENTRIES_OFFSET + 4 * count
    if not _zero_from(page, end):
        kind = L.PAGE_TYPE_NAMES[page_type]
        raise CorruptPageError(f"{kind} page: non-zero bytes after {count} entries", slot=slot)
    return first, list(struct.unpack_from(f"<{count}I", page, L.PAGE_TABLE_ENTRIES_OFFSET))


def encode_page_table_page(
    page_size: int, slot: int, epoch: int, level: int, entries: Sequence[int]
) -> bytearray:
    """Encode one page-table page (``level`` 0 = leaf of data-page slots)."""
    return _encode_u32_page(page_size, slot, epoch, L.PAGE_TYPE_PAGE_TABLE, level, entries)


def decode_page_table_page(
    page: bytes | bytearray | memoryview,
    *,
    page_size: int,
    slot: int,
    max_epoch: int,
    level: int,
) -> list[int]:
    """Decode a page-table page and check it sits at ``level`` of the tree.

    Raises:
        CorruptPageError: the page fails its checks or is at the wrong level.
    """
    stored_level, entries = _decode_u32_page(
        page, page_size=page_size, slot=slot, max_epoch=max_epoch, page_type=L.PAGE_TYPE_PAGE_TABLE
    )
    if stored_level != level:
        raise CorruptPageError(
            f"page-table page at level {stored_level}, expected level {level}", slot=slot
        )
    return entries


def encode_free_list_page(
    page_size: int, slot: int, epoch: int, next_slot: int, page_ids: Sequence[int]
) -> bytearray:
    """Encode one free-list page holding ``page_ids`` and linking to ``next_slot``."""
    return _encode_u32_page(page_size, slot, epoch, L.PAGE_TYPE_FREE_LIST, next_slot, page_ids)


def decode_free_list_page(
    page: bytes | bytearray | memoryview, *, page_size: int, slot: int, max_epoch: int
) -> tuple[int, list[int]]:
    """Decode a free-list page into ``(next_slot, page_ids)``.

    Raises:
        CorruptPageError: the page fails its checks.
    """
    return _decode_u32_page(
        page, page_size=page_size, slot=slot, max_epoch=max_epoch, page_type=L.PAGE_TYPE_FREE_LIST
    )
