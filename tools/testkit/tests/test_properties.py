"""Property tests of the crash model against simple independent oracles."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from strata_testkit import CrashFS

NAMES = ("a", "b")


@dataclass(frozen=True)
class Step:
    action: str  # "write" | "truncate" | "fsync"
    name: str
    offset: int = 0
    length: int = 0
    fill: int = 0


steps = st.one_of(
    st.builds(
        Step,
        st.just("write"),
        st.sampled_from(NAMES),
        st.integers(0, 3000),
        st.integers(1, 1200),
        st.integers(0, 255),
    ),
    st.builds(Step, st.just("truncate"), st.sampled_from(NAMES), st.integers(0, 4000)),
    st.builds(Step, st.just("fsync"), st.sampled_from(NAMES)),
)


def run(fs: CrashFS, step: Step) -> None:
    handle = fs.open(step.name)
    if step.action == "write":
        handle.pwrite(bytes([step.fill]) * step.length, step.offset)
    elif step.action == "truncate":
        handle.truncate(step.offset)
    else:
        handle.fsync()


@settings(max_examples=60, deadline=None)
@given(st.lists(steps, max_size=25))
def test_drop_is_the_image_at_each_files_last_fsync_and_keep_is_live(program: list[Step]) -> None:
    fs = CrashFS({name: b"initial-" + name.encode() for name in NAMES})
    synced = fs.files()
    durable_at = {0: dict(synced)}  # trace length -> oracle for the drop state
    live_at = {0: fs.files()}
    for step in program:
        run(fs, step)
        if step.action == "fsync":
            synced[step.name] = fs.files()[step.name]
        durable_at[len(fs.trace)] = dict(synced)
        live_at[len(fs.trace)] = fs.files()
    for point in fs.crash_points("all"):
        states = list(fs.crash_states(point, max_states=3))
        assert states[0].files == durable_at[point]
        keep = next((s for s in states if s.variant == "keep"), states[0])  # absent: == drop
        assert keep.files == live_at[point]


@settings(max_examples=80, deadline=None)
@given(
    base_length=st.integers(0, 3000),
    offset=st.integers(0, 3000),
    length=st.integers(1, 2500),
    sector_size=st.sampled_from([1, 7, 64, 512, 4096]),
    seed=st.integers(0, 2**32),
)
def test_every_state_of_one_pending_write_is_sectorwise_pre_or_post(
    base_length: int, offset: int, length: int, sector_size: int, seed: int
) -> None:
    base = bytes((i * 7 + 1) % 251 + 1 for i in range(base_length))  # no zero bytes
    fs = CrashFS({"f": base})
    fs.open("f").pwrite(b"\x00" * length, offset)
    post = fs.files()["f"]
    end = offset + length
    pre = base + bytes(max(0, len(post) - len(base)))  # zero-padded pre-image
    for state in fs.crash_states(seed=seed, max_states=16, sector_size=sector_size):
        image = state.files["f"]
        if state.variant not in ("torn", "trashed"):
            assert image in (base, post), state.description
            continue
        assert len(image) == len(post)
        assert image[:offset] == pre[:offset]  # nothing before the write changes
        assert image[end:] == pre[end:]  # nor after it
        first = offset // sector_size
        for sector in range(first, (end - 1) // sector_size + 1):
            part = slice(max(offset, sector * sector_size), min(end, (sector + 1) * sector_size))
            if state.variant == "torn":
                assert image[part] in (pre[part], post[part]), state.description


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(1, 255)), min_size=1, max_size=8))
def test_prefix_k_equals_the_live_image_after_k_pending_writes(
    writes: list[tuple[int, int]],
) -> None:
    fs = CrashFS({"f": bytes(800)})
    f = fs.open("f")
    live = [fs.files()]
    for slot, fill in writes:
        f.pwrite(bytes([fill]) * 150, slot * 100)  # overlapping slots
        live.append(fs.files())
    images = [tuple(image.items()) for image in live]
    states = list(fs.crash_states(max_states=200))
    prefixes = {
        int(s.description.split()[0].removeprefix("prefix-")): s.files
        for s in states
        if s.variant == "prefix"
    }
    for k, files in prefixes.items():
        assert files == live[k]
    yielded = {tuple(s.files.items()) for s in states}
    for k in range(len(live)):
        # every prefix image appears, unless an earlier variant had the same image
        assert images[k] in yielded
