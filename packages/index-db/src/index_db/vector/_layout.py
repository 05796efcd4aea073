"""Byte layout of the vector snapshot payload and of the vector operations (format 1).

All integers and floats are little-endian. See ``docs/FORMAT.md``.

Payload: ``HEADER``, then for HNSW ``HNSW_PARAMS``, then the sections::

    id_types   u8[count]          0 = int id, 1 = str id
    id_values  i64[count]         the int id, or the UTF-8 byte length of the str id
    strings    u8[strings_length] the str ids' UTF-8 bytes, concatenated in order
    vectors    f32[count * dim]   row i is the vector of id i (unit length under cosine)
    (HNSW only)
    levels     u8[count]          each node's top layer
    adj0       i32[count * m0]    layer-0 neighbour lists, -1 padded at the end
    adj0_d     f32[count * m0]    matching distances (+inf for padding)
    upper      i32[u * m]         for layer 1..max_level, the lists of the nodes at
                                  that layer in node order; u = sum(levels)
    upper_d    f32[u * m]         matching distances

Operation: ``OP_ADD`` or ``OP_REMOVE`` (one byte), the id (one type byte, then an
``i64`` or a ``u32`` length and the UTF-8 bytes), and for ``OP_ADD`` a ``u32`` dimension
and that many ``f32``.
"""

from __future__ import annotations

import struct

MAGIC = b"IXVS"
FORMAT_VERSION = 1

TYPE_FLAT = 1
TYPE_HNSW = 2

# magic, index type, metric, flags, dim, count, strings_length
HEADER = struct.Struct("<4sBBHIIQ")
# M, M0, ef_construction, ef_search, entry, max_level, reserved u8, reserved u16, seed
HNSW_PARAMS = struct.Struct("<HHIIiBBHQ")

ID_INT = 0
ID_STR = 1

OP_ADD = ord("A")
OP_REMOVE = ord("R")
OP_ID_INT = struct.Struct("<Bq")
OP_STR_LEN = struct.Struct("<I")
OP_DIM = struct.Struct("<I")

MAX_LEVELS = 32  # a node's level is at most this (a level draw is capped there)
MAX_WIDTH = 1024  # m0 = 2 * M with M <= 512
