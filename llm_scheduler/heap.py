"""Keeping Python's cyclic garbage collector off the engine's way on large jobs.

`frozen_heap`, for a run:

A full collection visits every object the collector tracks, and Python 3.11 runs one each time
the objects that survived younger collections reach a quarter of the older ones. A job that has
just been validated brings hundreds of thousands of them (its plans, parsed templates and config
wrappers: about 15 per task), so each full collection during its run visited them all again:
12-16 µs per task of a 10,000 or 100,000-task wide job, a tenth of the engine's cost per task
(docs/benchmarks.md). While a run is in progress, `frozen_heap` moves the objects that existed
when it started to the collector's permanent generation (`gc.freeze`), so collections visit only
what the run made; they go back (`gc.unfreeze`) when the last run in the process ends. Nothing is
lost: an object frozen while garbage is collected after the run instead of during it.

`collector_paused`, for validation: validating a large job allocates hundreds of thousands of
objects that live on (parsed templates, plans, checks kept per step) and next to no garbage
cycles, so the collections it triggers find nothing to free but walk a heap that keeps growing:
about a quarter of the validation of a 100,000-task job whose prompts all differ. Automatic
collection is paused while it runs and resumed after (if it was on).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["collector_paused", "frozen_heap"]

_lock = threading.Lock()
_runs = 0  # runs in progress in this process (nested, concurrent or in other threads)
_pauses = 0  # validations in progress
_resume = False  # whether the collector was on when the first of them started


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freezes the collector's view of the heap for a run (see the module docstring).

    Re-entrant and thread-safe: the first run to start freezes, the last to end unfreezes.
    Runs that start while another is in progress freeze nothing more: in a process where runs
    always overlap (a server), what they make stays collectable, and what is frozen is bounded
    by the heap when the first of them started.
    """
    global _runs
    with _lock:
        if not _runs:
            gc.freeze()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if not _runs:
                gc.unfreeze()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pauses automatic garbage collection (see the module docstring).

    Re-entrant and thread-safe: the first to start pauses, the last to end resumes collection,
    and only if it was on when the first started.
    """
    global _pauses, _resume
    with _lock:
        if not _pauses:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if not _pauses and _resume:
                gc.enable()
