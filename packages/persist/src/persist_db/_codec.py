"""Pure encoding and validation of the snapshot header and meta block (no I/O).

Theory of operation
-------------------
:func:`encode_header` packs the fields of ``_layout.HEADER`` and seals them with the
header CRC32C. :func:`decode_header` is the reader's gate. It takes the header bytes and
the file size, and checks in this order:

1. the magic (anything else is not a snapshot file);
2. the header length in the preamble, bounded by the file size and ``MAX_HEADER_LENGTH``;
3. the header CRC32C, the header's last 4 bytes, so every later field is trusted only
   once the checksum holds;
4. the format version (major 1 and a known minor, else :class:`UnsupportedFormatError`);
5. every field's range, and that header + meta + payload is exactly the file size.

Steps 1-3 and 5 raise :class:`CorruptSnapshotError` naming the field and its offset. A
length is never used to allocate before step 5 has bounded it by the file size. The meta
block is JSON (UTF-8, compact, no NaN), checked by its own CRC32C.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crc32c import crc32c

from . import _layout as L
from .errors import CorruptSnapshotError, UnsupportedFormatError

__all__ = [
    "Header",
    "check_kind",
    "check_version",
    "decode_header",
    "decode_meta",
    "encode_header",
    "encode_meta",
    "header_length_of",
]


@dataclass(frozen=True)
class Header:
    """The validated fields of a snapshot header."""

    minor: int
    compression: int
    kind: str
    version: int
    meta_length: int
    meta_crc: int
    stored_length: int
    uncompressed_length: int
    created_ns: int
    payload_crc: int

    @property
    def meta_offset(self) -> int:
        """Where the meta block starts."""
        return L.HEADER_SIZE

    @property
    def payload_offset(self) -> int:
        """Where the stored payload starts."""
        return L.HEADER_SIZE + self.meta_length


def check_kind(kind: object) -> bytes:
    """Validate a kind tag: 1..16 printable ASCII characters. Returns it encoded.

    Raises:
        TypeError: not a ``str``.
        ValueError: empty, too long, or not printable ASCII.
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, not {type(kind).__name__}")
    raw = kind.encode("ascii", "replace")
    if not 1 <= len(raw) <= L.MAX_KIND_LENGTH or not kind.isascii() or not kind.isprintable():
        raise ValueError(
            f"kind must be 1..{L.MAX_KIND_LENGTH} printable ASCII characters, got {kind!r}"
        )
    return raw


def check_version(version: object) -> int:
    """Validate an object format version (1..65535).

    Raises:
        TypeError: not an ``int``.
        ValueError: out of range.
    """
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version must be an int, not {type(version).__name__}")
    if not 1 <= version <= L.MAX_VERSION:
        raise ValueError(f"version must be in 1..{L.MAX_VERSION}, got {version}")
    return version


def encode_meta(meta: Any) -> bytes:
    """Encode ``meta`` as compact UTF-8 JSON; ``None`` is no meta at all (``b""``).

    Raises:
        TypeError: a value JSON cannot represent.
        ValueError: NaN or infinity, a circular reference, or more than 1 MiB encoded.
    """
    if meta is None:
        return b""
    text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    raw = text.encode("utf-8")
    if len(raw) > L.MAX_META_LENGTH:
        raise ValueError(f"meta is {len(raw)} bytes encoded; the limit is {L.MAX_META_LENGTH}")
    return raw


def decode_meta(raw: bytes, header: Header, path: str | None) -> Any:
    """Check the meta block's CRC32C and decode it; ``None`` when there is none.

    Raises:
        CorruptSnapshotError: short, checksum mismatch, or not valid JSON.
    """
    if header.meta_length == 0:
        return None
    offset = header.meta_offset
    if len(raw) != header.meta_length:
        raise CorruptSnapshotError("meta block is cut short", path=path, offset=offset)
    if crc32c(raw) != header.meta_crc:
        raise CorruptSnapshotError("meta CRC32C mismatch", path=path, offset=offset)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CorruptSnapshotError(
            f"meta is not valid JSON: {exc}", path=path, offset=offset
        ) from None


def encode_header(
    compression: int,
    kind: bytes,
    version: int,
    meta: bytes,
    stored_length: int,
    uncompressed_length: int,
    created_ns: int,
    payload_crc: int,
) -> bytes:
    """Pack and seal an 80-byte header (fields already validated by the caller)."""
    body = L.HEADER.pack(
        L.MAGIC,
        L.FORMAT_MAJOR,
        L.FORMAT_MINOR,
        L.HEADER_SIZE,
        0,
        compression,
        len(kind),
        kind,
        version,
        0,
        len(meta),
        crc32c(meta),
        stored_length,
        uncompressed_length,
        created_ns,
        payload_crc,
        0,
    )
    return body[: L.HEADER_CRC_SPAN] + crc32c(body[: L.HEADER_CRC_SPAN]).to_bytes(4, "little")


def header_length_of(preamble: bytes, file_size: int, path: str | None) -> int:
    """Check the magic and return the header length the preamble declares.

    Raises:
        CorruptSnapshotError: too short, bad magic, or a header length out of bounds.
    """
    if file_size < L.HEADER_SIZE or len(preamble) < L.PREAMBLE_SIZE:
        raise CorruptSnapshotError(
            f"file is {file_size} bytes, shorter than the {L.HEADER_SIZE}-byte header",
            path=path,
            offset=0,
        )
    magic, _major, _minor, length = L.PREAMBLE.unpack_from(preamble)
    if magic != L.MAGIC:
        raise CorruptSnapshotError("not a snapshot file (bad magic)", path=path, offset=0)
    if not L.PREAMBLE_SIZE + 4 <= length <= min(L.MAX_HEADER_LENGTH, file_size):
        raise CorruptSnapshotError(
            f"header length {length} is out of bounds (file is {file_size} bytes)",
            path=path,
            offset=12,
        )
    return int(length)


def decode_header(head: bytes, file_size: int, path: str | None = None) -> Header:
    """Validate a whole header against the file size (see the module docstring).

    Args:
        head: the header bytes, as long as :func:`header_length_of` said.
        file_size: the snapshot file's size in bytes.
        path: used in error messages only.

    Returns:
        The fields, each checked.

    Raises:
        CorruptSnapshotError: what failed and at which offset.
        UnsupportedFormatError: a sound header of an unknown format version.
    """
    length = header_length_of(head, file_size, path)
    if len(head) != length:
        raise CorruptSnapshotError("header is cut short", path=path, offset=len(head))
    stored_crc = int.from_bytes(head[length - 4 : length], "little")
    if crc32c(head[: length - 4]) != stored_crc:
        raise CorruptSnapshotError("header CRC32C mismatch", path=path, offset=length - 4)
    _magic, major, minor, _length = L.PREAMBLE.unpack_from(head)
    if major != L.FORMAT_MAJOR or minor not in L.READABLE_MINORS:
        raise UnsupportedFormatError(
            f"snapshot format {major}.{minor} is not readable here: this persist-db reads "
            f"format {L.FORMAT_MAJOR}.0 to {L.FORMAT_MAJOR}.{max(L.READABLE_MINORS)}"
            + (f" ({path})" if path else "")
        )
    if length != L.HEADER_SIZE:
        raise CorruptSnapshotError(
            f"header length {length} is not {L.HEADER_SIZE} for format 1.{minor}",
            path=path,
            offset=12,
        )
    return _fields(head, file_size, minor, path)


def _fields(head: bytes, file_size: int, minor: int, path: str | None) -> Header:
    (_m, _ma, _mi, _hl, flags, compression, kind_length, kind_raw, version, reserved) = (
        L.HEADER.unpack_from(head)[:10]
    )
    (meta_length, meta_crc, stored, uncompressed, created, payload_crc, _crc) = (
        L.HEADER.unpack_from(head)[10:]
    )

    def bad(reason: str, offset: int) -> CorruptSnapshotError:
        return CorruptSnapshotError(reason, path=path, offset=offset)

    if flags != 0 or reserved != 0:
        raise bad("reserved header bits are set", 16 if flags else 38)
    if compression not in L.COMPRESSION_NAMES:
        raise bad(f"unknown compression code {compression}", 18)
    if not 1 <= kind_length <= L.MAX_KIND_LENGTH:
        raise bad(f"kind length {kind_length} is not in 1..{L.MAX_KIND_LENGTH}", 19)
    kind_bytes = kind_raw[:kind_length]
    if any(kind_raw[kind_length:]) or not all(0x20 <= b < 0x7F for b in kind_bytes):
        raise bad("kind is not printable ASCII padded with zeros", 20)
    if version == 0:
        raise bad("object version 0 is not allowed", 36)
    if meta_length > L.MAX_META_LENGTH or (meta_length == 0 and meta_crc != 0):
        raise bad(f"meta length {meta_length} is invalid", 40)
    expected = L.HEADER_SIZE + meta_length + stored
    if expected != file_size:
        raise bad(
            f"file is {file_size} bytes but the header describes {expected}",
            min(file_size, expected),
        )
    limit = stored * L.MAX_RATIO[compression] + (L.RATIO_SLACK if compression else 0)
    if uncompressed > limit or (compression == 0 and uncompressed != stored):
        raise bad(f"uncompressed length {uncompressed} is impossible for {stored} bytes", 56)
    return Header(
        minor=minor,
        compression=compression,
        kind=kind_bytes.decode("ascii"),
        version=version,
        meta_length=meta_length,
        meta_crc=meta_crc,
        stored_length=stored,
        uncompressed_length=uncompressed,
        created_ns=created,
        payload_crc=payload_crc,
    )
