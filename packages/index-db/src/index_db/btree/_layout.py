"""Byte layout of the B+tree's pages and meta record: every width, offset and struct.

The single source of truth for the numbers in ``docs/FORMAT.md``. All integers
are little-endian. Offsets are relative to the page *payload* (page-db's 32-byte page
header comes before it and is page-db's business).

Node header (leaf and branch pages, 16 bytes)::

    offset size field
     0      1   kind: 0x4C 'L' leaf, 0x42 'B' branch
     1      1   level: 0 for leaves, child level + 1 for branches
     2      2   count: entries (leaf) or separator keys (branch)
     4      2   top: leaf only, offset of the lowest cell (start of the cell heap)
     6      2   garbage: leaf only, bytes of dead cells inside the heap
     8      4   next: leaf only, page id of the right sibling leaf (0 = none)
    12      4   reserved, 0

Overflow page header (12 bytes): kind 0x4F 'O', 3 zero bytes, next page id (u32, 0 ends
the chain), bytes of value data in this page (u32).

Meta record (20 bytes, what :meth:`BTree.meta` returns): magic ``b"IXBT"``, version (u16),
reserved (u16, 0), root page id (u32), key count (u64).
"""

from __future__ import annotations

import struct
from typing import Final

KIND_LEAF: Final = 0x4C
KIND_BRANCH: Final = 0x42
KIND_OVERFLOW: Final = 0x4F

NODE_HEADER: Final = struct.Struct("<BBHHHII")
HEADER_SIZE: Final = NODE_HEADER.size  # 16
COUNT_STRUCT: Final = struct.Struct("<HH")  # count, top at offset 2
COUNT_OFFSET: Final = 2
GARBAGE_STRUCT: Final = struct.Struct("<H")
GARBAGE_OFFSET: Final = 6

SLOT: Final = struct.Struct("<H")
SLOT_SIZE: Final = 2
CELL: Final = struct.Struct("<HI")  # key length, value length (| OVERFLOW_FLAG)
CELL_HEADER_SIZE: Final = CELL.size  # 6
OVERFLOW_FLAG: Final = 1 << 31
LENGTH_MASK: Final = OVERFLOW_FLAG - 1
OVERFLOW_REF: Final = struct.Struct("<I")  # first overflow page id, inline in the cell
OVERFLOW_REF_SIZE: Final = OVERFLOW_REF.size  # 4

CHILD_SIZE: Final = 4  # u32 child page id in a branch
KEYLEN_SIZE: Final = 2  # u16 key length in a branch
BRANCH_KEY_COST: Final = CHILD_SIZE + KEYLEN_SIZE

OVERFLOW_HEADER: Final = struct.Struct("<BxxxII")
OVERFLOW_HEADER_SIZE: Final = OVERFLOW_HEADER.size  # 12

META: Final = struct.Struct("<4sHHIQ")
META_MAGIC: Final = b"IXBT"
META_VERSION: Final = 1
META_SIZE: Final = META.size  # 20

MAX_VALUE_SIZE: Final = 1 << 30
"""Largest value accepted (1 GiB); larger ones raise ``ValueTooLargeError``."""

MAX_HEIGHT: Final = 32
"""Deepest tree a reader follows; a deeper path means a cycle or corrupt levels."""


def capacity(payload_size: int) -> int:
    """Bytes of a node page usable for slots and cells (the payload minus the header)."""
    return payload_size - HEADER_SIZE


def max_cell(payload_size: int) -> int:
    """Largest leaf cell (slot included) or branch entry: a quarter of the capacity.

    Four of the biggest cells fit in one node, so a split or a redistribution always
    leaves both halves at least a quarter full.
    """
    return capacity(payload_size) // 4


def max_key_size(payload_size: int) -> int:
    """Longest key: a leaf cell holding it with an overflow reference is ``max_cell``."""
    return max_cell(payload_size) - SLOT_SIZE - CELL_HEADER_SIZE - OVERFLOW_REF_SIZE


def min_fill(payload_size: int) -> int:
    """Used bytes below which a non-root node is merged or redistributed."""
    return capacity(payload_size) // 4
