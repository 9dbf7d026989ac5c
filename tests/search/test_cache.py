"""Result cache: TTL, LRU bound, invalidation by index generation."""

from __future__ import annotations

from backend.search.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_hit_until_ttl_expires() -> None:
    clock = Clock()
    cache: ResultCache[str] = ResultCache(capacity=8, ttl_seconds=10, clock=clock)
    cache.put("q", 1, "result")
    clock.now = 9.9
    assert cache.get("q", 1) == "result"
    clock.now = 10.1
    assert cache.get("q", 1) is None
    assert len(cache) == 0


def test_generation_change_drops_everything() -> None:
    cache: ResultCache[str] = ResultCache(capacity=8, ttl_seconds=60)
    cache.put("a", 5, "A")
    cache.put("b", 5, "B")
    assert cache.get("a", 6) is None
    assert cache.get("b", 6) is None
    assert cache.invalidations == 1
    cache.put("a", 5, "stale")  # computed before the change: refused
    assert cache.get("a", 6) is None


def test_lru_bound() -> None:
    cache: ResultCache[int] = ResultCache(capacity=2, ttl_seconds=60)
    cache.put("a", 1, 1)
    cache.put("b", 1, 2)
    assert cache.get("a", 1) == 1
    cache.put("c", 1, 3)
    assert cache.get("b", 1) is None and cache.get("a", 1) == 1 and cache.get("c", 1) == 3


def test_disabled() -> None:
    cache: ResultCache[int] = ResultCache(capacity=0, ttl_seconds=60)
    cache.put("a", 1, 1)
    assert cache.get("a", 1) is None
