"""A cache that holds at least the working set of the largest job it has been told about.

The engine derives a plan per distinct step config and parses each distinct template once per
process. A fixed bound (4,096 entries, evicting the older half) made a job with more distinct
steps than that thrash: validation derived every plan, the run found none of the early ones
and derived them again, and per-step cost rose by 1.7 to 1.9x above 4,096 steps. The cache
now grows to what the largest job validated or run needs (`WorkingSetCache.reserve`), so a job
of any size runs on the plans its validation derived, while a long-lived process that sees
many different small configs (a dispatcher, the cloud function) stays bounded.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["WorkingSetCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class WorkingSetCache(Generic[K, V]):
    """A dict-backed cache: at least ``minimum`` entries, more once `reserve` asks for them.

    Reads take no lock (a dict lookup is atomic); writes do. When full, the older half goes
    (dicts keep insertion order), so a job larger than the cache still reuses its recent
    entries rather than none.
    """

    def __init__(self, minimum: int) -> None:
        self._capacity = minimum
        self._entries: dict[K, V] = {}
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """How many entries the cache keeps before it evicts."""
        return self._capacity

    def __len__(self) -> int:
        return len(self._entries)

    def reserve(self, count: int) -> None:
        """Grows the capacity to hold ``count`` entries (never shrinks it)."""
        if count > self._capacity:
            with self._lock:
                self._capacity = max(self._capacity, count)

    def get(self, key: K) -> V | None:
        """The cached value of ``key``, or None."""
        return self._entries.get(key)

    def put(self, key: K, value: V) -> V:
        """Caches ``value`` under ``key`` (evicting the older half when full); returns it."""
        with self._lock:
            if len(self._entries) >= self._capacity:
                for old in list(itertools.islice(self._entries, self._capacity // 2)):
                    del self._entries[old]
            self._entries[key] = value
        return value

    def clear(self) -> None:
        """Empties the cache (for tests)."""
        with self._lock:
            self._entries.clear()
