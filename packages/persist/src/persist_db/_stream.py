"""Streaming reads of a snapshot's payload, for payloads larger than memory.

Theory of operation
-------------------
:func:`open_snapshot` validates the header and meta exactly as ``load`` does, then hands
out a :class:`SnapshotReader` whose :meth:`~SnapshotReader.chunks` reads the stored
payload 1 MiB at a time and decompresses it with a bounded output (see ``_compress``).
With ``verify=True`` (the default) one extra pass checks the payload CRC32C first, so a
damaged file is refused before any byte is handed out; the checksum is checked again as
the chunks go by, in case the file changes between the two passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crc32c import crc32c

from . import _layout as L
from ._codec import Header
from ._compress import decompress_stream
from ._fileio import FileSystem, LogFile, PathArg, read_exact, resolve
from ._snapshot import info_of, read_front
from .errors import CorruptSnapshotError

__all__ = ["SnapshotReader", "open_snapshot"]


class SnapshotReader:
    """A snapshot opened for streaming: header and meta checked, payload read on demand.

    Use as a context manager; iterate :meth:`chunks` once.

    Attributes:
        info: the :class:`SnapshotInfo` (kind, version, meta, lengths, created).
    """

    def __init__(self, file: LogFile, shown: str, header: Header, meta: Any):
        self._file: LogFile | None = file
        self._shown = shown
        self._header = header
        self.info = info_of(header, meta)
        self._started = False

    def _stored_chunks(self) -> Iterator[bytes]:
        header = self._header
        done = 0
        while done < header.stored_length:
            if self._file is None:
                raise ValueError("the snapshot reader is closed")
            want = min(L.IO_CHUNK, header.stored_length - done)
            data = read_exact(self._file, want, header.payload_offset + done)
            if data is None:
                raise CorruptSnapshotError(
                    "file shrank while being read", path=self._shown, offset=done
                )
            done += want
            yield data

    def verify(self) -> None:
        """Check the stored payload's CRC32C in one bounded pass (no decompression).

        Raises:
            CorruptSnapshotError: the checksum does not match.
        """
        crc = 0
        for data in self._stored_chunks():
            crc = crc32c(data, crc)
        if crc != self._header.payload_crc:
            raise CorruptSnapshotError(
                "payload CRC32C mismatch", path=self._shown, offset=self._header.payload_offset
            )

    def chunks(self) -> Iterator[bytes]:
        """Yield the payload in pieces of about 1 MiB (decompressed).

        The checksum is checked again as the stored bytes go by: if it fails, the
        iteration raises at its end, so a consumer must not trust what it received
        until the iteration finished without error.

        Raises:
            CorruptSnapshotError: the payload fails a check.
            ValueError: called a second time, or after :meth:`close`.
        """
        if self._started:
            raise ValueError("chunks() can be iterated only once per reader")
        self._started = True
        header = self._header
        crc = 0

        def checked() -> Iterator[bytes]:
            nonlocal crc
            for data in self._stored_chunks():
                crc = crc32c(data, crc)
                yield data

        yield from decompress_stream(
            header.compression,
            checked(),
            header.uncompressed_length,
            self._shown,
            header.payload_offset,
        )
        if crc != header.payload_crc:
            raise CorruptSnapshotError(
                "payload CRC32C mismatch", path=self._shown, offset=header.payload_offset
            )

    def close(self) -> None:
        """Release the file. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_snapshot(
    path: PathArg,
    *,
    kind: str | None = None,
    fs: FileSystem | None = None,
    max_payload: int | None = None,
    verify: bool = True,
) -> SnapshotReader:
    """Open a snapshot for streaming its payload (for payloads larger than memory).

    Args:
        path, kind, fs, max_payload: as for :func:`load`.
        verify: check the stored payload's CRC32C before returning (one extra bounded
            read pass), so corruption is reported before any chunk is handed out.

    Returns:
        A :class:`SnapshotReader`; its memory use is bounded by the chunk size.

    Raises:
        The errors of :func:`load`, for the header, the meta block and (with
        ``verify``) the payload checksum.
    """
    filesystem, name = resolve(path, fs, writing=False)
    shown = str(path)
    file = filesystem.open(name, create=False)
    try:
        header, meta = read_front(file, shown, kind, max_payload)
        reader = SnapshotReader(file, shown, header, meta)
        if verify:
            reader.verify()
    except BaseException:
        file.close()
        raise
    return reader
