"""peerbench: strata against sqlite3, LMDB, RocksDB and pure-Python peers, same workloads.

Run ``python -m peerbench --help`` (with ``bench/`` on ``sys.path``), or ``nox -s compare``.
The pieces: :mod:`peerbench.engines` (one adapter per engine configuration),
:mod:`peerbench.data` (keys, values, request distributions), :mod:`peerbench.workloads`
(what is measured), :mod:`peerbench.runner` (one child process per engine and size),
:mod:`peerbench.report` (tables), :mod:`peerbench.check` (regression check against a
stored baseline of strata-to-sqlite3 ratios) and :mod:`peerbench.plots`.
"""
