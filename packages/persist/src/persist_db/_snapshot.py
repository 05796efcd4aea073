"""Saving and loading snapshot files: atomic, checksummed, bounded.

Theory of operation
-------------------
**Save** writes the whole file under ``<name>.tmp`` -- the meta block at offset 80, the
payload after it (compressed on the way, its CRC32C computed as it goes), and the header
last, once the lengths and checksums are known -- then fsyncs it, renames it over
``<name>`` and fsyncs the directory. A crash at any point leaves either the old file or
the new one under ``<name>``, never a mixture (the rename is atomic, and the data is
durable before the rename can be). A leftover ``.tmp`` is overwritten by the next save.
A failed save (a bad chunk, an I/O error) removes its temporary file and re-raises.

**Load** reads and validates the header (``_codec.decode_header``: every length bounded
by the file size before anything is allocated), reads and checks the meta block, reads the
stored payload (exactly the bytes the header describes, which together make the whole
file), checks its CRC32C and only then decompresses, bounded by the declared length. Any
failure is :class:`CorruptSnapshotError` naming the field and its offset.

**Streaming**: ``save`` also takes an iterable of chunks, buffered into 1 MiB writes, so
a payload larger than memory can be saved; ``_stream`` reads one back chunk by chunk.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crc32c import crc32c

from . import _layout as L
from ._codec import (
    Header,
    check_kind,
    check_version,
    decode_header,
    decode_meta,
    encode_header,
    encode_meta,
    header_length_of,
)
from ._compress import Compressor, code_for, decompress_all
from ._fileio import FileSystem, LogFile, PathArg, read_exact, resolve
from .errors import CorruptSnapshotError, PayloadTooLargeError, WrongKindError

__all__ = ["Snapshot", "SnapshotInfo", "info_of", "load", "read_front", "save"]

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot file's header and meta say (everything but the payload).

    Attributes:
        kind: the kind tag.
        version: the object's own payload format version.
        compression: ``None``, ``"zstd"`` or ``"lz4"``.
        payload_length: the payload's length in bytes (uncompressed).
        stored_length: the payload's length as stored in the file.
        meta: the decoded meta value, or None.
        created_ns: when it was saved, in nanoseconds since the Unix epoch.
        format_version: the snapshot file format, e.g. ``"1.0"``.
    """

    kind: str
    version: int
    compression: str | None
    payload_length: int
    stored_length: int
    meta: Any
    created_ns: int
    format_version: str

    @property
    def created(self) -> float:
        """When it was saved, in seconds since the Unix epoch (like ``time.time()``)."""
        return self.created_ns / 1e9


@dataclass(frozen=True)
class Snapshot:
    """A loaded snapshot: the payload and what the file says about it.

    Attributes:
        kind, version, meta: as saved.
        payload: the (decompressed) payload bytes.
        created: when it was saved, in seconds since the Unix epoch.
        info: the full :class:`SnapshotInfo`.
    """

    kind: str
    version: int
    payload: bytes
    meta: Any
    created: float
    info: SnapshotInfo


def info_of(header: Header, meta: Any) -> SnapshotInfo:
    return SnapshotInfo(
        kind=header.kind,
        version=header.version,
        compression=L.COMPRESSION_NAMES[header.compression],
        payload_length=header.uncompressed_length,
        stored_length=header.stored_length,
        meta=meta,
        created_ns=header.created_ns,
        format_version=f"{L.FORMAT_MAJOR}.{header.minor}",
    )


def _as_bytes_view(data: object, what: str) -> memoryview:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes-like, not {type(data).__name__}")
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def save(
    path: PathArg,
    payload: Buffer | Iterable[Buffer],
    *,
    kind: str,
    version: int = 1,
    compression: str | None = None,
    level: int | None = None,
    meta: Any = None,
    fs: FileSystem | None = None,
) -> SnapshotInfo:
    """Atomically write a snapshot file (temporary file, fsync, rename, directory fsync).

    Args:
        path: the file to write (its parent directory is created if missing); with
            ``fs``, a file name inside that file system.
        payload: the bytes to store, or an iterable of bytes-like chunks (streamed, for
            payloads larger than memory; the iterable is consumed once).
        kind: the kind tag, 1..16 printable ASCII characters (e.g. ``"hnsw"``).
        version: the object's own payload format version, 1..65535.
        compression: ``None`` (stored raw), ``"zstd"`` or ``"lz4"`` (the ``lz4`` extra).
        level: the codec's level (zstd: default 3, up to 22, negative for fast modes;
            lz4: default 0, up to 16). Only with ``compression``.
        meta: a JSON-compatible value stored beside the payload (dicts, lists, str,
            int, float, bool, None; tuples come back as lists), at most 1 MiB encoded.
        fs: a file-system object (wal-db's ``FileSystem`` protocol), e.g. a test kit's
            ``CrashFS``; every file operation goes through it.

    Returns:
        The :class:`SnapshotInfo` of the file written.

    Raises:
        TypeError: a wrong argument type, a ``str`` payload, or a chunk that is not
            bytes-like (nothing is left behind).
        ValueError: a bad kind, version, compression, level or meta.
        CompressionUnavailableError: ``"lz4"`` without lz4 installed.
        OSError: the file could not be written (the previous file, if any, is intact).
    """
    kind_raw = check_kind(kind)
    check_version(version)
    code, chosen_level = code_for(compression, level)
    meta_raw = encode_meta(meta)
    whole = isinstance(payload, (bytes, bytearray, memoryview))
    if not whole and (isinstance(payload, str) or not isinstance(payload, Iterable)):
        raise TypeError(f"payload must be bytes-like or an iterable of chunks, not {payload!r:.40}")
    filesystem, name = resolve(path, fs, writing=True)
    tmp = name + L.TEMP_SUFFIX
    file = filesystem.open(tmp, create=True)
    try:
        file.truncate(0)
        if meta_raw:
            file.pwrite(meta_raw, L.HEADER_SIZE)
        writer = _PayloadWriter(file, L.HEADER_SIZE + len(meta_raw), Compressor(code, chosen_level))
        if whole:
            writer.whole(_as_bytes_view(payload, "payload"))
        else:
            writer.chunks(payload)  # type: ignore[arg-type]
        created = time.time_ns()
        header = encode_header(
            code,
            kind_raw,
            version,
            meta_raw,
            writer.stored,
            writer.uncompressed,
            created,
            writer.crc,
        )
        file.pwrite(header, 0)
        file.fsync()
        file.close()
        filesystem.rename(tmp, name)
    except BaseException:
        file.close()
        with contextlib.suppress(OSError):  # the save's own error is the one to report
            filesystem.unlink(tmp)
        raise
    filesystem.fsync_dir()
    return info_of(decode_header(header, L.HEADER_SIZE + len(meta_raw) + writer.stored), meta)


class _PayloadWriter:
    """Compresses, checksums and writes a payload after the meta block."""

    def __init__(self, file: LogFile, offset: int, compressor: Compressor):
        self.file = file
        self.offset = offset
        self.compressor = compressor
        self.crc = 0
        self.stored = 0
        self.uncompressed = 0
        self._buffer = bytearray()

    def _write(self, data: Buffer) -> None:
        if len(data):
            self.crc = crc32c(data, self.crc)
            self.file.pwrite(data, self.offset + self.stored)
            self.stored += len(data)

    def whole(self, view: memoryview) -> None:
        self.uncompressed = view.nbytes
        self._write(self.compressor.whole(view))

    def chunks(self, chunks: Iterable[Buffer]) -> None:
        for chunk in chunks:
            view = _as_bytes_view(chunk, "every payload chunk")
            self.uncompressed += view.nbytes
            self._add(self.compressor.chunk(view))
        self._add(self.compressor.finish())
        self._write(self._buffer)
        self._buffer = bytearray()

    def _add(self, data: Buffer) -> None:
        if len(data) >= L.IO_CHUNK:
            self._write(self._buffer)
            self._buffer = bytearray()
            self._write(data)
            return
        self._buffer += data
        if len(self._buffer) >= L.IO_CHUNK:
            self._write(self._buffer)
            self._buffer = bytearray()


def read_front(
    file: LogFile, shown: str, kind: str | None, max_payload: int | None
) -> tuple[Header, Any]:
    size = file.size()
    length = header_length_of(file.pread(min(L.PREAMBLE_SIZE, size), 0), size, shown)
    header = decode_header(file.pread(length, 0), size, shown)
    meta_raw = file.pread(header.meta_length, header.meta_offset) if header.meta_length else b""
    meta = decode_meta(meta_raw, header, shown)
    if kind is not None and header.kind != kind:
        raise WrongKindError(f"{shown} holds a {header.kind!r} snapshot, not {kind!r}")
    if max_payload is not None and header.uncompressed_length > max_payload:
        raise PayloadTooLargeError(
            f"{shown}: payload is {header.uncompressed_length} bytes; max_payload={max_payload}"
        )
    return header, meta


def load(
    path: PathArg,
    *,
    kind: str | None = None,
    fs: FileSystem | None = None,
    max_payload: int | None = None,
) -> Snapshot:
    """Read and fully validate a snapshot file.

    Args:
        path: the file; with ``fs``, a file name inside that file system.
        kind: if given, the kind the snapshot must have.
        fs: a file-system object (see :func:`save`).
        max_payload: if given, refuse a payload longer than this many bytes
            (uncompressed) before reading it.

    Returns:
        The :class:`Snapshot`: ``kind``, ``version``, ``payload``, ``meta``, ``created``.

    Raises:
        CorruptSnapshotError: any check failed (``.reason``, ``.offset``). Memory use is
            bounded by the file size (times the codec's best ratio when compressed).
        UnsupportedFormatError: a sound file of a format version this reader lacks.
        WrongKindError: the file is a snapshot of another kind.
        PayloadTooLargeError: the payload is longer than ``max_payload``.
        CompressionUnavailableError: an lz4 snapshot without lz4 installed.
        FileNotFoundError, OSError: the file cannot be read.
    """
    filesystem, name = resolve(path, fs, writing=False)
    shown = str(path)
    file = filesystem.open(name, create=False)
    try:
        header, meta = read_front(file, shown, kind, max_payload)
        stored = read_exact(file, header.stored_length, header.payload_offset)
    finally:
        file.close()
    offset = header.payload_offset
    if stored is None:
        raise CorruptSnapshotError("file shrank while being read", path=shown, offset=offset)
    if crc32c(stored) != header.payload_crc:
        raise CorruptSnapshotError("payload CRC32C mismatch", path=shown, offset=offset)
    payload = decompress_all(header.compression, stored, header.uncompressed_length, shown, offset)
    info = info_of(header, meta)
    return Snapshot(header.kind, header.version, payload, meta, info.created, info)
