"""Skeleton test: the package imports and its metadata agrees with its source."""

from importlib.metadata import version

import wal_db


def test_package_version_matches_metadata_and_public_names_exist() -> None:
    assert wal_db.__version__ == version("wal-db")
    missing = [name for name in wal_db.__all__ if not hasattr(wal_db, name)]
    assert missing == [], f"names in __all__ but not defined: {missing}"
