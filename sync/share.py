"""Short-lived cache of signed Storage URLs, per document and requested lifetime.

A URL signed for ``expires_in`` seconds is handed out again for at most
``min(ttl, expires_in / 2)`` seconds, so every URL returned still has at least half of the
asked-for lifetime (and ``ttl`` bounds how long a changed document can keep its old link).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SignedUrl:
    url: str
    storage_key: str
    expires_in: int
    signed_at: float

    @property
    def expires_at(self) -> float:
        return self.signed_at + self.expires_in


class ShareCache:
    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.time, max_entries: int = 1024) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int], SignedUrl] = {}

    def reuse_window(self, expires_in: int) -> float:
        return min(self.ttl_s, expires_in / 2)

    def get(self, doc_id: str, storage_key: str, expires_in: int) -> SignedUrl | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get((doc_id, expires_in))
            if entry is None:
                return None
            if entry.storage_key != storage_key or now - entry.signed_at >= self.reuse_window(expires_in):
                del self._entries[(doc_id, expires_in)]
                return None
            return entry

    def put(self, doc_id: str, storage_key: str, expires_in: int, url: str) -> SignedUrl:
        entry = SignedUrl(url, storage_key, expires_in, self._clock())
        with self._lock:
            if len(self._entries) >= self._max:
                oldest = min(self._entries, key=lambda k: self._entries[k].signed_at)
                del self._entries[oldest]
            self._entries[(doc_id, expires_in)] = entry
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
