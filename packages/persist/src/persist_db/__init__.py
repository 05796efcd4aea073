"""persist_db: atomic, verified snapshot files and snapshot-plus-log persistence.

Distribution ``persist-db``. A snapshot file is a CRC32C-sealed header, an optional JSON
meta block and a payload stored raw or compressed (zstd, or lz4 with the ``lz4`` extra).
:func:`save` writes one atomically (temporary file, fsync, rename, directory fsync);
:func:`load` validates every byte and bounds every length by the file size before
allocating; :func:`open_snapshot` streams a payload larger than memory.
:class:`Persisted` keeps a :class:`Persistable` object durable as its newest valid snapshot
plus an operation log on wal-db, falling back to an older snapshot when the newest is bad.

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "index.snap")
...     _ = save(path, b"state", kind="demo", version=2, compression="zstd", meta={"n": 1})
...     snap = load(path, kind="demo")
...     snap.payload, snap.version, snap.meta
(b'state', 2, {'n': 1})

See ``docs/API.md`` (the frozen surface) and ``docs/FORMAT.md`` (the bytes on disk).
Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._layout import FORMAT_MAJOR, FORMAT_MINOR, MAX_KIND_LENGTH, MAX_META_LENGTH
from ._persisted import Fallback, OpenReport, Persisted
from ._protocol import Persistable
from ._snapshot import Snapshot, SnapshotInfo, load, save
from ._stream import SnapshotReader, open_snapshot
from ._version import __version__
from .errors import (
    CompressionUnavailableError,
    CorruptSnapshotError,
    PayloadTooLargeError,
    PersistedLockedError,
    PersistedPoisonedError,
    PersistError,
    UnsupportedFormatError,
    WrongKindError,
)

__all__ = [
    "__version__",
    # snapshot files
    "save",
    "load",
    "open_snapshot",
    "Snapshot",
    "SnapshotInfo",
    "SnapshotReader",
    # persistence of objects
    "Persistable",
    "Persisted",
    "OpenReport",
    "Fallback",
    # constants
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "MAX_KIND_LENGTH",
    "MAX_META_LENGTH",
    # errors
    "PersistError",
    "CorruptSnapshotError",
    "UnsupportedFormatError",
    "WrongKindError",
    "CompressionUnavailableError",
    "PayloadTooLargeError",
    "PersistedPoisonedError",
    "PersistedLockedError",
]
