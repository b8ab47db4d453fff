"""Keeping Python's cyclic garbage collector off the objects a run starts with.

A full collection visits every object the collector tracks, and Python 3.11 runs one each time
the objects that survived younger collections reach a quarter of the older ones. A job that has
just been validated brings hundreds of thousands of them (its plans, parsed templates and config
wrappers: about 15 per task), so each full collection during its run visited them all again:
12-16 µs per task of a 10,000 or 100,000-task wide job, a tenth of the engine's cost per task
(docs/benchmarks.md). While a run is in progress, `frozen_heap` moves the objects that existed
when it started to the collector's permanent generation (`gc.freeze`), so collections visit only
what the run made; they go back (`gc.unfreeze`) when the last run in the process ends. Nothing is
lost: an object frozen while garbage is collected after the run instead of during it.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["frozen_heap"]

_lock = threading.Lock()
_runs = 0  # runs in progress in this process (nested, concurrent or in other threads)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freezes the collector's view of the heap for a run (see the module docstring).

    Re-entrant and thread-safe: the first run to start freezes, the last to end unfreezes
    (objects made by an earlier run in between are frozen when a later one starts).
    """
    global _runs
    with _lock:
        _runs += 1
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if not _runs:
                gc.unfreeze()
