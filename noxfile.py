"""Sessions for the Strata monorepo. `nox` runs the default list (what CI runs).

Each package has a `tests-<package>` session that installs it with its in-repo
dependencies and the shared test kit, then runs its tests. `nox -l` lists everything.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).parent
TESTKIT = "tools/testkit"

# folder -> (import name, in-repo dependencies in install order)
PACKAGES: dict[str, tuple[str, list[str]]] = {
    "page-db": ("page_db", []),
    "wal-db": ("wal_db", []),
    "lock-db": ("lock_db", []),
    "persist": ("persist_db", ["wal-db"]),
    "index-db": ("index_db", ["page-db", "wal-db", "persist"]),
    "strata": ("strata", ["page-db", "wal-db", "lock-db", "persist", "index-db"]),
}
# Optional extras a package is installed with wherever every feature must be importable
# (tests, types, fuzz, bench): persist-db's lz4 codec is an extra.
FULL_EXTRAS: dict[str, str] = {"persist": "lz4"}
OLDEST = [
    "crc32c==2.3",
    "zstandard==0.21.0",
    "lz4==4.0.0",
    "numpy==1.24.0",
    "pytest==7.0.0",
    "hypothesis==6.80.0",
    "msgpack==1.0.3",
    "sortedcontainers==2.4.0",
]
OLDEST_PACKAGES = ["page-db", "wal-db", "lock-db", "persist", "index-db", "strata"]
# The peers of the comparative benchmark (bench/): each is installed on its own, and one
# that cannot install is reported by the harness as skipped, never faked.
PEERS = ["lmdb", "rocksdict", "plyvel", "diskcache", "ZODB", "BTrees", "semidbm"]
BENCH_EXTRAS = ["numpy>=1.24", "matplotlib>=3.6", "pytest>=7"]
FUZZ_SECONDS = 15  # per atheris target in the default run; `nox -s fuzz -- 600` for longer

nox.options.sessions = [
    *(f"tests-{name}" for name in PACKAGES),
    "tests-testkit",
    "tests-oldest",
    "lint",
    "types",
    "layers",
    "fuzz",
    "bench-check",
]
nox.options.error_on_missing_interpreters = True


def interpreter(version: str) -> str:
    """A working `pythonX.Y`: from PATH, else from pyenv's versions directory.

    A pyenv shim on PATH may exist yet refuse to run a version that is installed but not
    selected, so every candidate is tried before it is used.
    """
    pattern = os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")
    candidates = [shutil.which(f"python{version}"), *sorted(glob.glob(pattern), reverse=True)]
    for candidate in candidates:
        if candidate and _runs(candidate):
            return candidate
    return version  # let nox report the missing interpreter


def _runs(executable: str) -> bool:
    try:
        done = subprocess.run([executable, "-c", ""], check=False, capture_output=True, timeout=30)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def full(name: str) -> str:
    """The pip requirement for an in-repo package with every optional feature it has."""
    extras = FULL_EXTRAS.get(name)
    return f"packages/{name}[{extras}]" if extras else f"packages/{name}"


def everything() -> list[str]:
    """Every in-repo package, with every optional feature (see :data:`FULL_EXTRAS`)."""
    return [full(name) for name in PACKAGES]


def install_package(session: nox.Session, name: str, *, extras: str = "test") -> None:
    _, deps = PACKAGES[name]
    paths = [f"packages/{dep}" for dep in deps]
    session.install(TESTKIT, *paths, f"packages/{name}[{extras}]" if extras else f"packages/{name}")


def make_tests_session(name: str) -> None:
    def tests(session: nox.Session) -> None:
        install_package(session, name)
        session.run("pytest", f"packages/{name}/tests", *session.posargs)

    tests.__doc__ = f"Run {name}'s tests (with its in-repo dependencies and the test kit)."
    nox.session(name=f"tests-{name}")(tests)


for _name in PACKAGES:
    make_tests_session(_name)


@nox.session(name="tests-testkit")
def tests_testkit(session: nox.Session) -> None:
    """Run the shared crash-simulating storage test kit's own tests."""
    session.install(f"{TESTKIT}", "pytest>=7", "hypothesis>=6.80")
    session.run("pytest", f"{TESTKIT}/tests", *session.posargs)


@nox.session(name="tests-oldest", python=interpreter("3.10"))
def tests_oldest(session: nox.Session) -> None:
    """Run every package's tests on Python 3.10 with the oldest supported dependencies."""
    session.install(*OLDEST)
    session.install(TESTKIT, *(full(name) for name in OLDEST_PACKAGES))
    for name in OLDEST_PACKAGES:  # one pytest run each: their conftest.py files share a name
        session.run("pytest", f"packages/{name}/tests", "-m", "not slow", *session.posargs)


@nox.session(name="tests-py", python=[interpreter(v) for v in ("3.12", "3.13")])
def tests_py(session: nox.Session) -> None:
    """Run every package's tests on the newer Pythons (not in the default list)."""
    for name in PACKAGES:
        install_package(session, name)
        session.run("pytest", f"packages/{name}/tests", "-m", "not slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """Type-check every package's source (mypy --strict, per package) and the test kit."""
    session.install("mypy>=1.10", TESTKIT, *everything())
    for name, (import_name, _) in PACKAGES.items():
        session.run("mypy", f"packages/{name}/src/{import_name}")
    session.run("mypy", f"{TESTKIT}/src/strata_testkit", "tools/check_layers.py")
    session.run("mypy", "bench/peerbench")


@nox.session
def layers(session: nox.Session) -> None:
    """Enforce the import rules: nothing imports upward, across packages only public names."""
    session.install("pytest>=7")
    session.run("python", "tools/check_layers.py")
    session.run("pytest", "tools/tests", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Run every atheris target for a bounded time: `nox -s fuzz -- SECONDS` to change it."""
    seconds = int(session.posargs[0]) if session.posargs else FUZZ_SECONDS
    session.install("atheris>=2.3", TESTKIT, *everything())
    targets = sorted(glob.glob("packages/*/fuzz/fuzz_*.py"))
    if not targets:
        session.error("no fuzz targets found")
    artifacts = ROOT / "fuzz-artifacts"
    artifacts.mkdir(exist_ok=True)
    for target in targets:
        path = Path(target)
        # libFuzzer adds what it finds to its corpus directory: work on a copy of the seeds.
        corpus = Path(session.create_tmp()) / f"{path.stem}_corpus"
        shutil.rmtree(corpus, ignore_errors=True)
        seeds = path.with_name(f"{path.stem}_corpus")
        if seeds.is_dir():
            shutil.copytree(seeds, corpus)
        else:
            corpus.mkdir(parents=True)
        args = [
            f"-max_total_time={seconds}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={artifacts}/{path.stem}-",
            str(corpus),
        ]
        session.log(f"fuzzing {target} for {seconds}s (crashes go to {artifacts})")
        session.run("python", target, *args)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every package's benchmarks and print their tables (`-- page-db` for one package)."""
    wanted = session.posargs or list(PACKAGES)
    session.install(*everything())
    for name in wanted:
        for script in sorted(glob.glob(f"packages/{name}/bench/bench_*.py")):
            session.run("python", script)


@nox.session
def demo(session: nox.Session) -> None:
    """Install the packages and run the demo (what README's first command does)."""
    session.install(*(f"packages/{name}" for name in PACKAGES))
    session.run("python", "demo.py")


def install_bench(session: nox.Session) -> None:
    """Install the engine, the bench's own needs, and every peer that will install."""
    session.install(*everything(), *BENCH_EXTRAS)
    for peer in PEERS:
        try:
            session.install(peer)
        except CommandFailed:
            session.warn(f"peer {peer} did not install: the harness will report it skipped")
    session.env["PYTHONPATH"] = str(ROOT / "bench")


@nox.session
def compare(session: nox.Session) -> None:
    """strata against its peers at 100K and 1M records; tables, JSON and plots (`-- 100k`)."""
    install_bench(session)
    scales = session.posargs or ["100k", "1m"]
    for scale in scales:
        session.run("python", "-m", "peerbench", "run", "--scale", scale)
    results = [f"bench/results/results-{scale}.json" for scale in scales]
    session.run("python", "-m", "peerbench", "plot", *results, "--out", "docs/benchmarks")


@nox.session(name="compare-10m")
def compare_10m(session: nox.Session) -> None:
    """The longer lane: 10M records, then the plots across every size present.

    Left out: strata-always and sqlite3-full (the same engines as strata-standard and
    sqlite3-normal with an fsync per commit, which the 100K and 1M runs show) and diskcache
    (its full scan ran at 2,711 records/s at 1M: about an hour at 10M). Each child
    process (one engine, one phase) gets 15 minutes; a slower one is stopped and reported
    with what it measured by then. About an hour on a 2-core machine."""
    install_bench(session)
    engines = "strata-cache,strata-standard,sqlite3-normal,lmdb,rocksdict,plyvel,zodb,semidbm"
    session.run(
        "python", "-m", "peerbench", "run", "--scale", "10m", "--engines", engines,
        "--timeout", "900",
    )  # fmt: skip
    results = [f"bench/results/results-{scale}.json" for scale in ("100k", "1m", "10m")]
    present = [path for path in results if Path(path).exists()]
    session.run("python", "-m", "peerbench", "plot", *present, "--out", "docs/benchmarks")


@nox.session(name="bench-check")
def bench_check(session: nox.Session) -> None:
    """The harness's tests, then the regression check of strata/sqlite3 ratios (short)."""
    install_bench(session)
    session.run("pytest", "bench/tests", *session.posargs)
    session.run("python", "-m", "peerbench", "check")
