"""Pause Python's cyclic garbage collector around bulk work.

Loading a database or rebuilding a scan view creates millions of objects that live on;
the collector would re-scan all of them at every generation-2 collection, which costs
more than the work itself (index-db's bulk load does the same).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector for the block; re-enable it afterwards if it was on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
