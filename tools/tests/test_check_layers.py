"""Tests for tools/check_layers.py: each rule catches its violation, a clean tree passes.

Every test builds a small packages/ tree in ``tmp_path`` that mirrors the real layout
(packages/<folder>/src/<import>/__init__.py with ``__all__``), adds at most one offending
file, and runs the checker's ``main`` on that root.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "check_layers.py"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


check_layers = _load_checker()

FOLDERS = {
    "page_db": "page-db",
    "wal_db": "wal-db",
    "lock_db": "lock-db",
    "persist_db": "persist",
    "index_db": "index-db",
    "strata": "strata",
}

# Legal imports of each package's src/, one per allowed edge of the layer table.
CLEAN_SRC = {
    "page_db": "import crc32c\nfrom ._private import helper\n",
    "wal_db": "import os\nimport crc32c\n",
    "lock_db": "import threading\nfrom typing import TYPE_CHECKING\n",
    "persist_db": "import zstandard\nimport lz4.frame\nfrom wal_db import Public\n",
    "index_db": (
        "from __future__ import annotations\n"
        "import numpy as np\n"
        "import page_db\n"
        "from page_db import Public\n"
        "from persist_db import *\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from page_db import Public as P\n"
    ),
    "strata": (
        "import msgpack\n"
        "import numpy\n"
        "from page_db import Public\n"
        "from wal_db import Public as W\n"
        "from lock_db import Public as L\n"
        "from persist_db import Public as S\n"
        "from index_db import Public as I\n"
    ),
}


def write(root: Path, relpath: str, text: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A clean six-package tree: every allowed kind of import, no violation."""
    for name, folder in FOLDERS.items():
        base = f"packages/{folder}"
        write(
            tmp_path,
            f"{base}/src/{name}/__init__.py",
            '"""Fake package."""\n'
            "from ._version import __version__\n"
            "Public = 1\n"
            '__all__ = ["__version__", "Public"]\n',
        )
        write(tmp_path, f"{base}/src/{name}/_version.py", '__version__ = "0.1.0"\n')
        write(tmp_path, f"{base}/src/{name}/_private.py", "helper = 1\n")
        write(tmp_path, f"{base}/src/{name}/core.py", CLEAN_SRC[name])
        # Tests may use their own package's private modules, the test kit and any
        # third-party test tool.
        write(
            tmp_path,
            f"{base}/tests/test_it.py",
            f"import pytest\nimport hypothesis\nimport strata_testkit\n"
            f"from {name}._private import helper\nfrom {name} import _private\n",
        )
        write(tmp_path, f"{base}/bench/bench_it.py", "from strata_testkit import anything\n")
        write(tmp_path, f"{base}/fuzz/fuzz_it.py", "import atheris\n")
    # Build output inside a package is not scanned.
    write(tmp_path, "packages/page-db/build/lib/page_db/x.py", "import wal_db\n")
    return tmp_path


def run(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = check_layers.main([str(root)])
    out = capsys.readouterr().out
    return status, out


def assert_one_violation(
    root: Path, capsys: pytest.CaptureFixture[str], where: str, fragment: str
) -> None:
    status, out = run(root, capsys)
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(where + ":"), out
    assert fragment in lines[0], out


def test_clean_tree_passes(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(tree, capsys)
    assert status == 0, out
    assert out.strip() == "check_layers: 42 files in 6 packages, no violations"


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("page_db", "wal_db"),
        ("wal_db", "page_db"),
        ("lock_db", "page_db"),
        ("wal_db", "persist_db"),
        ("persist_db", "page_db"),
        ("persist_db", "index_db"),
        ("index_db", "wal_db"),
        ("index_db", "lock_db"),
    ],
)
def test_import_outside_the_layer_table_is_reported(
    tree: Path, capsys: pytest.CaptureFixture[str], importer: str, imported: str
) -> None:
    rel = f"packages/{FOLDERS[importer]}/src/{importer}/bad.py"
    write(tree, rel, f"import os\nfrom {imported} import Public\n")
    assert_one_violation(tree, capsys, f"{rel}:2", f"{importer} may not import {imported}")


def test_layer_rule_applies_to_tests_too(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = "packages/lock-db/tests/test_bad.py"
    write(tree, rel, "import wal_db\n")
    assert_one_violation(tree, capsys, f"{rel}:1", "lock_db may not import wal_db")


@pytest.mark.parametrize("where", ["src/index_db/bad.py", "tests/test_bad.py"])
def test_nothing_but_strata_imports_strata(
    tree: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    rel = f"packages/index-db/{where}"
    write(tree, rel, "def f():\n    import strata\n")
    assert_one_violation(tree, capsys, f"{rel}:2", "nothing but strata itself may import it")


def test_testkit_is_rejected_in_src(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = "packages/page-db/src/page_db/bad.py"
    write(tree, rel, "from strata_testkit import CrashFile\n")
    assert_one_violation(tree, capsys, f"{rel}:1", "strata_testkit is for tests/")


def test_name_outside_all_is_reported(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = "packages/index-db/src/index_db/bad.py"
    write(tree, rel, "from page_db import Public, Hidden\n")
    assert_one_violation(tree, capsys, f"{rel}:1", "name 'Hidden' is not in page_db.__all__")


@pytest.mark.parametrize(
    "statement",
    [
        "import page_db._private",
        "from page_db._private import helper",
        "from page_db import _private",
        "import importlib\nimportlib.import_module('page_db._private')",
        "__import__('page_db._private')",
    ],
)
@pytest.mark.parametrize("where", ["src/index_db/bad.py", "tests/test_bad.py"])
def test_private_module_of_another_package_is_reported(
    tree: Path, capsys: pytest.CaptureFixture[str], statement: str, where: str
) -> None:
    rel = f"packages/index-db/{where}"
    write(tree, rel, statement + "\n")
    line = statement.count("\n") + 1
    assert_one_violation(tree, capsys, f"{rel}:{line}", "private")


def test_public_submodule_must_be_exported(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "packages/page-db/src/page_db/errors.py", "class PageError(Exception): ...\n")
    rel = "packages/index-db/src/index_db/bad.py"
    write(tree, rel, "from page_db.errors import PageError\n")
    assert_one_violation(tree, capsys, f"{rel}:1", "submodule page_db.errors is not in")


def test_exported_submodule_is_allowed(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        tree,
        "packages/page-db/src/page_db/__init__.py",
        '__all__ = ["Public", "errors"]\n__all__ += ["__version__"]\n',
    )
    write(tree, "packages/index-db/src/index_db/ok.py", "import page_db.errors\n")
    status, out = run(tree, capsys)
    assert status == 0, out


@pytest.mark.parametrize(
    ("importer", "module"),
    [("page_db", "numpy"), ("lock_db", "crc32c"), ("index_db", "zstandard"), ("strata", "lz4")],
)
def test_third_party_outside_allow_list_is_reported_in_src(
    tree: Path, capsys: pytest.CaptureFixture[str], importer: str, module: str
) -> None:
    rel = f"packages/{FOLDERS[importer]}/src/{importer}/bad.py"
    write(tree, rel, f"import {module}\n")
    assert_one_violation(tree, capsys, f"{rel}:1", f"third-party module {module!r}")


def test_unreadable_all_is_reported(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = "packages/lock-db/src/lock_db/__init__.py"
    write(tree, rel, "NAMES = ['x']\n__all__ = NAMES\n")
    assert_one_violation(tree, capsys, f"{rel}:1", "__all__ must be built from literal lists")


def test_missing_all_is_reported(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = "packages/lock-db/src/lock_db/__init__.py"
    write(tree, rel, '"""No __all__ here."""\n')
    assert_one_violation(tree, capsys, f"{rel}:1", "no __all__ defined")


def test_unknown_package_is_reported(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree, "packages/extra/src/extra_db/__init__.py", "__all__ = []\n")
    assert_one_violation(
        tree, capsys, "packages/extra/src/extra_db:1", "unknown package 'extra_db'"
    )


def test_import_of_a_package_missing_from_the_tree_is_reported(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(tree / "packages/lock-db")
    assert_one_violation(
        tree, capsys, "packages/strata/src/strata/core.py:5", "lock_db is not under packages/"
    )


def test_syntax_error_is_reported(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = "packages/wal-db/src/wal_db/broken.py"
    write(tree, rel, "x = 1\ndef (:\n")
    assert_one_violation(tree, capsys, f"{rel}:2", "cannot parse")


def test_missing_packages_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_layers.main([str(tmp_path)]) == 2
    assert "no packages/ directory" in capsys.readouterr().err
