"""The ``strata`` command: verify, stats, compact, backup and restore a database.

Run as ``strata COMMAND ...`` (the console script) or ``python -m strata COMMAND ...``.
Reports print as JSON on stdout; errors print one line on stderr. Exit status: 0 done,
1 ``verify`` found damage, 2 the command failed (bad arguments, a database that cannot be
opened, a corrupt file, a locked directory).

``verify``, ``stats`` and ``backup`` open the database read-only, so they run beside a live
writer (and see the state as of the open); ``compact`` needs the writer's lock.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ._backup import restore as restore_backup
from ._database import open as open_database
from ._version import __version__
from .errors import StrataError

__all__ = ["main"]


def _print(report: Any) -> None:
    print(json.dumps(report, indent=2, sort_keys=True, default=str))


def _verify(args: argparse.Namespace) -> int:
    with open_database(args.path, read_only=True) as db:
        report = db.verify()
    _print(report)
    return 0 if report["ok"] else 1


def _stats(args: argparse.Namespace) -> int:
    with open_database(args.path, read_only=True) as db:
        _print(db.stats())
    return 0


def _compact(args: argparse.Namespace) -> int:
    with open_database(args.path) as db:
        _print(db.compact())
    return 0


def _backup(args: argparse.Namespace) -> int:
    compression = None if args.compression == "none" else args.compression
    with open_database(args.path, read_only=True) as db:
        _print(db.backup(args.dest, compression=compression))
    return 0


def _restore(args: argparse.Namespace) -> int:
    _print(restore_backup(args.src, args.dest, page_size=args.page_size))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strata", description="Inspect and maintain a strata database directory."
    )
    parser.add_argument("--version", action="version", version=f"strata {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify", help="check every layer; exit 1 if anything is damaged (read-only)"
    )
    verify.add_argument("path", help="the database directory")
    verify.set_defaults(run=_verify)
    stats = commands.add_parser("stats", help="sizes, counts, WAL and GC figures (read-only)")
    stats.add_argument("path", help="the database directory")
    stats.set_defaults(run=_stats)
    compact = commands.add_parser(
        "compact", help="checkpoint, collect garbage and shrink the files (takes the lock)"
    )
    compact.add_argument("path", help="the database directory")
    compact.set_defaults(run=_compact)
    backup = commands.add_parser(
        "backup", help="write a consistent copy to one file (read-only, beside a writer)"
    )
    backup.add_argument("path", help="the database directory")
    backup.add_argument("dest", help="the backup file to write")
    backup.add_argument("--compression", choices=("zstd", "lz4", "none"), default="zstd")
    backup.set_defaults(run=_backup)
    restore = commands.add_parser(
        "restore", help="check a backup file and build a new database from it"
    )
    restore.add_argument("src", help="a file written by backup")
    restore.add_argument("dest", help="a directory that does not exist yet (or is empty)")
    restore.add_argument("--page-size", type=int, default=4096)
    restore.set_defaults(run=_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``strata`` command.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 1 ``verify`` found damage, 2 the command failed.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except (StrataError, ValueError, OSError) as exc:  # ValueError: e.g. lz4 not installed
        print(f"strata {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return status
