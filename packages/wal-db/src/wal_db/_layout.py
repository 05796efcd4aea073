"""Byte layout of wal-db format 1: every width, offset and struct in one place.

Theory of operation
-------------------
A log is a directory of *segment files* named ``<segment number, 20 digits>.wal``. Each
segment starts with a 64-byte header and is followed by *frames*, one per record, packed
back to back. A frame never crosses a segment boundary. ``docs/FORMAT.md`` is the normative
description; this module mirrors its tables.

Segment header (64 bytes, little-endian)::

    OFFSET SIZE FIELD
         0    8 magic            b"STRWAL\\r\\n"
         8    2 format version   1
        10    2 flags            0 (reserved)
        12    4 reserved         0
        16    8 segment number   >= 1, consecutive within a log
        24    8 first LSN        LSN of the segment's first frame (>= 1)
        32   16 log id           random, identical in every segment of one log
        48   12 reserved         0
        60    4 CRC32C           of bytes 0..60

Frame (24-byte header, then the payload)::

    OFFSET SIZE FIELD
         0    4 length           payload length in bytes
         4    4 CRC32C           of bytes 0..4, then 8..24+length (the length is covered)
         8    8 LSN              this record's LSN
        16    8 synced LSN       the log's durable LSN when this frame was written
        24    n payload
"""

from __future__ import annotations

import struct
from typing import Final

MAGIC: Final = b"STRWAL\r\n"
FORMAT_VERSION: Final = 1

SEGMENT_HEADER = struct.Struct("<8sHHIQQ16s12sI")
SEGMENT_HEADER_SIZE: Final = 64
SEGMENT_HEADER_CRC_SPAN: Final = 60  # the CRC covers bytes [0, 60)

FRAME_HEADER = struct.Struct("<IIQQ")
FRAME_HEADER_SIZE: Final = 24
FRAME_LENGTH = struct.Struct("<I")
FRAME_TAIL = struct.Struct("<QQ")  # LSN, synced LSN: bytes 8..24 of a frame
CRC_PREFIX = struct.Struct("<IQQ")  # length, LSN, synced LSN: what the CRC covers first
LSN_FIELD = struct.Struct("<Q")
LSN_OFFSET: Final = 8

LOG_ID_SIZE: Final = 16
SEGMENT_SUFFIX: Final = ".wal"
TEMP_SUFFIX: Final = ".wal.tmp"
SEGMENT_DIGITS: Final = 20
LOCK_NAME: Final = "LOCK"

MAX_LENGTH_FIELD: Final = 0xFFFF_FFFF
MAX_U64: Final = 0xFFFF_FFFF_FFFF_FFFF

DEFAULT_SEGMENT_SIZE: Final = 64 * 1024 * 1024
DEFAULT_MAX_RECORD_SIZE: Final = 64 * 1024 * 1024
MIN_SEGMENT_SIZE: Final = 4096

# How many LSNs past the first bad frame the tail check looks for (FORMAT.md, "Tail").
RESYNC_WINDOW: Final = 64

assert SEGMENT_HEADER.size == SEGMENT_HEADER_SIZE
assert FRAME_HEADER.size == FRAME_HEADER_SIZE


def segment_name(number: int) -> str:
    """The file name of segment ``number``."""
    return f"{number:0{SEGMENT_DIGITS}d}{SEGMENT_SUFFIX}"


def temp_name(number: int) -> str:
    """The name a new segment is written under before its rename."""
    return f"{number:0{SEGMENT_DIGITS}d}{TEMP_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The segment number a file name denotes, or None for any other file."""
    stem = name[: -len(SEGMENT_SUFFIX)]
    if not name.endswith(SEGMENT_SUFFIX) or len(stem) != SEGMENT_DIGITS or not stem.isdigit():
        return None
    return int(stem)


def is_temp_name(name: str) -> bool:
    """True for a leftover of an interrupted segment creation."""
    stem = name[: -len(TEMP_SUFFIX)]
    return name.endswith(TEMP_SUFFIX) and len(stem) == SEGMENT_DIGITS and stem.isdigit()
