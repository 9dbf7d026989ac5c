"""Search result cache: LRU with a short TTL, emptied whenever the index generation changes.

Keys are built by the service from (query, mode, filters, k, cursor, options, active model).
The value is tied to the index generation it was computed at (``search.index_generation`` in
``kv``, bumped by every write transaction that changes chunks, vectors or document fields the
filters read): a lookup with a different generation empties the whole cache, so a result can
never outlive the index it came from. The clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ResultCache(Generic[V]):
    def __init__(
        self, capacity: int = 256, ttl_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 0 or ttl_seconds < 0:
            raise ValueError("capacity and ttl_seconds must be >= 0")
        self.capacity = capacity
        self.ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._generation: int | None = None
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    def _check_generation(self, generation: int) -> None:
        if generation != self._generation:
            if self._items:
                self.invalidations += 1
            self._items.clear()
            self._generation = generation

    def get(self, key: Hashable, generation: int) -> V | None:
        with self._lock:
            self._check_generation(generation)
            item = self._items.get(key)
            if item is None or self._clock() - item[0] > self.ttl:
                if item is not None:
                    del self._items[key]
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, generation: int, value: V) -> None:
        """Store ``value`` computed at ``generation`` (ignored if the index moved on since)."""
        if self.capacity == 0 or self.ttl == 0:
            return
        with self._lock:
            if self._generation is not None and generation < self._generation:
                return
            self._check_generation(generation)
            self._items[key] = (self._clock(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
