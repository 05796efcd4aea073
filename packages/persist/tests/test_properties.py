"""Hypothesis properties: round-trip fidelity, and replay equals a model after any crash."""

from __future__ import annotations

import itertools
from typing import Any

from conftest import COMPRESSIONS, Journal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persist_db import Persisted, load, open_snapshot, save
from strata_testkit import CrashFS, MemoryFS

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.binary(max_size=6000)
    | st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 3000)),
    cuts=st.lists(st.integers(0, 6000), max_size=5),
    compression=st.sampled_from(COMPRESSIONS),
    meta=json_values,
    kind=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=16),
    version=st.integers(1, 65535),
)
def test_round_trip_fidelity(
    payload: bytes,
    cuts: list[int],
    compression: str | None,
    meta: Any,
    kind: str,
    version: int,
) -> None:
    fs = MemoryFS()
    bounds = sorted({0, len(payload), *(c for c in cuts if c < len(payload))})
    chunks = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    for source in (payload, chunks):
        save(
            "p.snap", source, kind=kind, version=version, compression=compression, meta=meta, fs=fs
        )
        snap = load("p.snap", kind=kind, fs=fs)
        assert (snap.payload, snap.kind, snap.version) == (payload, kind, version)
        assert snap.meta == meta
        with open_snapshot("p.snap", fs=fs) as reader:
            assert b"".join(reader.chunks()) == payload


actions = st.lists(
    st.one_of(
        st.tuples(st.just("apply"), st.integers(1, 12)),
        st.tuples(st.just("checkpoint"), st.just(0)),
        st.tuples(st.just("sync"), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=actions,
    sync=st.sampled_from(["always", "never"]),
    keep=st.integers(1, 3),
    where=st.floats(0, 1),
    pick=st.integers(0, 7),
    seed=st.integers(0, 2**16),
)
def test_replay_equals_the_model_after_any_crash(
    plan: list[tuple[str, int]], sync: str, keep: int, where: float, pick: int, seed: int
) -> None:
    model: list[bytes] = []
    acknowledged: list[tuple[int, int]] = []  # (trace length, ops durable)
    fs = CrashFS()
    with Persisted.open(fs, Journal, sync=sync, keep=keep, segment_size=4096) as p:
        for action, count in plan:
            if action == "apply":
                for _ in range(count):
                    op = b"%d-" % len(model) * (1 + len(model) % 40)
                    p.apply(op)
                    model.append(op)
                    if sync == "always":
                        acknowledged.append((len(fs.trace), len(model)))
            else:
                p.sync() if action == "sync" else p.checkpoint()
                acknowledged.append((len(fs.trace), len(model)))
    points = fs.crash_points("all")
    point = points[min(int(where * len(points)), len(points) - 1)]
    states = list(fs.crash_states(point, seed=seed, max_states=8))
    state = states[pick % len(states)]
    must = max((n for at, n in acknowledged if at <= point), default=0)
    with Persisted.open(state.fs(), Journal) as recovered:
        got = recovered.obj.ops
        assert got == model[: len(got)], state.description
        assert len(got) >= must, state.description
