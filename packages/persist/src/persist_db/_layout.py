"""Byte layout of the persist-db snapshot format 1.0: every width and offset in one place.

Theory of operation
-------------------
A snapshot file is an 80-byte header, then an optional *meta* block (UTF-8 JSON), then the
*payload*, stored raw or compressed, back to back with nothing after it::

    [ header: 80 bytes ][ meta: meta length bytes ][ payload: payload length bytes ]

The first 16 bytes (magic, major, minor, header length) keep their meaning in every
format version, so a reader can always find the header CRC (the header's last 4 bytes)
before it trusts any other field: damage is reported as corruption, and only a header
whose checksum holds but whose version is unknown is reported as unsupported.

Header (80 bytes, little-endian)::

    OFFSET SIZE FIELD
         0    8 magic               b"STRSNP\\r\\n"
         8    2 format major        1
        10    2 format minor        0
        12    4 header length       80
        16    2 flags               0 (reserved)
        18    1 compression         0 none, 1 zstd, 2 lz4
        19    1 kind length         1..16
        20   16 kind                printable ASCII, zero-padded
        36    2 object version      1..65535 (the object's own payload format)
        38    2 reserved            0
        40    4 meta length         0..MAX_META_LENGTH (0: no meta)
        44    4 meta CRC32C         of the meta bytes
        48    8 payload length      stored (possibly compressed) bytes
        56    8 uncompressed length the payload's length after decompression
        64    8 created             nanoseconds since the Unix epoch (signed)
        72    4 payload CRC32C      of the stored payload bytes
        76    4 header CRC32C       of bytes 0..76

``docs/FORMAT.md`` is the normative description; this module mirrors its tables.
"""

from __future__ import annotations

import struct
from typing import Final

MAGIC: Final = b"STRSNP\r\n"
FORMAT_MAJOR: Final = 1
FORMAT_MINOR: Final = 0
# Every minor version of major 1 this reader understands, oldest first.
READABLE_MINORS: Final = frozenset({0})

HEADER = struct.Struct("<8sHHIHBB16sHHIIQQqII")
HEADER_SIZE: Final = 80
HEADER_CRC_SPAN: Final = 76
PREAMBLE = struct.Struct("<8sHHI")  # magic, major, minor, header length
PREAMBLE_SIZE: Final = 16
MAX_HEADER_LENGTH: Final = 4096  # what any 1.x reader will read before checking the CRC

COMPRESSION_NONE: Final = 0
COMPRESSION_ZSTD: Final = 1
COMPRESSION_LZ4: Final = 2
COMPRESSION_CODES: Final = {None: 0, "none": 0, "zstd": 1, "lz4": 2}
COMPRESSION_NAMES: Final = {0: None, 1: "zstd", 2: "lz4"}

MAX_KIND_LENGTH: Final = 16
MAX_VERSION: Final = 0xFFFF
MAX_META_LENGTH: Final = 1 << 20
MAX_U64: Final = 0xFFFF_FFFF_FFFF_FFFF

# The largest ratio of uncompressed to stored bytes each codec can produce: a declared
# uncompressed length above stored length x ratio (+ slack) is corrupt before anything
# is allocated. zstd: a 128 KiB RLE block costs 4 bytes (32768:1). lz4: a frame's best
# case is about 255:1.
MAX_RATIO: Final = {COMPRESSION_NONE: 1, COMPRESSION_ZSTD: 32768, COMPRESSION_LZ4: 256}
RATIO_SLACK: Final = 1 << 17

IO_CHUNK: Final = 1 << 20  # streaming read and buffered write size
TEMP_SUFFIX: Final = ".tmp"

assert HEADER.size == HEADER_SIZE
assert PREAMBLE.size == PREAMBLE_SIZE
