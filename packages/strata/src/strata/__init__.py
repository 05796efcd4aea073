"""strata: an embedded database with MVCC transactions, durability modes, time travel,
recovery, retention and backup — in one directory, with nothing to run beside it.

>>> import strata
>>> with strata.open_memory() as db:
...     v1 = db.kv.put("greeting", "hello")
...     v2 = db.kv.put("greeting", "hello, world")
...     db.kv.get("greeting"), db.kv.get("greeting", as_of=v1)
('hello, world', 'hello')

Distribution ``strata-db``. See ``docs/API.md`` (the public surface) and ``docs/FORMAT.md``
(the bytes on disk). Public names are exported through ``__all__``; modules whose names
start with ``_`` are private.
"""

from ._backup import restore
from ._database import Database, open, open_memory
from ._kv import KV, Version
from ._retention import Composite, KeepAll, KeepFor, KeepLast, RetentionPolicy
from ._txn import Transaction, TxKV
from ._version import __version__
from .errors import (
    ConflictError,
    CorruptionError,
    DatabaseClosedError,
    DatabaseLockedError,
    DatabasePoisonedError,
    DeadlockError,
    HistoryUnavailableError,
    KeyTooLargeError,
    LockTimeoutError,
    ReadOnlyError,
    StrataError,
    StrataUsageError,
    TransactionAbortedError,
    TransactionClosedError,
    ValueTooLargeError,
    ValueTypeError,
)

__all__ = [
    "__version__",
    "open",
    "open_memory",
    "restore",
    "Database",
    "KV",
    "TxKV",
    "Transaction",
    "Version",
    "RetentionPolicy",
    "KeepAll",
    "KeepLast",
    "KeepFor",
    "Composite",
    "StrataError",
    "TransactionAbortedError",
    "ConflictError",
    "DeadlockError",
    "LockTimeoutError",
    "CorruptionError",
    "DatabaseLockedError",
    "DatabasePoisonedError",
    "DatabaseClosedError",
    "HistoryUnavailableError",
    "StrataUsageError",
    "ReadOnlyError",
    "TransactionClosedError",
    "KeyTooLargeError",
    "ValueTooLargeError",
    "ValueTypeError",
]
