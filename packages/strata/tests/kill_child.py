"""Child of test_process_kill.py: commit concurrent multi-key transactions until killed.

Usage: ``python kill_child.py DIR DURABILITY RUN THREADS`` runs one child directly;
``python kill_child.py serve`` is a zygote: it imports strata once, then for every line
``run DIR DURABILITY RUN THREADS`` read from stdin forks a child (so a round does not pay
for interpreter start-up and imports), writes ``pid PID``, waits for the child and writes
``exited PID WAIT_STATUS``. Children of the zygote write to the same stdout.

A child opens the database in ``DIR`` and runs ``THREADS`` committer threads. Transaction ``i`` of
thread ``t`` in run ``RUN`` has the tag ``RUN/t/i`` and writes it to three keys (see
:func:`writes_of`): the thread's own key, one of three keys every thread shares (so
write-write conflicts happen and are retried), and a key of its own. Over stdout (a pipe)
it reports, one line each, flushed at once:

- ``ready``: the database is open;
- ``attempt RUN t i``: before the transaction commits (written first, so the parent
  knows every tag that may be visible);
- ``commit RUN t i VERSION MONOTONIC_NS``: after the commit returned, with the version and
  ``time.monotonic_ns()`` (system-wide on Linux, comparable with the parent's clock).

The parent SIGKILLs it; it never exits on its own.
"""

from __future__ import annotations

import os
import sys
import threading
import time


def writes_of(tag: str) -> dict[str, str]:
    """The keys transaction ``tag`` (``run/thread/i``) writes, each set to the tag."""
    _run, thread, i = tag.split("/")
    return {f"own/{thread}": tag, f"shared/{int(i) % 3}": tag, f"tx/{tag}": tag}


def import_strata() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "src"))
    import strata  # noqa: F401


def main(path: str, durability: str, run: str, threads: int) -> None:
    import_strata()
    import strata

    db = strata.open(
        path, durability=durability, sync_interval=0.05, checkpoint_bytes=48 * 1024
    )  # background checkpoints while it runs
    out_lock = threading.Lock()

    def say(line: str) -> None:
        with out_lock:
            os.write(1, (line + "\n").encode())  # unbuffered: in the pipe once written

    def committer(thread: int) -> None:
        i = 0
        while True:
            tag = f"{run}/{thread}/{i}"
            say(f"attempt {run} {thread} {i}")
            try:
                with db.transaction() as tx:
                    for key, value in writes_of(tag).items():
                        tx.kv.put(key, value)
            except strata.ConflictError:
                continue  # retry the same tag
            say(f"commit {run} {thread} {i} {tx.version} {time.monotonic_ns()}")
            i += 1

    say("ready")
    workers = [threading.Thread(target=committer, args=(t,), daemon=True) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def serve() -> None:
    """The zygote loop (single-threaded, so forking it is safe)."""
    import_strata()
    os.write(1, b"zygote\n")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        assert words[0] == "run" and len(words) == 5, line
        pid = os.fork()
        if pid == 0:
            try:
                main(words[1], words[2], words[3], int(words[4]))
            finally:
                os._exit(1)
        os.write(1, f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(1, f"exited {pid} {status}\n".encode())


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
