"""Pure encode/decode of the hash index's pages (root, directory, bucket): bytes <-> objects.

Theory of operation
-------------------
Nothing here touches a store. Decoders take a page payload (any bytes-like object) and
either return a fully validated object or raise :class:`~index_db.errors.CorruptIndexError`
naming the page and what failed; they never index outside the payload, never allocate more
than the payload's size, and never trust a length field before checking it against the
bytes that remain. Encoders return the exact bytes a page's payload starts with; the rest
of the payload is zero. The byte tables are in :mod:`._layout`.

A decoded :class:`Bucket` is what the index keeps in page-db's per-frame ``extra`` slot: a
``dict`` of the page's records plus its header fields, so a warm lookup is one dict probe.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import CorruptIndexError
from . import _layout as L

__all__ = [
    "Bucket",
    "RootInfo",
    "decode_bucket",
    "decode_directory",
    "decode_root",
    "encode_bucket",
    "encode_directory",
    "encode_record",
    "encode_root",
]


class Bucket:
    """One decoded bucket page (primary or overflow).

    Attributes:
        entries: the page's records, key -> value, in page order.
        used: bytes the records take (record headers included): the end offset minus 24.
        local_depth: how many low hash bits the page's keys share.
        prefix: those bits.
        mask: ``(1 << local_depth) - 1``.
        next_id: the next overflow page of the chain, 0 at its end.
        position: 0 for a primary page, n for the n-th overflow page.
        kind: ``KIND_BUCKET`` or ``KIND_OVERFLOW``.
    """

    __slots__ = ("entries", "kind", "local_depth", "mask", "next_id", "position", "prefix", "used")

    def __init__(
        self,
        *,
        kind: int,
        local_depth: int,
        prefix: int,
        next_id: int = 0,
        position: int = 0,
        entries: dict[bytes, bytes] | None = None,
    ) -> None:
        self.kind = kind
        self.local_depth = local_depth
        self.mask = (1 << local_depth) - 1
        self.prefix = prefix
        self.next_id = next_id
        self.position = position
        self.entries: dict[bytes, bytes] = {} if entries is None else entries
        self.used = sum(L.RECORD_HEADER_SIZE + len(k) + len(v) for k, v in self.entries.items())


@dataclass(frozen=True)
class RootInfo:
    """The decoded root page."""

    global_depth: int
    max_depth: int
    count: int
    bucket_count: int
    directory_pages: tuple[int, ...]


def _corrupt(page_id: int, reason: str) -> CorruptIndexError:
    return CorruptIndexError(f"hash index: {reason}", page_id=page_id)


def _check_prefix(payload: bytes, page_id: int, kinds: tuple[int, ...]) -> int:
    if len(payload) < L.ROOT_HEADER_SIZE:
        raise _corrupt(page_id, f"page payload of {len(payload)} bytes is too small")
    magic, kind, version = L.PREFIX_STRUCT.unpack_from(payload, 0)
    if magic != L.MAGIC:
        raise _corrupt(page_id, f"bad magic {magic!r}, not a hash index page")
    if version != L.FORMAT_VERSION:
        raise _corrupt(page_id, f"unsupported hash format version {version}")
    if kind not in kinds:
        raise _corrupt(page_id, f"page kind {kind}, expected one of {kinds}")
    return int(kind)


def _check_zero_tail(data: bytes, offset: int, page_id: int) -> None:
    if data.count(0, offset) != len(data) - offset:
        raise _corrupt(page_id, f"non-zero bytes after the end of the page's content at {offset}")


def encode_record(key: bytes, value: bytes) -> bytes:
    """One record: key length, value length, key, value."""
    return L.RECORD_STRUCT.pack(len(key), len(value)) + key + value


def encode_bucket(bucket: Bucket) -> bytes:
    """The payload prefix of a bucket page: header then every record."""
    header = L.BUCKET_STRUCT.pack(
        L.MAGIC,
        bucket.kind,
        L.FORMAT_VERSION,
        bucket.local_depth,
        0,
        len(bucket.entries),
        bucket.prefix,
        bucket.next_id,
        bucket.position,
        bucket.used,
        0,
    )
    pack = L.RECORD_STRUCT.pack
    parts = [header]
    for key, value in bucket.entries.items():
        parts.append(pack(len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


def decode_bucket(payload: bytes | memoryview, page_id: int, max_depth: int) -> Bucket:
    """Decode and validate a bucket page.

    Args:
        payload: the page payload.
        page_id: for error messages.
        max_depth: the index's max depth (bounds the local depth).

    Returns:
        The decoded bucket.

    Raises:
        CorruptIndexError: the bytes are not a valid bucket page.
    """
    data = bytes(payload)
    kind = _check_prefix(data, page_id, (L.KIND_BUCKET, L.KIND_OVERFLOW))
    fields = L.BUCKET_STRUCT.unpack_from(data, 0)
    _, _, _, depth, reserved, count, prefix, next_id, position, used, reserved2 = fields
    if depth > max_depth or reserved or reserved2:
        raise _corrupt(
            page_id, f"local depth {depth} above max depth {max_depth} (or reserved bytes set)"
        )
    if prefix >> depth:
        raise _corrupt(page_id, f"hash prefix {prefix:#x} wider than local depth {depth}")
    if (kind == L.KIND_BUCKET) != (position == 0):
        raise _corrupt(page_id, f"page kind {kind} at chain position {position}")
    entries: dict[bytes, bytes] = {}
    offset = L.BUCKET_HEADER_SIZE
    end = len(data)
    unpack = L.RECORD_STRUCT.unpack_from
    for _ in range(count):
        if offset + L.RECORD_HEADER_SIZE > end:
            raise _corrupt(page_id, f"record header at {offset} runs past the page")
        key_len, value_len = unpack(data, offset)
        start = offset + L.RECORD_HEADER_SIZE
        offset = start + key_len + value_len
        if offset > end or key_len > L.MAX_KEY_SIZE:
            raise _corrupt(page_id, f"record at {start - 4} runs past the page")
        key = data[start : start + key_len]
        if key in entries:
            raise _corrupt(page_id, f"key {key[:32]!r} appears twice")
        entries[key] = data[start + key_len : offset]
    if offset != L.BUCKET_HEADER_SIZE + used:
        raise _corrupt(page_id, f"records end at {offset}, the header says {used + 24}")
    _check_zero_tail(data, offset, page_id)
    bucket = Bucket(kind=kind, local_depth=depth, prefix=prefix, next_id=next_id, position=position)
    bucket.entries = entries
    bucket.used = offset - L.BUCKET_HEADER_SIZE
    return bucket


def encode_root(info: RootInfo) -> bytes:
    """The payload prefix of the root page."""
    pages = info.directory_pages
    header = L.ROOT_STRUCT.pack(
        L.MAGIC,
        L.KIND_ROOT,
        L.FORMAT_VERSION,
        info.global_depth,
        info.max_depth,
        0,
        info.count,
        info.bucket_count,
        len(pages),
    )
    return header + struct_u32s(pages)


def decode_root(payload: bytes | memoryview, page_id: int, expected_max_depth: int) -> RootInfo:
    """Decode and validate the root page.

    Raises:
        CorruptIndexError: the bytes are not a valid root page, or its max depth does not
            match the store's page size.
    """
    data = bytes(payload)
    _check_prefix(data, page_id, (L.KIND_ROOT,))
    _, _, _, depth, max_depth, reserved, count, buckets, n_pages = L.ROOT_STRUCT.unpack_from(
        data, 0
    )
    if max_depth != expected_max_depth or depth > max_depth or reserved:
        raise _corrupt(page_id, f"global depth {depth} / max depth {max_depth} out of range")
    per_page = L.directory_slots_per_page(len(data))
    if n_pages != -(-(1 << depth) // per_page):
        raise _corrupt(page_id, f"{n_pages} directory pages for global depth {depth}")
    if buckets == 0 or buckets > 1 << depth:
        raise _corrupt(page_id, f"bucket count {buckets} for global depth {depth}")
    start = L.ROOT_HEADER_SIZE
    if start + 4 * n_pages > len(data):
        raise _corrupt(page_id, f"{n_pages} directory page ids do not fit the root page")
    pages = struct.unpack_from(f"<{n_pages}I", data, start)
    _check_zero_tail(data, start + 4 * n_pages, page_id)
    if 0 in pages:
        raise _corrupt(page_id, "directory page id 0")
    return RootInfo(depth, max_depth, count, buckets, pages)


def encode_directory(first: int, page_ids: Sequence[int]) -> bytes:
    """The payload prefix of a directory page holding slots ``first ..``."""
    header = L.DIRECTORY_STRUCT.pack(
        L.MAGIC, L.KIND_DIRECTORY, L.FORMAT_VERSION, first, len(page_ids), 0
    )
    return header + struct_u32s(page_ids)


def struct_u32s(values: Sequence[int]) -> bytes:
    """``values`` as little-endian u32s."""
    return struct.pack(f"<{len(values)}I", *values)


def decode_directory(
    payload: bytes | memoryview, page_id: int, first: int, count: int
) -> list[int]:
    """Decode a directory page that must hold slots ``first .. first + count``.

    Raises:
        CorruptIndexError: wrong kind, wrong slot range, or a slot holding page id 0.
    """
    data = bytes(payload)
    _check_prefix(data, page_id, (L.KIND_DIRECTORY,))
    _, _, _, got_first, got_count, reserved = L.DIRECTORY_STRUCT.unpack_from(data, 0)
    if (got_first, got_count, reserved) != (first, count, 0):
        raise _corrupt(
            page_id, f"directory page holds slots {got_first}+{got_count}, expected {first}+{count}"
        )
    start = L.DIRECTORY_HEADER_SIZE
    if start + 4 * count > len(data):
        raise _corrupt(page_id, f"{count} directory slots do not fit one page")
    ids = list(struct.unpack_from(f"<{count}I", data, start))
    _check_zero_tail(data, start + 4 * count, page_id)
    if 0 in ids:
        raise _corrupt(page_id, f"directory slot {first + ids.index(0)} holds page id 0")
    return ids
