"""PNG charts for the docs, from result documents (matplotlib, a bench-only dependency).

- ``throughput-<scale>.png``: one panel per throughput workload, a horizontal bar per
  engine, each labelled with its figure (linear scale, so bar lengths compare);
- ``commits-<scale>.png``: durable commit rate against thread count, one line per engine;
- ``scaling.png`` (given several sizes): one panel per workload, the figure of strata's
  default mode and three peers against data size (log-log).
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


SCALING_ENGINES = ("strata-standard", "sqlite3-normal", "lmdb", "rocksdict")
SIZED = [w for w in WORKLOADS if not w.key.startswith("commit_")]  # commits do not grow


def scaling(documents: list[dict[str, Any]], out: Path) -> Path | None:
    """One panel per workload: each of ``SCALING_ENGINES``' figure against data size."""
    documents = sorted(documents, key=lambda d: d["records"])
    if len(documents) < 2:
        return None
    plt = _pyplot()
    columns = 3
    rows = (len(SIZED) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(13, 3.1 * rows))
    for axis, workload in zip(axes.flat, SIZED, strict=False):
        for engine in SCALING_ENGINES:
            points = [
                (d["records"], value)
                for d in documents
                if (value := figure(d, engine, workload.key))
            ]
            if len(points) >= 2:
                style = {"linewidth": 2.5, "color": STRATA_COLOUR} if "strata" in engine else {}
                axis.plot(*zip(*points, strict=True), marker="o", label=engine, **style)
        axis.set_xscale("log")
        axis.set_yscale("log")
        better = "higher" if workload.higher_is_better else "lower"
        axis.set_title(f"{workload.title}\n({workload.unit}, {better} is better)", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(True, which="both", alpha=0.3)
    for axis in list(axes.flat)[len(SIZED) :]:
        axis.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    sizes = ", ".join(f"{d['records']:,}" for d in documents)
    fig.suptitle(f"How each workload changes with data size (records: {sizes})", y=0.995)
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, 0.975))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
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
