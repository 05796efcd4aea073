"""Skeleton test: the package imports and its metadata agrees with its source."""

from importlib.metadata import version

import index_db


def test_package_version_matches_metadata_and_public_names_exist() -> None:
    assert index_db.__version__ == version("index-db")
    missing = [name for name in index_db.__all__ if not hasattr(index_db, name)]
    assert missing == [], f"names in __all__ but not defined: {missing}"
