"""Power loss at every fsync and every write: the store is the old or the new checkpoint.

Uses strata_testkit.CrashFS, which records every write and fsync and rebuilds every state
a power loss could leave — un-fsynced writes dropped, kept, reordered, or torn and trashed
at 512-byte sectors. For each state the store must open, report the meta of the last
completed checkpoint or of the one in progress, and hold exactly that checkpoint's pages:
never a mix, never a checksum error on a reachable page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from conftest import fill

from page_db import PageStore
from page_db._load import initial_image
from strata_testkit import CrashFS, CrashState, explore_crashes

PS = 4096
PAYLOAD = PS - 32
NAME = "store.pages"


@dataclass
class History:
    """Models of every checkpoint, keyed by meta, and where in the trace each completed."""

    models: dict[bytes, dict[int, bytes]] = field(default_factory=lambda: {b"": {}})
    order: list[bytes] = field(default_factory=lambda: [b""])
    done_at: dict[bytes, int] = field(default_factory=lambda: {b"": 0})

    def record(self, fs: CrashFS, meta: bytes, model: dict[int, bytes]) -> None:
        self.models[meta] = dict(model)
        self.order.append(meta)
        self.done_at[meta] = len(fs.trace)

    def allowed(self, point: int) -> set[bytes]:
        """The checkpoint complete before ``point`` and the one that follows it."""
        done = [meta for meta in self.order if self.done_at[meta] <= point]
        last = self.order.index(done[-1])
        return set(self.order[last : last + 2])


def durable_new_store() -> CrashFS:
    return CrashFS(files={NAME: initial_image(PS)})


def set_page(store: PageStore, model: dict[int, bytes], pid: int, version: int) -> None:
    data = fill(pid, version, PAYLOAD)
    with store.write(pid) as page:
        page.payload[:] = data
    model[pid] = data


def many_page_workload(history: History, pages: int, pool: int) -> CrashFS:
    fs = durable_new_store()
    store = PageStore.open_file(fs.open(NAME), pool_pages=pool)
    model: dict[int, bytes] = {}
    for _ in range(pages):
        pid = store.allocate()
        set_page(store, model, pid, 1)
    store.checkpoint(b"c1")
    history.record(fs, b"c1", model)
    ids = sorted(model)
    for pid in ids[::2]:
        set_page(store, model, pid, 2)
    for pid in ids[1:8:3]:
        store.free(pid)
        del model[pid]
    for _ in range(5):
        pid = store.allocate()
        set_page(store, model, pid, 3)
    store.checkpoint(b"c2")
    history.record(fs, b"c2", model)
    for pid in sorted(model)[: pages // 3]:
        set_page(store, model, pid, 4)
    store.checkpoint(b"c3")
    history.record(fs, b"c3", model)
    for pid in sorted(model)[:10]:  # after the last checkpoint: evicted, never committed
        set_page(store, model, pid, 5)
    for pid in sorted(model)[10:20]:
        with store.read(pid):
            pass
    store.close()
    return fs


def check_state(history: History, state: CrashState, point: int) -> None:
    store = PageStore.open_file(state.fs().open(NAME, create=False), pool_pages=8)
    allowed = history.allowed(point)
    assert store.meta in allowed, f"meta {store.meta!r} not in {allowed}"
    model = history.models[store.meta]
    assert store.stats()["pages"] == len(model)
    for pid, payload in model.items():
        with store.read(pid) as page:
            assert bytes(page.payload) == payload, f"page {pid} differs from {store.meta!r}"
    store.close()


def run_matrix(pages: int, pool: int, kind: str, max_states: int) -> tuple[int, int, set[str]]:
    """Check every state at every crash point; return (points, states, variants seen)."""
    history = History()
    fs = many_page_workload(history, pages, pool)
    points = fs.crash_points(kind)  # type: ignore[arg-type]
    checked = 0
    variants: set[str] = set()
    for point in points:
        for state in fs.crash_states(point, seed=point, max_states=max_states):
            try:
                check_state(history, state, point)
            except BaseException as exc:
                raise AssertionError(f"crash point {point}, state {state.description}") from exc
            checked += 1
            variants.add(state.variant)
    return len(points), checked, variants


def test_crash_at_every_fsync_of_checkpoints_of_many_pages() -> None:
    points, checked, variants = run_matrix(pages=300, pool=32, kind="sync", max_states=80)
    assert points >= 7  # two fsyncs per checkpoint, three checkpoints, and the end
    assert checked > 3 * points
    assert {"drop", "keep", "prefix", "torn", "trashed", "subset"} <= variants


@pytest.mark.slow
def test_crash_at_every_write() -> None:
    points, checked, variants = run_matrix(pages=24, pool=4, kind="write", max_states=16)
    assert points > 40
    assert checked > 3 * points
    assert {"drop", "keep", "prefix", "torn", "subset"} <= variants


def explore_rounds(sector: int) -> int:
    history = History()

    def workload(fs: CrashFS) -> None:
        store = PageStore.open_file(fs.open(NAME), pool_pages=3)
        model: dict[int, bytes] = {}
        for round_ in range(3):
            for _ in range(6):
                pid = store.allocate()
                set_page(store, model, pid, round_)
            for pid in sorted(model)[::2]:
                set_page(store, model, pid, round_ + 10)
            meta = b"r%d" % round_
            store.checkpoint(meta)
            history.record(fs, meta, model)

    return explore_crashes(
        workload,
        lambda state, point: check_state(history, state, point),
        files={NAME: initial_image(PS)},
        max_states=24,
        sector_size=sector,
    )


@pytest.mark.parametrize("sector", [512, 4096])
def test_explore_crashes_with_512_and_4096_byte_sectors(sector: int) -> None:
    assert explore_rounds(sector) > 30


def compact_workload(history: History, pages: int, pool: int) -> CrashFS:
    """Checkpoints around two compactions: one that moves pages down and cuts the tail,
    and one on a compact file."""
    fs = durable_new_store()
    store = PageStore.open_file(fs.open(NAME), pool_pages=pool)
    model: dict[int, bytes] = {}
    pids = [store.allocate() for _ in range(pages)]
    for pid in pids:
        set_page(store, model, pid, 1)
    store.checkpoint(b"c1")
    history.record(fs, b"c1", model)
    for pid in pids[: pages * 2 // 3]:
        store.free(pid)
        del model[pid]
    for pid in pids[pages * 2 // 3 :: 3]:
        set_page(store, model, pid, 2)
    store.checkpoint(b"c2")
    history.record(fs, b"c2", model)
    for pid in pids[pages * 2 // 3 :: 4]:
        set_page(store, model, pid, 3)  # dirty pages at compaction
    assert store.compact(b"c3") > 0
    history.record(fs, b"c3", model)
    for _ in range(3):
        set_page(store, model, store.allocate(), 4)
    store.compact(b"c4")
    history.record(fs, b"c4", model)
    store.close()
    return fs


@pytest.mark.parametrize("kind", ["sync", "write"])
def test_crash_during_compaction_leaves_the_old_or_the_new_checkpoint(kind: str) -> None:
    history = History()
    fs = compact_workload(history, pages=30, pool=4)
    points = fs.crash_points(kind)  # type: ignore[arg-type]
    checked = 0
    for point in points:
        for state in fs.crash_states(point, seed=point, max_states=12):
            try:
                check_state(history, state, point)
            except BaseException as exc:
                raise AssertionError(f"crash point {point}, state {state.description}") from exc
            checked += 1
    assert len(points) >= 8 and checked > 2 * len(points)
