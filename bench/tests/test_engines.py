"""Every adapter does what the workloads assume: a benchmark of a wrong answer is worthless.

Each test runs once per engine configuration; a configuration whose library is not
installed is skipped with the import error as the reason (the harness reports it the same
way). Operations an engine lacks must raise ``Unsupported``, never return something else.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from peerbench import data
from peerbench.engines import ENGINES, Engine, Unsupported, load


@pytest.fixture(params=sorted(ENGINES))
def engine_class(request: pytest.FixtureRequest) -> type[Engine]:
    try:
        return load(request.param)
    except ImportError as exc:
        pytest.skip(f"{request.param}: {exc}")


@pytest.fixture
def engine(engine_class: type[Engine], tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = engine_class.open(tmp_path / "db")
    yield opened
    opened.close()


def loaded(engine: Engine, records: int = 300) -> None:
    for batch in data.batches(0, records, 128):
        engine.write_batch(batch)


def test_metadata(engine_class: type[Engine]) -> None:
    assert engine_class.name in ENGINES
    assert load(engine_class.name) is engine_class
    assert engine_class.family and engine_class.describe
    assert isinstance(engine_class.durable, bool)


def test_write_batch_then_get(engine: Engine) -> None:
    loaded(engine)
    for i in (0, 1, 150, 299):
        assert engine.get(data.key(i)) == data.value(i)
    assert engine.get(data.key(300)) is None
    assert engine.get(b"user") is None


def test_batch_replaces(engine: Engine) -> None:
    loaded(engine)
    engine.write_batch([(data.key(5), data.value(5, 1)), (data.key(400), data.value(400))])
    assert engine.get(data.key(5)) == data.value(5, 1)
    assert engine.get(data.key(400)) == data.value(400)


def test_put_inserts_and_replaces(engine: Engine) -> None:
    engine.put(data.key(1), data.value(1))
    engine.put(data.key(1), data.value(1, 2))
    engine.put(data.key(2), data.value(2))
    assert engine.get(data.key(1)) == data.value(1, 2)
    assert engine.get(data.key(2)) == data.value(2)


def test_scan_is_ordered_and_bounded(engine: Engine) -> None:
    loaded(engine)
    engine.put(data.key(1000), data.value(1000))
    try:
        got = engine.scan(data.key(290), 100)
    except Unsupported:
        return
    assert got == [(data.key(i), data.value(i)) for i in range(290, 300)] + [
        (data.key(1000), data.value(1000))
    ]
    assert engine.scan(data.key(10), 5) == [(data.key(i), data.value(i)) for i in range(10, 15)]
    # a start between keys begins at the next key
    assert engine.scan(data.key(10) + b"\x00", 2) == [
        (data.key(i), data.value(i)) for i in range(11, 13)
    ]
    assert engine.scan(data.key(2000), 10) == []


def test_scan_all_counts_every_pair(engine: Engine) -> None:
    loaded(engine)
    with contextlib.suppress(Unsupported):
        assert engine.scan_all() == 300


def test_read_modify_write(engine: Engine) -> None:
    loaded(engine, 10)
    seen: list[bytes | None] = []

    def update(old: bytes | None) -> bytes:
        seen.append(old)
        return (old or b"") + b"!"

    try:
        engine.read_modify_write(data.key(3), update)
    except Unsupported:
        return
    engine.read_modify_write(data.key(77), update)
    assert seen == [data.value(3), None]
    assert engine.get(data.key(3)) == data.value(3) + b"!"
    assert engine.get(data.key(77)) == b"!"


def test_durable_put_from_many_threads(engine: Engine) -> None:
    try:
        engine.durable_put(data.key(0), data.value(0))
    except Unsupported:
        return
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(20):
                index = 1000 * (thread + 1) + i
                engine.durable_put(data.key(index), data.value(index))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for t in range(8):
        for i in range(20):
            index = 1000 * (t + 1) + i
            assert engine.get(data.key(index)) == data.value(index)


def test_reopen_keeps_data(engine_class: type[Engine], tmp_path: Path) -> None:
    first = engine_class.open(tmp_path / "db")
    try:
        loaded(first, 50)
        first.put(data.key(60), data.value(60))
        first.flush()
    finally:
        first.close()
    if engine_class.name == "strata-cache":
        return  # memory only: nothing to reopen
    again = engine_class.open(tmp_path / "db")
    try:
        assert again.get(data.key(0)) == data.value(0)
        assert again.get(data.key(49)) == data.value(49)
        assert again.get(data.key(60)) == data.value(60)
    finally:
        again.close()


def test_files_stay_inside_the_directory(engine_class: type[Engine], tmp_path: Path) -> None:
    directory = tmp_path / "db"
    engine = engine_class.open(directory)
    try:
        loaded(engine, 20)
    finally:
        engine.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]
