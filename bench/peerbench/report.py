"""Tables from a result document: absolute figures, and strata-to-peer ratios.

A ratio is strata's *advantage* over a peer measured in the same run: throughput
strata / peer, or for costs (recovery time, bytes on disk) peer / strata, so above 1
always means strata leads. Durable-commit rows compare ``strata-always`` (the mode whose
commits are durable); every other row compares ``strata-standard`` (the default mode).
"""

from __future__ import annotations

from typing import Any

from .engines import STRATA


class Workload:
    """How one workload's figure is labelled, formatted and compared."""

    def __init__(self, key: str, title: str, unit: str, higher_is_better: bool = True) -> None:
        self.key, self.title, self.unit = key, title, unit
        self.higher_is_better = higher_is_better

    def strata_engine(self) -> str:
        return "strata-always" if self.key.startswith("commit_") else "strata-standard"

    def format(self, value: float) -> str:
        if self.unit == "x":
            return f"{value:.2f}x"
        if self.unit == "s":
            if value < 0.01:
                return f"{value * 1000:.2g} ms"
            return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
        return f"{value:,.0f}"


WORKLOADS = [
    Workload("load", "sequential bulk load (batches of 10,000)", "records/s"),
    Workload("put_batch", "random puts (batches of 1,000)", "records/s"),
    Workload("get", "random gets (warm)", "ops/s"),
    Workload("scan_all", "full ordered scan", "records/s"),
    Workload("scan_100", "range scans of 100 keys", "scans/s"),
    Workload("ycsb_a", "YCSB A: 50% read, 50% update", "ops/s"),
    Workload("ycsb_b", "YCSB B: 95% read, 5% update", "ops/s"),
    Workload("ycsb_c", "YCSB C: 100% read", "ops/s"),
    Workload("ycsb_e", "YCSB E: 95% scan, 5% insert", "ops/s"),
    Workload("ycsb_f", "YCSB F: 50% read, 50% read-modify-write", "ops/s"),
    Workload("commit_1", "durable single-put commits, 1 thread", "commits/s"),
    Workload("commit_16", "durable single-put commits, 16 threads", "commits/s"),
    Workload("recovery", "recovery after a crash (reopen + first read)", "s", False),
    Workload("space", "bytes on disk per logical byte", "x", False),
]
BY_KEY = {workload.key: workload for workload in WORKLOADS}


def figure(document: dict[str, Any], engine: str, workload: str) -> float | None:
    """The measured value, or None when the engine has none for this workload."""
    entry = document["engines"].get(engine, {})
    found = entry.get("figures", {}).get(workload, {})
    if "figure" not in found:
        return None
    value: float = found["figure"]["value"]
    return value


def advantage(document: dict[str, Any], workload: Workload, peer: str) -> float | None:
    """strata's advantage over ``peer`` on ``workload`` (above 1: strata leads)."""
    ours = figure(document, workload.strata_engine(), workload.key)
    theirs = figure(document, peer, workload.key)
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return ours / theirs if workload.higher_is_better else theirs / ours


def ratios(document: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{peer: {workload: advantage}}`` for every peer that ran."""
    table: dict[str, dict[str, float]] = {}
    for peer, entry in document["engines"].items():
        if peer in STRATA or entry.get("status") != "ok":
            continue
        row = {w.key: advantage(document, w, peer) for w in WORKLOADS}
        table[peer] = {key: round(value, 4) for key, value in row.items() if value is not None}
    return table


def ratio_text(ratio: float) -> str:
    """A ratio with two decimals, two significant digits below 0.1 (0.0033, not 0.00),
    and ``<0.001`` below that."""
    if ratio >= 0.1:
        return f"{ratio:.2f}"
    return f"{ratio:.2g}" if ratio >= 0.001 else "<0.001"


def _cell(document: dict[str, Any], engine: str, workload: Workload, notes: list[str]) -> str:
    found = document["engines"][engine].get("figures", {}).get(workload.key)
    if found is None:
        return "-"
    if "figure" in found:
        return workload.format(found["figure"]["value"])
    reason = found.get("na") or found.get("error") or "?"
    if reason not in notes:
        notes.append(reason)
    return f"n/a[{notes.index(reason) + 1}]"


def _lost(document: dict[str, Any], engine: str) -> str:
    found = document["engines"][engine].get("figures", {}).get("recovery", {})
    if "figure" not in found:
        return "-"
    detail = found["figure"]["detail"]
    return f"{detail['acked_puts_lost']:,} of {detail['acked_puts']:,}"


def markdown(document: dict[str, Any]) -> str:
    """The result document as markdown: machine, absolute table, ratio table, notes."""
    engines = [e for e, entry in document["engines"].items() if entry.get("status") == "ok"]
    skipped = {e: x["reason"] for e, x in document["engines"].items() if x.get("status") != "ok"}
    m = document["machine"]
    lines = [
        f"### {document['records']:,} records ({document['scale']})",
        "",
        f"Measured {m['date']} on {m['cpu']} ({m['cpus']} CPUs, {m['memory']}), "
        f"{m['platform']}, Python {m['python']}. Command: `{document['command']}`.",
        "",
    ]
    notes: list[str] = []
    header = "| workload | unit | " + " | ".join(engines) + " |"
    lines += [header, "|" + "---|" * (len(engines) + 2)]
    durable = ["yes" if document["engines"][e].get("durable") else "no" for e in engines]
    lines.append("| each commit survives power loss | | " + " | ".join(durable) + " |")
    for workload in WORKLOADS:
        cells = [_cell(document, engine, workload, notes) for engine in engines]
        lines.append(f"| {workload.title} | {workload.unit} | " + " | ".join(cells) + " |")
    lost = [_lost(document, engine) for engine in engines]
    lines.append("| acknowledged puts the crash lost | puts | " + " | ".join(lost) + " |")
    lines.append("")
    table = ratios(document)
    if table:
        peers = list(table)
        lines += [
            "strata's advantage over each peer in this run (above 1: strata leads; durable "
            "commits: strata-always, every other row: strata-standard):",
            "",
            "| workload | " + " | ".join(peers) + " |",
            "|" + "---|" * (len(peers) + 1),
        ]
        for workload in WORKLOADS:
            cells = [
                ratio_text(table[p][workload.key]) if workload.key in table[p] else "-"
                for p in peers
            ]
            lines.append(f"| {workload.title} | " + " | ".join(cells) + " |")
        lines.append("")
    versions = ", ".join(f"{e}: {document['engines'][e]['version']}" for e in engines)
    lines += [f"Versions: {versions}.", ""]
    for index, note in enumerate(notes, 1):
        lines.append(f"[{index}] {note}  ")
    for engine, reason in skipped.items():
        lines.append(f"Skipped {engine}: {reason}  ")
    errors = [f"{e}: {err}" for e in engines for err in document["engines"][e].get("errors", [])]
    for error in errors:
        lines.append(f"Error {error}  ")
    return "\n".join(lines).rstrip() + "\n"


def _size(records: int) -> str:
    for unit, size in (("M", 1_000_000), ("K", 1_000)):
        if records >= size and records % size == 0:
            return f"{records // size}{unit}"
    return f"{records:,}"


def scaling(
    documents: list[dict[str, Any]], peers: tuple[str, ...] = ("sqlite3-normal", "lmdb")
) -> str:
    """How each workload changes with data size: strata's figure at every size, then its
    advantage over each of ``peers`` at every size (markdown; documents in any order)."""
    documents = sorted(documents, key=lambda d: d["records"])
    sizes = [_size(d["records"]) for d in documents]
    header = ["workload", "unit", *(f"strata {s}" for s in sizes)]
    header += [f"vs {peer} {s}" for peer in peers for s in sizes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for workload in WORKLOADS:
        cells = []
        for document in documents:
            value = figure(document, workload.strata_engine(), workload.key)
            cells.append("-" if value is None else workload.format(value))
        for peer in peers:
            for document in documents:
                ratio = advantage(document, workload, peer)
                cells.append("-" if ratio is None else ratio_text(ratio))
        lines.append(f"| {workload.title} | {workload.unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
