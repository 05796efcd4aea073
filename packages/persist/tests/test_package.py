"""The package's metadata agrees with its source, and every public name exists."""

from __future__ import annotations

from importlib.metadata import version

import persist_db


def test_version_matches_metadata_and_public_names_exist() -> None:
    assert persist_db.__version__ == version("persist-db") == "1.0.0"
    missing = [name for name in persist_db.__all__ if not hasattr(persist_db, name)]
    assert missing == [], f"names in __all__ but not defined: {missing}"


def test_the_contract_other_packages_are_written_against() -> None:
    import inspect

    save = inspect.signature(persist_db.save).parameters
    assert list(save)[:2] == ["path", "payload"]
    assert {n: save[n].default for n in ("version", "compression", "level", "meta")} == {
        "version": 1,
        "compression": None,
        "level": None,
        "meta": None,
    }
    assert save["kind"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.signature(persist_db.load).parameters["kind"].default is None
    fields = persist_db.Snapshot.__dataclass_fields__
    assert {"kind", "version", "payload", "meta", "created"} <= set(fields)
    assert issubclass(persist_db.CorruptSnapshotError, persist_db.PersistError)
    assert issubclass(persist_db.UnsupportedFormatError, persist_db.PersistError)
