"""Compression adapters: none, zstd (zstandard) and lz4 (lz4.frame, an optional extra).

Theory of operation
-------------------
Each codec is used in two shapes: whole (one buffer in, one out: the fast path for a
payload that fits in memory) and streaming (chunks in, chunks out: for payloads larger
than memory). Both shapes write one standard frame, so either reader shape reads either
writer's output.

Decompression is always *bounded*: the header's uncompressed length (already bounded by
the file size times the codec's best ratio) is the most any output may reach. An output
that would pass it, stop short of it, leave bytes after the frame, or a frame the codec
rejects, is :class:`CorruptSnapshotError`. The stored bytes' CRC32C has been checked
before a whole decompression begins, so a codec only ever sees the bytes that were saved
(or a deliberately forged file, which these checks also contain).
"""

from __future__ import annotations

import importlib
from collections.abc import Generator, Iterator
from types import ModuleType
from typing import Any

import zstandard

from . import _layout as L
from .errors import CompressionUnavailableError, CorruptSnapshotError


def _import_lz4() -> ModuleType | None:
    try:
        return importlib.import_module("lz4.frame")
    except ImportError:  # pragma: no cover - the tests monkeypatch lz4_frame instead
        return None


lz4_frame: ModuleType | None = _import_lz4()

__all__ = ["Compressor", "code_for", "compressor", "decompress_all", "decompress_stream"]

ZSTD_DEFAULT_LEVEL = 3
LZ4_DEFAULT_LEVEL = 0
_LEVELS = {L.COMPRESSION_ZSTD: (-(1 << 17), 22), L.COMPRESSION_LZ4: (-1, 16)}
ZSTD_SLICE = 2048
_LZ4_HINT = "lz4 is not installed: pip install 'persist-db[lz4]'"


def _lz4() -> ModuleType:
    if lz4_frame is None:
        raise CompressionUnavailableError(_LZ4_HINT)
    return lz4_frame


def code_for(compression: object, level: object) -> tuple[int, int | None]:
    """Validate ``compression`` and ``level``; return the code and the level to use.

    Raises:
        ValueError: an unknown compression name, a level without compression, or a level
            out of the codec's range.
        TypeError: a level that is not an int.
        CompressionUnavailableError: lz4 asked for but not installed.
    """
    if compression not in L.COMPRESSION_CODES:
        raise ValueError(f"compression must be None, 'zstd' or 'lz4', not {compression!r}")
    code = L.COMPRESSION_CODES[compression]
    if code == L.COMPRESSION_NONE:
        if level is not None:
            raise ValueError("level is only meaningful with compression='zstd' or 'lz4'")
        return code, None
    if code == L.COMPRESSION_LZ4:
        _lz4()
    if level is None:
        return code, ZSTD_DEFAULT_LEVEL if code == L.COMPRESSION_ZSTD else LZ4_DEFAULT_LEVEL
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be an int, not {type(level).__name__}")
    low, high = _LEVELS[code]
    if not low <= level <= high:
        raise ValueError(f"level {level} is out of range {low}..{high} for {compression}")
    return code, level


class Compressor:
    """Streaming compression of one payload into one frame (identity for ``none``)."""

    def __init__(self, code: int, level: int | None):
        self.code = code
        self._level = level if level is not None else ZSTD_DEFAULT_LEVEL
        self._obj: Any = None
        self._started = False
        if code == L.COMPRESSION_ZSTD:
            self._obj = zstandard.ZstdCompressor(level=self._level).compressobj()
        elif code == L.COMPRESSION_LZ4:
            self._obj = _lz4().LZ4FrameCompressor(compression_level=self._level)

    def whole(self, data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
        """Compress a complete payload in one call (records its size in the frame)."""
        if self.code == L.COMPRESSION_ZSTD:
            return zstandard.ZstdCompressor(level=self._level).compress(data)
        if self.code == L.COMPRESSION_LZ4:
            return bytes(_lz4().compress(data, compression_level=self._level))
        return data

    def chunk(self, data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
        """Compress the next piece of a payload; may return ``b""``."""
        if self.code == L.COMPRESSION_ZSTD:
            return bytes(self._obj.compress(data))
        if self.code == L.COMPRESSION_LZ4:
            head = b"" if self._started else bytes(self._obj.begin())
            self._started = True
            return head + bytes(self._obj.compress(data))
        return data

    def finish(self) -> bytes:
        """End the frame; returns its last bytes."""
        if self.code == L.COMPRESSION_ZSTD:
            return bytes(self._obj.flush())
        if self.code == L.COMPRESSION_LZ4:
            head = b"" if self._started else bytes(self._obj.begin())
            self._started = True
            return head + bytes(self._obj.flush())
        return b""


def compressor(code: int, level: int | None) -> Compressor:
    """A fresh :class:`Compressor` for one payload."""
    return Compressor(code, level)


def _corrupt(reason: str, path: str | None, offset: int) -> CorruptSnapshotError:
    return CorruptSnapshotError(reason, path=path, offset=offset)


def decompress_all(code: int, stored: bytes, expected: int, path: str | None, offset: int) -> bytes:
    """Decompress a whole stored payload to exactly ``expected`` bytes.

    Raises:
        CorruptSnapshotError: the codec rejects the frame, or its output is not exactly
            ``expected`` bytes followed by nothing.
        CompressionUnavailableError: an lz4 payload without lz4 installed.
    """
    if code == L.COMPRESSION_NONE:
        return stored
    # zstandard's one-shot decompress returns b"" for a frame declaring content size 0
    # without decoding its blocks; the streaming decoder checks them, and is cheap here.
    if code == L.COMPRESSION_ZSTD and expected > 0:
        try:
            declared = zstandard.frame_content_size(stored)
            if declared not in (-1, expected):
                raise _corrupt(
                    f"zstd frame declares {declared} bytes, not {expected}", path, offset
                )
            out = zstandard.ZstdDecompressor().decompress(
                stored, max_output_size=expected, allow_extra_data=False
            )
        except zstandard.ZstdError as exc:
            raise _corrupt(f"zstd payload does not decompress: {exc}", path, offset) from None
        if len(out) != expected:
            raise _corrupt(f"payload is {len(out)} bytes, not {expected}", path, offset)
        return bytes(out)
    return b"".join(decompress_stream(code, iter((stored,)), expected, path, offset))


def decompress_stream(
    code: int, chunks: Iterator[bytes], expected: int, path: str | None, offset: int
) -> Iterator[bytes]:
    """Decompress stored chunks, yielding output chunks, never more than ``expected``.

    zstd is fed ``ZSTD_SLICE``-byte slices, so one call can produce at most
    ``ZSTD_SLICE`` x 32768 bytes (64 MiB) even from a forged frame; lz4 takes an output
    limit directly. Output is gathered into pieces of about ``IO_CHUNK`` bytes.

    Raises:
        CorruptSnapshotError: as :func:`decompress_all`, detected as soon as possible.
    """
    if code == L.COMPRESSION_NONE:
        yield from chunks
        return
    zstd = code == L.COMPRESSION_ZSTD
    step = _zstd_steps(path, offset) if zstd else _lz4_steps(path, offset)
    next(step)
    total = 0
    finished = False
    pending: list[bytes] = []
    pending_size = 0
    for piece in _slices(chunks, ZSTD_SLICE if zstd else L.IO_CHUNK):
        if finished:
            raise _corrupt("bytes follow the end of the compressed frame", path, offset)
        out, finished = step.send((piece, expected - total))
        total += len(out)
        if out:
            pending.append(out)
            pending_size += len(out)
        if pending_size >= L.IO_CHUNK:
            yield b"".join(pending)
            pending, pending_size = [], 0
    if pending:
        yield b"".join(pending)
    if not finished or total != expected:
        raise _corrupt(f"compressed frame ends early ({total} of {expected} bytes)", path, offset)


def _slices(chunks: Iterator[bytes], size: int) -> Iterator[memoryview]:
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), size):
            yield view[start : start + size]


Step = Generator[tuple[bytes, bool], tuple[memoryview, int], None]


def _zstd_steps(path: str | None, offset: int) -> Step:
    obj = zstandard.ZstdDecompressor().decompressobj()
    out, finished = b"", False
    while True:
        piece, room = yield out, finished
        try:
            out = bytes(obj.decompress(piece))
        except zstandard.ZstdError as exc:
            raise _corrupt(f"zstd payload does not decompress: {exc}", path, offset) from None
        if len(out) > room:
            raise _corrupt("payload is longer than the header says", path, offset)
        finished = bool(obj.eof)
        if finished and obj.unused_data:
            raise _corrupt("bytes follow the end of the compressed frame", path, offset)


def _lz4_steps(path: str | None, offset: int) -> Step:
    obj = _lz4().LZ4FrameDecompressor()
    out, finished = b"", False
    while True:
        piece, room = yield out, finished
        # Ask for one byte more than may come, so an overlong frame is caught while
        # never holding more than the declared length plus one byte.
        parts: list[bytes] = []
        got = 0
        data: memoryview | bytes = piece
        try:
            while True:
                more = bytes(obj.decompress(data, max_length=room - got + 1))
                data = b""
                got += len(more)
                if got > room:
                    raise _corrupt("payload is longer than the header says", path, offset)
                parts.append(more)
                if obj.eof or obj.needs_input or not more:
                    break
        except (RuntimeError, ValueError) as exc:
            raise _corrupt(f"lz4 payload does not decompress: {exc}", path, offset) from None
        out = b"".join(parts)
        finished = bool(obj.eof)
        if finished and obj.unused_data:
            raise _corrupt("bytes follow the end of the compressed frame", path, offset)
