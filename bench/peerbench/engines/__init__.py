"""The engine configurations the harness knows, imported lazily.

A peer whose library is missing is reported as skipped with the import error: it is
never replaced by anything else. :data:`ENGINES` maps each report name to
``(module, class)``; :func:`load` imports one.
"""

from __future__ import annotations

import importlib

from .base import Engine, Pair, Unsupported

__all__ = ["ENGINES", "STRATA", "Engine", "Pair", "Unsupported", "load"]

ENGINES: dict[str, tuple[str, str]] = {
    "strata-cache": ("strata_engine", "StrataCache"),
    "strata-standard": ("strata_engine", "StrataStandard"),
    "strata-always": ("strata_engine", "StrataAlways"),
    "sqlite3-normal": ("sqlite_engine", "SqliteNormal"),
    "sqlite3-full": ("sqlite_engine", "SqliteFull"),
    "lmdb": ("lmdb_engine", "Lmdb"),
    "rocksdict": ("rocks_engine", "RocksDict"),
    "plyvel": ("leveldb_engine", "Plyvel"),
    "diskcache": ("diskcache_engine", "DiskCache"),
    "zodb": ("zodb_engine", "Zodb"),
    "semidbm": ("semidbm_engine", "SemiDbm"),
}
STRATA = [name for name in ENGINES if name.startswith("strata-")]


def load(name: str) -> type[Engine]:
    """The adapter class for ``name``.

    Raises:
        KeyError: no such engine configuration.
        ImportError: the engine's library is not installed (the message says which).
    """
    module_name, class_name = ENGINES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    engine: type[Engine] = getattr(module, class_name)
    return engine
