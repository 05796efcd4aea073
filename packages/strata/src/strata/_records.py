"""Byte layouts strata writes below the value codec: WAL commit records, B+tree entries and
the checkpoint meta (docs/FORMAT.md, "WAL record", "B+tree entries", "Checkpoint meta").

Every decoder checks lengths against the buffer before slicing and raises
:class:`~strata.errors.CorruptionError` for anything malformed, never another exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import crc32c

from .errors import CorruptionError

RECORD_COMMIT: Final = 1
OP_PUT: Final = 1
OP_DELETE: Final = 2
OP_SYSTEM: Final = 3  # a system setting (key names it, value is its JSON); not a user key

# One op of a commit: (encoded key, encoded value or None for a delete); system ops carry
# their kind separately.
Op = tuple[bytes, "bytes | None"]

_COMMIT_HEAD = struct.Struct("<BQQI")  # type, version, timestamp ns, op count
_OP_HEAD = struct.Struct("<BH")  # op, key length
_U32 = struct.Struct("<I")
_U64_BE = struct.Struct(">Q")
_U64_MAX: Final = (1 << 64) - 1
MAX_OPS: Final = (1 << 32) - 1


def encode_commit(version: int, ts_ns: int, ops: list[tuple[int, bytes, bytes | None]]) -> bytes:
    """One commit's WAL payload.

    Args:
        version: the commit version (u64, ≥ 1).
        ts_ns: the commit timestamp in nanoseconds since the Unix epoch (u64).
        ops: ``(op, encoded key, encoded value)`` in the order they are applied;
            ``value`` is ``None`` exactly for ``OP_DELETE``.

    Returns:
        The payload bytes (FORMAT.md, "WAL record").
    """
    parts = [_COMMIT_HEAD.pack(RECORD_COMMIT, version, ts_ns, len(ops))]
    append = parts.append
    op_head = _OP_HEAD.pack
    u32 = _U32.pack
    for op, key, value in ops:
        append(op_head(op, len(key)))
        append(key)
        if value is not None:
            append(u32(len(value)))
            append(value)
    return b"".join(parts)


def decode_commit(payload: bytes) -> tuple[int, int, list[tuple[int, bytes, bytes | None]]]:
    """Parse a payload made by :func:`encode_commit`.

    Returns:
        ``(version, ts_ns, ops)``.

    Raises:
        CorruptionError: the payload is not a well-formed commit record.
    """
    n = len(payload)
    if n < _COMMIT_HEAD.size:
        raise CorruptionError(f"WAL record of {n} bytes is shorter than a commit header")
    kind, version, ts_ns, count = _COMMIT_HEAD.unpack_from(payload, 0)
    if kind != RECORD_COMMIT:
        raise CorruptionError(f"WAL record type {kind} is not a commit (1)")
    if version == 0:
        raise CorruptionError("WAL commit record has version 0")
    pos = _COMMIT_HEAD.size
    # every op takes at least 3 bytes: a count past that cannot be real (no huge allocation)
    if count > (n - pos) // 3:
        raise CorruptionError(f"WAL commit record claims {count} ops in {n} bytes")
    ops: list[tuple[int, bytes, bytes | None]] = []
    for _ in range(count):
        if pos + 3 > n:
            raise CorruptionError("WAL commit record ends inside an op header")
        op, klen = _OP_HEAD.unpack_from(payload, pos)
        pos += 3
        if pos + klen > n:
            raise CorruptionError("WAL commit record ends inside a key")
        key = payload[pos : pos + klen]
        pos += klen
        if op != OP_SYSTEM and not (
            klen >= 2 and key[0] >= 1 and klen >= key[0] + 2 and key[key[0] + 1] in (1, 2)
        ):
            raise CorruptionError("WAL commit record holds a malformed encoded key")
        value: bytes | None = None
        if op in (OP_PUT, OP_SYSTEM):
            if pos + 4 > n:
                raise CorruptionError("WAL commit record ends inside a value length")
            (vlen,) = _U32.unpack_from(payload, pos)
            pos += 4
            if pos + vlen > n:
                raise CorruptionError("WAL commit record ends inside a value")
            value = payload[pos : pos + vlen]
            pos += vlen
        elif op != OP_DELETE:
            raise CorruptionError(f"WAL commit record has unknown op {op}")
        ops.append((op, key, value))
    if pos != n:
        raise CorruptionError(f"WAL commit record has {n - pos} bytes after its last op")
    return version, ts_ns, ops


# --- B+tree entries: one per retained version -------------------------------------------

FLAG_TOMBSTONE: Final = 0x01
FLAG_PRUNED: Final = 0x02  # on the oldest retained version: older ones were removed by GC
_ENTRY_HEAD = struct.Struct("<BQ")  # flags, timestamp ns
SYSTEM_PREFIX: Final = b"\x00"  # tree keys of system settings; user prefixes start ≥ 0x01


def tree_key(ekey: bytes, version: int) -> bytes:
    """The B+tree key of one version: the encoded key, then the inverted version (u64 BE)."""
    return ekey + (_U64_MAX - version).to_bytes(8, "big")


def split_tree_key(tkey: bytes) -> tuple[bytes, int]:
    """Inverse of :func:`tree_key`. Raises CorruptionError if too short."""
    if len(tkey) < 9:
        raise CorruptionError(f"B+tree key of {len(tkey)} bytes is too short for a version key")
    return tkey[:-8], _U64_MAX - _U64_BE.unpack_from(tkey, len(tkey) - 8)[0]


def encode_entry(ts_ns: int, value: bytes | None, pruned: bool = False) -> bytes:
    """The B+tree value of one version: flags, timestamp, then the encoded value (if any)."""
    flags = (FLAG_TOMBSTONE if value is None else 0) | (FLAG_PRUNED if pruned else 0)
    head = _ENTRY_HEAD.pack(flags, ts_ns)
    return head if value is None else head + value


def decode_entry(data: bytes) -> tuple[int, bytes | None, bool]:
    """Inverse of :func:`encode_entry`: ``(ts_ns, value or None, pruned)``."""
    if len(data) < _ENTRY_HEAD.size:
        raise CorruptionError(f"B+tree entry of {len(data)} bytes is shorter than its header")
    flags, ts_ns = _ENTRY_HEAD.unpack_from(data, 0)
    if flags & ~(FLAG_TOMBSTONE | FLAG_PRUNED):
        raise CorruptionError(f"B+tree entry has unknown flags {flags:#04x}")
    if flags & FLAG_TOMBSTONE:
        if len(data) != _ENTRY_HEAD.size:
            raise CorruptionError("B+tree tombstone entry carries a value")
        return ts_ns, None, bool(flags & FLAG_PRUNED)
    return ts_ns, data[_ENTRY_HEAD.size :], bool(flags & FLAG_PRUNED)


# --- checkpoint meta ---------------------------------------------------------------------

META_MAGIC: Final = b"STRM"
META_FORMAT: Final = 1
_META = struct.Struct("<4sHH16s20sQQQQQQ")
META_SIZE: Final = _META.size + 4


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint records beside the pages (FORMAT.md, "Checkpoint meta")."""

    db_id: bytes
    tree: bytes
    lsn: int
    version: int
    ts_ns: int
    swept_version: int
    swept_ts_ns: int
    time_ns: int

    def encode(self) -> bytes:
        """The meta bytes, CRC32C last."""
        body = _META.pack(
            META_MAGIC,
            META_FORMAT,
            0,
            self.db_id,
            self.tree,
            self.lsn,
            self.version,
            self.ts_ns,
            self.swept_version,
            self.swept_ts_ns,
            self.time_ns,
        )
        return body + _U32.pack(crc32c.crc32c(body))

    @classmethod
    def decode(cls, data: bytes) -> CheckpointMeta:
        """Parse and check checkpoint meta bytes.

        Raises:
            CorruptionError: wrong length, magic, CRC or an unknown format version.
        """
        if len(data) != META_SIZE:
            raise CorruptionError(f"checkpoint meta is {len(data)} bytes, expected {META_SIZE}")
        body = data[:-4]
        (crc,) = _U32.unpack_from(data, META_SIZE - 4)
        if crc32c.crc32c(body) != crc:
            raise CorruptionError("checkpoint meta fails its CRC32C")
        magic, fmt, _flags, db_id, tree, lsn, version, ts_ns, swept, swept_ts, time_ns = (
            _META.unpack(body)
        )
        if magic != META_MAGIC:
            raise CorruptionError(f"checkpoint meta magic {magic!r} is not {META_MAGIC!r}")
        if fmt != META_FORMAT:
            raise CorruptionError(f"checkpoint meta format {fmt} is not supported (1)")
        return cls(db_id, tree, lsn, version, ts_ns, swept, swept_ts, time_ns)
