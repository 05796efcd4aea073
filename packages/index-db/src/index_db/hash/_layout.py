"""Byte layout of the hash index's pages: every width, offset and struct format.

All integers are little-endian. Every page of the index starts with the same four bytes:
magic ``b"HX"``, a page kind and the hash format version. The tables below are mirrored
in ``docs/FORMAT.md``.

Root page (kind 1) — the page id the caller keeps::

    OFFSET SIZE DESCRIPTION
     0      2   magic b"HX"
     2      1   kind = 1
     3      1   format version = 1
     4      1   global depth g (0 .. max depth)
     5      1   max depth (fixed by the page size when the index is created)
     6      2   reserved, 0
     8      8   entry count (u64)
    16      4   bucket count: distinct primary bucket pages (u32)
    20      4   directory page count n (u32) = ceil(2**g / entries per directory page)
    24     4n   directory page ids (u32 each)

Directory page (kind 2)::

     0      4   magic, kind = 2, version
     4      4   index of the first directory slot on this page (u32)
     8      4   slot count m on this page (u32)
    12      4   reserved, 0
    16     4m   bucket page id of each slot (u32, never 0)

Bucket page (kind 3 = primary, kind 4 = overflow)::

     0      4   magic, kind, version
     4      1   local depth d (0 .. g)
     5      1   reserved, 0
     6      2   record count (u16)
     8      4   hash prefix: the low d bits every key on the page hashes to (u32)
    12      4   next overflow page id (u32, 0 = end of chain)
    16      4   position in the chain (u32: 0 for the primary page, +1 per overflow page)
    20      2   record bytes r: the records end at offset 24 + r (u16)
    22      2   reserved, 0
    24      r   records, packed: key length (u16), value length (u16), key, value

Bytes after the last record are zero.
"""

from __future__ import annotations

import struct
from typing import Final

MAGIC: Final = b"HX"
FORMAT_VERSION: Final = 1

KIND_ROOT: Final = 1
KIND_DIRECTORY: Final = 2
KIND_BUCKET: Final = 3
KIND_OVERFLOW: Final = 4

PREFIX_STRUCT: Final = struct.Struct("<2sBB")

ROOT_STRUCT: Final = struct.Struct("<2sBBBBHQII")
ROOT_HEADER_SIZE: Final = ROOT_STRUCT.size  # 24
COUNT_OFFSET: Final = 8
COUNT_STRUCT: Final = struct.Struct("<Q")

DIRECTORY_STRUCT: Final = struct.Struct("<2sBBIII")
DIRECTORY_HEADER_SIZE: Final = DIRECTORY_STRUCT.size  # 16

BUCKET_STRUCT: Final = struct.Struct("<2sBBBBHIIIHH")
BUCKET_HEADER_SIZE: Final = BUCKET_STRUCT.size  # 24
RECORD_COUNT_OFFSET: Final = 6
RECORD_COUNT_STRUCT: Final = struct.Struct("<H")
RECORD_BYTES_OFFSET: Final = 20
RECORD_BYTES_STRUCT: Final = struct.Struct("<H")

RECORD_STRUCT: Final = struct.Struct("<HH")
RECORD_HEADER_SIZE: Final = RECORD_STRUCT.size  # 4

PAGE_ID_SIZE: Final = 4
MAX_PAGE_ID: Final = 0xFFFFFFFF
MAX_DEPTH_LIMIT: Final = 32  # the hash prefix is a u32
MAX_KEY_SIZE: Final = 1024


def directory_slots_per_page(payload_size: int) -> int:
    """How many directory slots one directory page holds."""
    return (payload_size - DIRECTORY_HEADER_SIZE) // PAGE_ID_SIZE


def root_directory_capacity(payload_size: int) -> int:
    """How many directory page ids the root page holds."""
    return (payload_size - ROOT_HEADER_SIZE) // PAGE_ID_SIZE


def max_depth_for(payload_size: int) -> int:
    """The largest global depth whose directory the root can address (19 for 4 KiB pages)."""
    slots = directory_slots_per_page(payload_size) * root_directory_capacity(payload_size)
    return min(MAX_DEPTH_LIMIT, slots.bit_length() - 1)


def bucket_capacity(payload_size: int) -> int:
    """Bytes available to records on one bucket page."""
    return payload_size - BUCKET_HEADER_SIZE


def max_value_size(payload_size: int) -> int:
    """The largest value: one record with a maximum-size key must fit on one page."""
    return bucket_capacity(payload_size) - RECORD_HEADER_SIZE - MAX_KEY_SIZE
