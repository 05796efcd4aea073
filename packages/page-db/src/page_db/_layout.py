"""Byte layout of page-db's on-disk structures: every width, offset and struct format.

This module is the single source of truth for the numbers in ``docs/FORMAT.md``; nothing
else in the package spells a byte offset. All integers are little-endian.

A file is an array of *slots* of ``page_size`` bytes. Slot 0 and slot 1 hold the two
alternating superblocks; every other slot holds one page (data, page-table or free-list)
or is free. Every page, superblocks included, starts with the 32-byte header below.
"""

from __future__ import annotations

import struct
from typing import Final, NewType

PageId = NewType("PageId", int)
"""A logical page id as seen by the layer above (1 .. 2**32 - 1; 0 means "no page")."""

SlotNo = NewType("SlotNo", int)
"""A physical slot number: the page at byte offset ``slot * page_size`` of the file."""

MAGIC: Final = b"STPG"
FORMAT_VERSION: Final = 1
"""Current on-disk format version. Readers accept every version of the same major (1)."""

MIN_PAGE_SIZE: Final = 4096
MAX_PAGE_SIZE: Final = 65536
DEFAULT_PAGE_SIZE: Final = 4096
VALID_PAGE_SIZES: Final = tuple(1 << shift for shift in range(12, 17))

# --- page header (every page) ------------------------------------------------------------
# offset size field
#  0      4   magic  b"STPG"
#  4      2   format version (u16)
#  6      1   page type (u8)
#  7      1   flags (u8, must be 0 in format 1)
#  8      4   page id (u32): logical id for data pages, own slot number for the others
# 12      4   CRC32C (u32) of the whole page with these four bytes taken out
# 16      8   LSN (u64), opaque to page-db, set by the layer above
# 24      8   epoch (u64): checkpoint sequence number the page was written under
HEADER_STRUCT: Final = struct.Struct("<4sHBBIIQQ")
HEADER_FRONT_STRUCT: Final = struct.Struct("<4sHBBII")  # bytes 0..16: the LSN stays as is
EPOCH_STRUCT: Final = struct.Struct("<Q")
EPOCH_OFFSET: Final = 24
PAGE_HEADER_SIZE: Final = HEADER_STRUCT.size  # 32
CRC_OFFSET: Final = 12
CRC_END: Final = 16
LSN_STRUCT: Final = struct.Struct("<Q")
LSN_OFFSET: Final = 16
CRC_STRUCT: Final = struct.Struct("<I")

PAGE_TYPE_SUPERBLOCK: Final = 1
PAGE_TYPE_PAGE_TABLE: Final = 2
PAGE_TYPE_FREE_LIST: Final = 3
PAGE_TYPE_DATA: Final = 4
PAGE_TYPE_NAMES: Final = {
    PAGE_TYPE_SUPERBLOCK: "superblock",
    PAGE_TYPE_PAGE_TABLE: "page-table",
    PAGE_TYPE_FREE_LIST: "free-list",
    PAGE_TYPE_DATA: "data",
}

# --- superblock body (after the header; the header's epoch is the checkpoint sequence) -----
# 32  4  page size (u32)
# 36  4  slot count (u32): slots [0, slot count) exist; every reference is below it
# 40  4  next page id (u32): logical ids [1, next page id) are either mapped or free
# 44  4  page-table root slot (u32, 0 when next page id == 1)
# 48  4  page-table depth (u32, 0 when next page id == 1)
# 52  4  free-list head slot (u32, 0 when empty)
# 56  4  free id count (u32)
# 60  4  meta length (u32)
# 64  .. meta bytes, then zero padding to the end of the page
SUPERBLOCK_STRUCT: Final = struct.Struct("<IIIIIIII")
SUPERBLOCK_BODY_OFFSET: Final = PAGE_HEADER_SIZE
SUPERBLOCK_META_OFFSET: Final = PAGE_HEADER_SIZE + SUPERBLOCK_STRUCT.size  # 64
SUPERBLOCK_SLOTS: Final = (SlotNo(0), SlotNo(1))
FIRST_DATA_SLOT: Final = SlotNo(2)

# --- page-table page body ---------------------------------------------------------------
# 32  4  level (u32): 0 for leaves (entries are data-page slots), n for the level above n-1
# 36  4  entry count (u32)
# 40  .. entries, u32 each; a leaf entry of 0 means "logical id not mapped"
PAGE_TABLE_STRUCT: Final = struct.Struct("<II")
PAGE_TABLE_ENTRIES_OFFSET: Final = PAGE_HEADER_SIZE + PAGE_TABLE_STRUCT.size  # 40

# --- free-list page body ----------------------------------------------------------------
# 32  4  next free-list page slot (u32, 0 at the end of the chain)
# 36  4  entry count (u32)
# 40  .. free logical page ids, u32 each
FREE_LIST_STRUCT: Final = struct.Struct("<II")
FREE_LIST_ENTRIES_OFFSET: Final = PAGE_HEADER_SIZE + FREE_LIST_STRUCT.size  # 40

ENTRY_SIZE: Final = 4
MAX_PAGE_ID: Final = 0xFFFFFFFF
MAX_SLOT: Final = 0xFFFFFFFF
MAX_PAGE_TABLE_DEPTH: Final = 8


def entries_per_page(page_size: int) -> int:
    """Number of u32 entries a page-table or free-list page holds."""
    return (page_size - PAGE_TABLE_ENTRIES_OFFSET) // ENTRY_SIZE


def max_meta_size(page_size: int) -> int:
    """Largest ``meta`` a checkpoint can carry with this page size."""
    return page_size - SUPERBLOCK_META_OFFSET
