"""Where a snapshot's bytes live: a path on disk, or a name in a file-system object.

Theory of operation
-------------------
persist-db never calls ``os`` for file I/O. Every read, write, fsync, rename and directory
fsync goes through wal-db's ``FileSystem`` seam (one flat directory) and the files it
opens, so the crash tests can pass ``strata_testkit.CrashFS`` and see every operation. A
path is turned into ``OsFileSystem(parent directory)`` plus the file name; with ``fs=``
the caller's file-system object is used and the path is a name inside it.
"""

from __future__ import annotations

import os

from wal_db import FileSystem, LogFile, OsFileSystem

__all__ = ["FileSystem", "LogFile", "read_exact", "resolve"]

PathArg = str | os.PathLike[str]


def resolve(path: PathArg, fs: FileSystem | None, *, writing: bool) -> tuple[FileSystem, str]:
    """The directory and the file name to use for ``path``.

    Args:
        path: a file path; or, with ``fs``, a name inside ``fs``.
        fs: an optional file-system object (wal-db's ``FileSystem`` protocol).
        writing: a writer creates the parent directory if it is missing.

    Raises:
        TypeError: ``path`` is not a path, or ``fs`` is not a file system.
        FileNotFoundError: reading, and the parent directory does not exist.
    """
    if fs is not None:
        if not isinstance(fs, FileSystem):
            raise TypeError(f"fs must implement wal_db.FileSystem, not {type(fs).__name__}")
        if not isinstance(path, str) or not path or "/" in path:
            raise TypeError(f"with fs=, path must be a plain file name, not {path!r}")
        return fs, path
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    return OsFileSystem(directory, read_only=not writing), name


def read_exact(file: LogFile, size: int, offset: int) -> bytes | None:
    """``size`` bytes at ``offset``, or None if the file ends first.

    ``size`` must already be bounded by the file's size: this allocates at most that.
    """
    data = file.pread(size, offset)
    if len(data) == size:
        return data
    parts = [data]
    done = len(data)
    while done < size:
        more = file.pread(size - done, offset + done)
        if not more:
            return None
        parts.append(more)
        done += len(more)
    return b"".join(parts)
