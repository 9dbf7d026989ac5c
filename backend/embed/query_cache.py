"""A small thread-safe LRU cache for query embeddings (users repeat and refine queries)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt


class QueryCache:
    """Maps query text → read-only float32 vector; evicts the least recently used entry.

    ``capacity == 0`` disables caching. Stored arrays are made read-only so a caller cannot
    corrupt the cache by writing into a returned vector.
    """

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._items: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> npt.NDArray[np.float32] | None:
        with self._lock:
            vec = self._items.get(key)
            if vec is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return vec

    def put(self, key: str, vec: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Store a read-only copy of ``vec`` and return it."""
        frozen = np.array(vec, dtype=np.float32, copy=True)
        frozen.setflags(write=False)
        if self.capacity == 0:
            return frozen
        with self._lock:
            self._items[key] = frozen
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return frozen

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def keys(self) -> list[str]:
        """Keys from least to most recently used (for tests and diagnostics)."""
        with self._lock:
            return list(self._items)
