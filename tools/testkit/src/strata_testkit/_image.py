"""Byte-image primitives shared by the live files and by crash replay.

Theory of operation
-------------------
A file's content is a ``bytearray`` (an *image*). Every mutation the kit knows -- a
positional write, a truncate, and the sector-by-sector application of a torn write during
crash replay -- is a pure function on such an image, defined here once, so that what a
live read sees after an op and what a replayed crash state contains after the same op can
never disagree. No function here knows about handles, names, faults or durability.

Argument errors ("you called me wrong") raise ``ValueError`` or ``TypeError`` before the
image is touched, so a rejected call never leaves a half-applied mutation behind.
"""

from __future__ import annotations

__all__ = [
    "as_bytes",
    "check_non_negative",
    "read_at",
    "touched_sectors",
    "truncate_to",
    "write_at",
]


def check_non_negative(value: int, what: str) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is an int >= 0."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")


def as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """Copy ``data`` into immutable ``bytes`` (a memoryview contributes its raw bytes)."""
    if isinstance(data, memoryview):
        return data.tobytes()
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise TypeError(f"data must be bytes, bytearray or memoryview, not {type(data).__name__}")


def read_at(image: bytes | bytearray, size: int, offset: int) -> bytes:
    """Return up to ``size`` bytes at ``offset``: short at EOF, ``b""`` beyond it."""
    check_non_negative(size, "size")
    check_non_negative(offset, "offset")
    return bytes(image[offset : offset + size])


def write_at(image: bytearray, data: bytes, offset: int) -> None:
    """Write ``data`` at ``offset``, zero-filling any gap past the current end.

    An empty ``data`` changes nothing, not even the length (as POSIX ``pwrite`` of 0 bytes).
    """
    check_non_negative(offset, "offset")
    if not data:
        return
    if offset > len(image):
        image.extend(bytes(offset - len(image)))
    image[offset : offset + len(data)] = data


def truncate_to(image: bytearray, length: int) -> None:
    """Cut ``image`` to ``length`` bytes, or zero-extend it up to ``length``."""
    check_non_negative(length, "length")
    if length < len(image):
        del image[length:]
    else:
        image.extend(bytes(length - len(image)))


def touched_sectors(offset: int, length: int, sector_size: int) -> range:
    """The sector numbers a write of ``length`` bytes at ``offset`` touches (empty if 0)."""
    if length == 0:
        return range(0)
    return range(offset // sector_size, (offset + length - 1) // sector_size + 1)
