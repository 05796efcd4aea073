"""The documented surface and the real one agree; errors form the documented tree."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import lock_db
from lock_db import (
    DeadlockError,
    InvalidRangeError,
    LockCancelledError,
    LockError,
    LockManager,
    LockTimeoutError,
    LockTypeError,
    LockUsageError,
    NotHeldError,
    OwnerBusyError,
)

PACKAGE = Path(__file__).resolve().parents[1]
API_DOC = (PACKAGE / "docs" / "API.md").read_text()


def test_version_matches_distribution_metadata() -> None:
    assert lock_db.__version__ == importlib.metadata.version("lock-db") == "1.0.0"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in lock_db.__all__:
        assert hasattr(lock_db, name), name
    missing = [name for name in lock_db.__all__ if name not in API_DOC]
    assert not missing, f"not in docs/API.md: {missing}"


def test_every_public_method_is_documented() -> None:
    methods = [name for name in dir(LockManager) if not name.startswith("_")]
    missing = [name for name in methods if f"{name}(" not in API_DOC]
    assert not missing, f"LockManager methods not in docs/API.md: {missing}"
    for name in methods:
        doc = getattr(LockManager, name).__doc__ or ""
        assert "Returns:" in doc or "Raises:" in doc or "Args:" in doc, name


def test_every_stats_key_is_documented() -> None:
    for key in LockManager().stats():
        assert f"`{key}`" in API_DOC, key


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (LockTimeoutError, (LockError,)),
        (DeadlockError, (LockError,)),
        (LockCancelledError, (LockError,)),
        (LockUsageError, (LockError, ValueError)),
        (LockTypeError, (LockUsageError, TypeError)),
        (InvalidRangeError, (LockUsageError,)),
        (NotHeldError, (LockUsageError,)),
        (OwnerBusyError, (LockUsageError,)),
    ],
)
def test_error_tree(error: type, bases: tuple[type, ...]) -> None:
    for base in bases:
        assert issubclass(error, base)
    assert re.search(rf"\b{error.__name__}\b", API_DOC)


def test_modules_stay_small_and_explain_themselves() -> None:
    for module in sorted((PACKAGE / "src" / "lock_db").glob("*.py")):
        text = module.read_text()
        assert len(text.splitlines()) <= 450, f"{module.name} is too long"
        if module.name not in ("_version.py",):
            assert text.startswith('"""'), f"{module.name} has no module docstring"
        for marker in ("TODO", "FIXME", "XXX", "NotImplementedError"):
            assert marker not in text, f"{module.name} contains {marker}"
