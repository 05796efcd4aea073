"""The scaling table: strata's figure and its advantage over peers at every data size."""

from __future__ import annotations

from typing import Any

from peerbench import report


def _document(records: int, figures: dict[str, dict[str, float]]) -> dict[str, Any]:
    engines = {
        engine: {
            "status": "ok",
            "figures": {key: {"figure": {"value": value}} for key, value in values.items()},
        }
        for engine, values in figures.items()
    }
    return {"records": records, "scale": str(records), "engines": engines}


def test_scaling_orders_sizes_and_points_every_ratio_the_right_way() -> None:
    big = _document(
        10_000_000,
        {
            "strata-standard": {"get": 300_000, "space": 2.0},
            "sqlite3-normal": {"get": 100_000, "space": 1.0},
        },
    )
    small = _document(
        100_000,
        {
            "strata-standard": {"get": 500_000, "space": 1.5},
            "sqlite3-normal": {"get": 125_000, "space": 1.2},
            "lmdb": {"get": 1_000_000},
        },
    )
    table = report.scaling([big, small]).splitlines()
    assert table[0] == (
        "| workload | unit | strata 100K | strata 10M | vs sqlite3-normal 100K "
        "| vs sqlite3-normal 10M | vs lmdb 100K | vs lmdb 10M |"
    )
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table[2:]}
    assert rows["random gets (warm)"].endswith("| 500,000 | 300,000 | 4.00 | 3.00 | 0.50 | - |")
    # a cost: the peer's bytes over strata's, so below 1 means strata uses more
    assert rows["bytes on disk per logical byte"].endswith(
        "| 1.50x | 2.00x | 0.80 | 0.50 | - | - |"
    )
    assert rows["full ordered scan"].endswith("| - | - | - | - | - | - |")


def test_small_ratios_and_times_keep_their_digits() -> None:
    assert report.ratio_text(1.234) == "1.23"
    assert report.ratio_text(0.0033) == "0.0033"
    assert report.ratio_text(0.000028) == "<0.001"
    recovery = report.BY_KEY["recovery"]
    assert [recovery.format(v) for v in (0.00012, 0.0024, 0.358, 42.0)] == [
        "0.12 ms",
        "2.4 ms",
        "0.358 s",
        "42.0 s",
    ]
