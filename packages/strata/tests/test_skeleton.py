"""Skeleton test: the package imports and its metadata agrees with its source."""

from importlib.metadata import version

import strata


def test_package_version_matches_metadata_and_public_names_exist() -> None:
    assert strata.__version__ == version("strata-db")
    missing = [name for name in strata.__all__ if not hasattr(strata, name)]
    assert missing == [], f"names in __all__ but not defined: {missing}"
