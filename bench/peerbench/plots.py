"""PNG charts for the docs, from result documents (matplotlib, a bench-only dependency).

- ``throughput-<scale>.png``: one panel per throughput workload, a horizontal bar per
  engine, each labelled with its figure (linear scale, so bar lengths compare);
- ``commits-<scale>.png``: durable commit rate against thread count, one line per engine;
- ``scaling.png`` (given several sizes): each strata-standard throughput workload's rate
  against data size, with sqlite3-normal's for reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import WORKLOADS, figure

THROUGHPUT = [w for w in WORKLOADS if w.higher_is_better and not w.key.startswith("commit_")]
STRATA_COLOUR = "#c0392b"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _engines(document: dict[str, Any]) -> list[str]:
    return [e for e, entry in document["engines"].items() if entry.get("status") == "ok"]


def throughput(document: dict[str, Any], out: Path) -> Path:
    plt = _pyplot()
    engines = _engines(document)
    columns = 2
    rows = (len(THROUGHPUT) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(12, 2.2 + 0.26 * len(engines) * rows))
    for axis, workload in zip(axes.flat, THROUGHPUT, strict=False):
        names, values = [], []
        for engine in engines:
            value = figure(document, engine, workload.key)
            if value:
                names.append(engine)
                values.append(value)
        colours = [STRATA_COLOUR if n.startswith("strata") else "#7f8c8d" for n in names]
        bars = axis.barh(names[::-1], values[::-1], color=colours[::-1])
        axis.bar_label(bars, labels=[f"{v:,.0f}" for v in values[::-1]], fontsize=7, padding=2)
        axis.set_xlim(0, max(values, default=1) * 1.25)
        axis.ticklabel_format(axis="x", style="plain")
        axis.set_title(f"{workload.title} ({workload.unit})", fontsize=9)
        axis.tick_params(labelsize=8)
    for axis in list(axes.flat)[len(THROUGHPUT) :]:
        axis.set_visible(False)
    fig.suptitle(f"Throughput at {document['records']:,} records (higher is better)")
    fig.tight_layout()
    path = out / f"throughput-{document['scale']}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def commits(document: dict[str, Any], out: Path) -> Path | None:
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for engine in _engines(document):
        figures = document["engines"][engine].get("figures", {})
        points = sorted(
            (f["figure"]["detail"]["threads"], f["figure"]["value"])
            for key, f in figures.items()
            if key.startswith("commit_") and "figure" in f
        )
        if points:
            style = {"linewidth": 2.5} if engine.startswith("strata") else {"linestyle": "--"}
            axis.plot(*zip(*points, strict=True), marker="o", label=engine, **style)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("committing threads")
    axis.set_ylabel("durable commits/s")
    axis.set_title(f"Durable single-put commits ({document['records']:,} records run)")
    axis.legend(fontsize=8)
    axis.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = out / f"commits-{document['scale']}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def scaling(documents: list[dict[str, Any]], out: Path) -> Path | None:
    documents = sorted(documents, key=lambda d: d["records"])
    if len(documents) < 2:
        return None
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 5))
    sizes = [d["records"] for d in documents]
    for workload in THROUGHPUT:
        for engine, style in (("strata-standard", "-"), ("sqlite3-normal", ":")):
            values = [figure(d, engine, workload.key) for d in documents]
            if all(values):
                label = f"{workload.key} ({engine.split('-')[0]})"
                axis.plot(sizes, values, style, marker="o", label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("records")
    axis.set_ylabel("rate (per workload's unit)")
    axis.set_title("How throughput changes with data size")
    axis.legend(fontsize=7, ncol=2)
    axis.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = out / "scaling.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render(documents: list[dict[str, Any]], out: Path) -> list[Path]:
    """Every chart for ``documents`` (one per data size), written under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for document in documents:
        paths.append(throughput(document, out))
        drawn = commits(document, out)
        if drawn:
            paths.append(drawn)
    combined = scaling(documents, out)
    if combined:
        paths.append(combined)
    return paths
