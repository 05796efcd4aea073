#!/usr/bin/env python3
"""Enforce the import rules of the Strata family (docs/architecture.md, "Import rules").

Usage, from the repository root::

    python tools/check_layers.py [ROOT]

ROOT defaults to the repository that holds this script. The checker parses, with ``ast`` and
without importing anything, every ``.py`` file under ``packages/*/src``, ``packages/*/tests``,
``packages/*/bench`` and ``packages/*/fuzz``, and reports:

- an import of another project package that the importing package's layer does not allow
  (``ALLOWED_PROJECT_IMPORTS``); nothing but ``strata`` itself may import ``strata``;
- ``strata_testkit`` imported from ``src/`` (it is for tests, benchmarks and fuzz targets);
- a name taken from another project package that is not in that package's ``__all__``, read
  statically from ``packages/<folder>/src/<import>/__init__.py``;
- a private (``_``-prefixed) module of another package, however it is reached; a package's
  own tests, benchmarks and fuzz targets may use its private modules, since they are its own;
- a third-party import in ``src/`` that the package may not use (``ALLOWED_THIRD_PARTY``).
  Standard-library modules (``sys.stdlib_module_names`` of the running interpreter) are
  always allowed, so run the checker with the oldest supported Python to catch modules that
  newer versions added.

Imports are found wherever they occur (module level, inside functions, under
``if TYPE_CHECKING:``), and so are ``importlib.import_module("...")`` and
``__import__("...")`` calls whose argument is a string literal. Relative imports stay inside
their own package and are not checked.

Each violation is printed as ``path:line: message``; the exit status is 1 if there is any,
2 if ROOT holds no ``packages/`` directory, else 0 after a one-line summary.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The layer table. Keys are import names; values are the project packages each may import.
ALLOWED_PROJECT_IMPORTS: dict[str, frozenset[str]] = {
    "page_db": frozenset(),
    "wal_db": frozenset(),
    "lock_db": frozenset(),
    "persist_db": frozenset({"wal_db"}),
    "index_db": frozenset({"page_db", "persist_db"}),
    "strata": frozenset({"page_db", "wal_db", "lock_db", "persist_db", "index_db"}),
}

# Third-party distributions' import names that each package's src/ may use.
ALLOWED_THIRD_PARTY: dict[str, frozenset[str]] = {
    "page_db": frozenset({"crc32c"}),
    "wal_db": frozenset({"crc32c"}),
    "lock_db": frozenset(),
    "persist_db": frozenset({"crc32c", "zstandard", "lz4"}),
    "index_db": frozenset({"numpy"}),
    "strata": frozenset({"numpy", "msgpack", "sortedcontainers", "crc32c"}),
}

TESTKIT = "strata_testkit"
UMBRELLA = "strata"
# Directories under packages/<folder>/ that are scanned; only "src" is shipped code.
SCANNED_DIRS = ("src", "tests", "bench", "fuzz")
DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: where it is and what is wrong."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Package:
    """A project package found under packages/<folder>/src/<name>/."""

    folder: Path
    name: str
    public_names: frozenset[str] | None  # None when __all__ could not be read


@dataclass(frozen=True)
class ImportRef:
    """One import found in a file: ``module`` and, for ``from`` imports, the names taken."""

    line: int
    module: str
    names: tuple[str, ...] | None  # None for ``import module``


@dataclass
class Report:
    """Everything the checker found, plus counts for the summary line."""

    violations: list[Violation]
    files: int = 0
    packages: int = 0


def read_public_names(init_file: Path) -> tuple[frozenset[str] | None, str | None]:
    """Read ``__all__`` from a package's ``__init__.py`` without importing it.

    Accepts ``__all__ = [...]`` or ``(...)`` of string literals (annotated or not), and
    later ``__all__ += [...]`` or ``__all__.extend([...])`` of the same kind.

    Returns:
        The names and None, or None and the reason they could not be read.
    """
    try:
        tree = ast.parse(init_file.read_text(encoding="utf-8"), filename=str(init_file))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        return None, f"cannot parse: {exc}"
    names: set[str] = set()
    found = False
    for node in tree.body:
        step = _all_statement(node)
        if step is None:
            continue
        value, replaces = step
        literal = _string_sequence(value)
        if literal is None:
            return None, f"line {node.lineno}: __all__ must be built from literal lists of str"
        if replaces:
            found = True
            names.clear()
        names.update(literal)
    if not found:
        return None, "no __all__ defined"
    return frozenset(names), None


def _all_statement(node: ast.stmt) -> tuple[ast.expr | None, bool] | None:
    """Classify a module-level statement that sets or grows ``__all__``.

    Returns:
        None if the statement does not touch ``__all__``; else the value expression and
        whether it replaces (``=``) rather than extends (``+=``, ``.extend``) the names.
    """
    if isinstance(node, ast.Assign) and _targets_all(node.targets):
        return node.value, True
    if isinstance(node, ast.AnnAssign) and _targets_all([node.target]):
        return node.value, True
    if isinstance(node, ast.AugAssign) and _targets_all([node.target]):
        return node.value, False
    if _is_all_extend(node):
        assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        return node.value.args[0], False
    return None


def _targets_all(targets: Sequence[ast.expr]) -> bool:
    return len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id == "__all__"


def _is_all_extend(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "extend"
        and isinstance(func.value, ast.Name)
        and func.value.id == "__all__"
        and len(node.value.args) == 1
    )


def _string_sequence(value: ast.expr | None) -> list[str] | None:
    if not isinstance(value, (ast.List, ast.Tuple)):
        return None
    out: list[str] = []
    for element in value.elts:
        if not (isinstance(element, ast.Constant) and isinstance(element.value, str)):
            return None
        out.append(element.value)
    return out


def discover_packages(root: Path, report: Report) -> dict[str, Package]:
    """Find packages/<folder>/src/<name>/__init__.py and read each package's ``__all__``."""
    packages: dict[str, Package] = {}
    for folder in sorted(p for p in (root / "packages").iterdir() if p.is_dir()):
        src = folder / "src"
        candidates = []
        if src.is_dir():
            candidates = sorted(d for d in src.iterdir() if d.is_dir() and d.name.isidentifier())
        if len(candidates) != 1:
            where = _rel(src, root)
            found = ", ".join(d.name for d in candidates) or "none"
            report.violations.append(
                Violation(where, 1, f"expected exactly one import package, found {found}")
            )
            continue
        name = candidates[0].name
        init_file = candidates[0] / "__init__.py"
        if name not in ALLOWED_PROJECT_IMPORTS:
            report.violations.append(
                Violation(
                    _rel(candidates[0], root),
                    1,
                    f"unknown package {name!r}: add it to the layer tables in "
                    "tools/check_layers.py and docs/architecture.md",
                )
            )
        public: frozenset[str] | None = None
        if init_file.is_file():
            public, problem = read_public_names(init_file)
            if problem is not None:
                report.violations.append(Violation(_rel(init_file, root), 1, problem))
        else:
            report.violations.append(Violation(_rel(init_file, root), 1, "missing __init__.py"))
        packages[name] = Package(folder=folder, name=name, public_names=public)
    return packages


def iter_imports(tree: ast.AST) -> Iterator[ImportRef]:
    """Yield every absolute import in ``tree``, including literal dynamic imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportRef(node.lineno, alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:
                names = tuple(alias.name for alias in node.names)
                yield ImportRef(node.lineno, node.module, names)
        elif isinstance(node, ast.Call) and (target := _dynamic_import_target(node)):
            yield ImportRef(node.lineno, target, None)


def _dynamic_import_target(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        func_name = func.attr
    elif isinstance(func, ast.Name):
        func_name = func.id
    else:
        return None
    if func_name not in DYNAMIC_IMPORTERS or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value:
        if first.value.startswith("."):
            return None  # relative to its own package
        return first.value
    return None


def check_import(
    ref: ImportRef,
    *,
    owner: str,
    in_src: bool,
    packages: dict[str, Package],
) -> list[str]:
    """Return the messages for one import made by package ``owner``."""
    top, _, rest = ref.module.partition(".")
    if top == owner:
        return []
    if top == TESTKIT:
        if in_src:
            return [f"{TESTKIT} is for tests/, bench/ and fuzz/ only, not src/"]
        return []
    if top in ALLOWED_PROJECT_IMPORTS or top in packages:
        return _check_project_import(ref, owner=owner, target=packages.get(top), top=top, rest=rest)
    if in_src and top not in sys.stdlib_module_names:
        allowed = ALLOWED_THIRD_PARTY.get(owner, frozenset())
        if top not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            return [
                f"{owner} may not import third-party module {top!r} in src/ "
                f"(allowed: stdlib, {listed})"
            ]
    return []


def _check_project_import(
    ref: ImportRef, *, owner: str, target: Package | None, top: str, rest: str
) -> list[str]:
    if top == UMBRELLA:
        return [f"{owner} imports {UMBRELLA!r}: nothing but {UMBRELLA} itself may import it"]
    allowed = ALLOWED_PROJECT_IMPORTS.get(owner, frozenset())
    if top not in allowed:
        listed = ", ".join(sorted(allowed)) or "no other project package"
        return [f"{owner} may not import {top} (layering: {owner} may import {listed})"]
    if target is None:
        return [f"{top} is not under packages/, so its public names cannot be checked"]
    public = target.public_names  # None: already reported on its __init__.py
    parts = rest.split(".") if rest else []
    private = [p for p in parts if p.startswith("_")]
    if private:
        return [f"private module {ref.module!r} of {top} (use names from {top}.__all__)"]
    if parts:
        if public is not None and parts[0] not in public:
            return [
                f"submodule {top}.{parts[0]} is not in {top}.__all__: "
                f"import public names from {top} itself"
            ]
        return []
    if ref.names is None or public is None:
        return []
    messages: list[str] = []
    for name in ref.names:
        if name == "*":
            continue  # a star import takes exactly __all__
        if name not in public:
            kind = "private module or name" if name.startswith("_") else "name"
            messages.append(f"{kind} {name!r} is not in {top}.__all__")
    return messages


def check_file(
    path: Path, *, root: Path, owner: str, in_src: bool, packages: dict[str, Package]
) -> list[Violation]:
    """Parse one file and check every import in it."""
    where = _rel(path, root)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return [Violation(where, exc.lineno or 1, f"cannot parse: {exc.msg}")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [Violation(where, 1, f"cannot read: {exc}")]
    found: list[Violation] = []
    for ref in iter_imports(tree):
        for message in check_import(ref, owner=owner, in_src=in_src, packages=packages):
            found.append(Violation(where, ref.line, message))
    return found


def check_tree(root: Path) -> Report:
    """Check every scanned file of every package under ``root/packages``."""
    report = Report(violations=[])
    packages = discover_packages(root, report)
    report.packages = len(packages)
    for package in packages.values():
        for dirname in SCANNED_DIRS:
            base = package.folder / dirname
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*.py")):
                if _ignored(path, base):
                    continue
                report.files += 1
                report.violations.extend(
                    check_file(
                        path,
                        root=root,
                        owner=package.name,
                        in_src=dirname == "src",
                        packages=packages,
                    )
                )
    report.violations.sort()
    return report


def _ignored(path: Path, base: Path) -> bool:
    """Skip build output and caches that may sit inside a package directory."""
    parts = path.relative_to(base).parts[:-1]
    return any(p in {"build", "__pycache__"} or p.startswith(".") for p in parts)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checker on ROOT (first argument) and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "root",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="repository root (default: the repository holding this script)",
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if not (root / "packages").is_dir():
        print(f"check_layers: no packages/ directory under {root}", file=sys.stderr)
        return 2
    report = check_tree(root)
    for violation in report.violations:
        print(violation)
    if report.violations:
        print(f"check_layers: {len(report.violations)} violation(s)", file=sys.stderr)
        return 1
    print(f"check_layers: {report.files} files in {report.packages} packages, no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
