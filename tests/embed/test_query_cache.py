"""The query LRU cache against a reference model, plus read-only and thread-safety checks."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.embed.query_cache import QueryCache

ops = st.lists(st.tuples(st.sampled_from(["get", "put"]), st.sampled_from("abcdefg")), max_size=60)


@given(st.integers(0, 4), ops)
def test_behaves_like_a_reference_lru(capacity: int, script: list[tuple[str, str]]) -> None:
    cache = QueryCache(capacity)
    model: OrderedDict[str, float] = OrderedDict()
    for n, (op, key) in enumerate(script):
        if op == "put":
            cache.put(key, np.full(2, n, np.float32))
            if capacity:
                model[key] = n
                model.move_to_end(key)
                while len(model) > capacity:
                    model.popitem(last=False)
        else:
            got = cache.get(key)
            if key in model:
                model.move_to_end(key)
                assert got is not None and got[0] == model[key]
            else:
                assert got is None
        assert cache.keys() == list(model)


def test_stored_vectors_are_read_only_copies() -> None:
    cache = QueryCache(2)
    v = np.ones(3, np.float32)
    stored = cache.put("q", v)
    v[:] = 5
    got = cache.get("q")
    assert got is not None and got.tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        got[0] = 2
    assert stored is got


def test_threads_share_it_safely() -> None:
    cache = QueryCache(8)

    def work(k: int) -> None:
        for i in range(500):
            key = str((k * 7 + i) % 20)
            if cache.get(key) is None:
                cache.put(key, np.full(1, int(key), np.float32))

    threads = [threading.Thread(target=work, args=(k,), name=f"t-cache-{k}") for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8
    for key in list(cache.keys()):
        got = cache.get(key)
        assert got is not None and got[0] == int(key)
    assert cache.hits + cache.misses == 6 * 500 + 8


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        QueryCache(-1)
