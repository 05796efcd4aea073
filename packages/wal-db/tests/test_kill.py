"""SIGKILL a writer at random moments: every LSN it was told is durable survives, exactly.

A child process appends with sync="always" from two threads and writes each returned LSN
and its payload's identity to a pipe. The parent kills it at a random moment, many times
over the same log, and after each kill replays the log: every reported LSN must be there
with its exact payload, and everything else must be well-formed records of the same run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import sys, threading
    from wal_db import WriteAheadLog

    def body(run, thread, i):
        return f"{run}/{thread}/{i}/".encode() * (1 + (i * 7 + thread) % 40)

    log = WriteAheadLog.open(sys.argv[1], sync="always", segment_size=16384)
    run = sys.argv[2]
    out = sys.stdout
    lock = threading.Lock()

    def work(thread):
        i = 0
        while True:
            lsn = log.append(body(run, thread, i))
            with lock:
                out.write(f"{lsn} {run} {thread} {i}\\n")
                out.flush()
            i += 1

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)


def body(run: str, thread: int, i: int) -> bytes:
    return f"{run}/{thread}/{i}/".encode() * (1 + (i * 7 + thread) % 40)


def test_sigkill_never_loses_a_reported_record(tmp_path: Path) -> None:
    from wal_db import WriteAheadLog

    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL on this platform")
    logdir = tmp_path / "log"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reported: dict[int, bytes] = {}
    for run in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(logdir), str(run)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # it is up and appending
        assert first, "child died before its first append"
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        for line in (first + rest).splitlines():
            lsn, run_id, thread, i = line.split()
            reported[int(lsn)] = body(run_id, int(thread), int(i))
        with WriteAheadLog.open(logdir) as log:
            got = dict(log.replay())
            assert sorted(got) == list(range(1, len(got) + 1))  # a gap-free prefix
            missing = sorted(set(reported) - set(got))
            assert missing == [], f"run {run}: reported LSNs lost: {missing[:5]}"
            for lsn, data in reported.items():
                assert got[lsn] == data, f"run {run}: LSN {lsn} has the wrong payload"
            for lsn, data in got.items():  # unreported records: whole records of some run
                parts = data.split(b"/")
                assert len(parts) >= 4 and data == body(
                    parts[0].decode(), int(parts[1]), int(parts[2])
                ), lsn
            # Unreported records that survived become part of the history of later runs.
            reported = {lsn: got[lsn] for lsn in got}
    assert len(reported) > 100
