"""wal_db: the write-ahead log of the Strata family.

Distribution ``wal-db``. A log is a directory of segment files holding CRC32C-framed
records with monotonically increasing LSNs (never 0). Appends are grouped into shared
fsyncs (group commit); a torn tail is found and cut on open, corruption a crash cannot
explain raises :class:`CorruptLogError`, and a failed fsync poisons the log.

>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d, WriteAheadLog.open(os.path.join(d, "log")) as log:
...     log.append(b"hello"), log.append(b"world")
...     list(log.replay())
(1, 2)
[(1, b'hello'), (2, b'world')]

See ``docs/API.md`` (the frozen surface) and ``docs/FORMAT.md`` (the bytes on disk).
Public names are exported through ``__all__``; other packages of the family may use those
names only, never a private ``_``-prefixed module.
"""

from ._fs import FileSystem, LogFile, OsFile, OsFileSystem
from ._layout import (
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_SEGMENT_SIZE,
    FORMAT_VERSION,
    MIN_SEGMENT_SIZE,
)
from ._log import WriteAheadLog
from ._options import LogStats
from ._segments import RecoveryReport
from ._version import __version__
from .errors import (
    CorruptLogError,
    LogClosedError,
    LogLockedError,
    LogPoisonedError,
    LsnOutOfRangeError,
    ReadOnlyLogError,
    RecordTooLargeError,
    WalError,
)

__all__ = [
    "__version__",
    "WriteAheadLog",
    "RecoveryReport",
    "LogStats",
    "FileSystem",
    "LogFile",
    "OsFileSystem",
    "OsFile",
    "DEFAULT_SEGMENT_SIZE",
    "DEFAULT_MAX_RECORD_SIZE",
    "MIN_SEGMENT_SIZE",
    "FORMAT_VERSION",
    "WalError",
    "CorruptLogError",
    "LogPoisonedError",
    "RecordTooLargeError",
    "LogLockedError",
    "LogClosedError",
    "ReadOnlyLogError",
    "LsnOutOfRangeError",
]
