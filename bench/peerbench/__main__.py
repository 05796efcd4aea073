"""Command line: ``python -m peerbench {run,check,plot,child}`` (``bench/`` on the path).

- ``run --scale 1m``: every engine (or ``--engines a,b``) at one data size; writes
  ``results-<scale>.json`` and ``.md`` to ``--out`` and prints the tables.
- ``check``: the regression check (:mod:`peerbench.check`).
- ``plot RESULTS.json...``: PNG charts (:mod:`peerbench.plots`).
- ``scaling RESULTS.json...``: a markdown table of how each figure changes with data size.
- ``report RESULTS.json...``: rewrite each document's ``.md`` beside it (after a change to
  the table layout; the figures come from the JSON).
- ``child``: one phase of one engine (used by ``run``; not for people).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import runner
from .engines import ENGINES
from .workloads import SCALES

DEFAULT_WORKDIR = Path(os.environ.get("PEERBENCH_DIR", runner.BENCH_ROOT / ".work"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peerbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="measure engines at one data size")
    run.add_argument("--scale", choices=sorted(SCALES), default="100k")
    run.add_argument("--engines", default=",".join(ENGINES), help="comma-separated names")
    run.add_argument("--out", type=Path, default=runner.BENCH_ROOT / "results")
    run.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    run.add_argument("--timeout", type=float, default=3600.0, help="per child process, s")

    check = commands.add_parser("check", help="compare strata/sqlite3 ratios with a baseline")
    from . import check as check_module

    check_module.add_arguments(check)

    plot = commands.add_parser("plot", help="render PNG charts from result documents")
    plot.add_argument("results", type=Path, nargs="+")
    plot.add_argument("--out", type=Path, required=True)

    sizes = commands.add_parser("scaling", help="a markdown table across data sizes")
    sizes.add_argument("results", type=Path, nargs="+")

    rewrite = commands.add_parser("report", help="rewrite the markdown of result documents")
    rewrite.add_argument("results", type=Path, nargs="+")

    child = commands.add_parser("child", help=argparse.SUPPRESS)
    child.add_argument("phase", choices=runner.PHASES)
    child.add_argument("--engine", required=True)
    child.add_argument("--scale", required=True)
    child.add_argument("--dir", type=Path, required=True)
    child.add_argument("--json", type=Path, required=True)

    args = parser.parse_args(argv)
    if args.command == "child":
        return runner.child(args.phase, args.engine, args.scale, args.dir, args.json)
    if args.command == "check":
        return check_module.main(args)
    if args.command == "plot":
        from . import plots

        for path in plots.render([json.loads(p.read_text()) for p in args.results], args.out):
            print(f"wrote {path}")
        return 0
    if args.command == "report":
        from . import report

        for path in args.results:
            path.with_suffix(".md").write_text(report.markdown(json.loads(path.read_text())))
            print(f"wrote {path.with_suffix('.md')}")
        return 0
    if args.command == "scaling":
        from . import report

        print(report.scaling([json.loads(p.read_text()) for p in args.results]), end="")
        return 0
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from . import report

    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    document = runner.run(engines, args.scale, args.workdir, args.timeout)
    document["ratios"] = report.ratios(document)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"results-{args.scale}"
    stem.with_suffix(".json").write_text(json.dumps(document, indent=1) + "\n")
    table = report.markdown(document)
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
