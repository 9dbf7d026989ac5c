"""Rank fusion properties (pure functions)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.search.fusion import FusionConfig, convex, fuse, normalise, recency_boost, rrf


def ranked_lists(max_size: int = 30) -> st.SearchStrategy[list[tuple[int, float]]]:
    """A ranked list: unique ids, scores strictly decreasing."""

    @st.composite
    def build(draw: st.DrawFn) -> list[tuple[int, float]]:
        ids = draw(st.lists(st.integers(0, 60), unique=True, max_size=max_size))
        # distinct scores at least 0.01 apart (closer ones are equal after float normalisation)
        raw = draw(st.lists(st.integers(-5000, 5000), min_size=len(ids), max_size=len(ids), unique=True))
        scores = [r / 100 for r in sorted(raw, reverse=True)]
        return list(zip(ids, scores, strict=True))

    return build()


CONFIGS = [
    FusionConfig("rrf", rrf_k=60),
    FusionConfig("rrf", rrf_k=5, semantic_weight=2.0),
    FusionConfig("convex", alpha=0.5),
    FusionConfig("convex", alpha=0.8),
]


@settings(max_examples=300, deadline=None)
@given(ranked_lists(), ranked_lists(), st.sampled_from(CONFIGS))
def test_fused_list_is_the_union_sorted_by_score(
    kw: list[tuple[int, float]], sem: list[tuple[int, float]], config: FusionConfig
) -> None:
    out = fuse(kw, sem, config)
    assert [cid for cid, _ in out].__len__() == len({cid for cid, _ in out})
    assert {cid for cid, _ in out} == {cid for cid, _ in kw} | {cid for cid, _ in sem}
    assert all(out[i][1] >= out[i + 1][1] for i in range(len(out) - 1))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 60), unique=True, min_size=2, max_size=30),
    st.randoms(use_true_random=False),
    st.sampled_from(CONFIGS),
)
def test_dominance_is_preserved(ids: list[int], rnd: random.Random, config: FusionConfig) -> None:
    """If a ranks above b in both lists, a ranks above b after fusion."""
    kw_ids, sem_ids = ids[:], ids[:]
    rnd.shuffle(kw_ids)
    rnd.shuffle(sem_ids)
    kw = [(c, 100.0 - i) for i, c in enumerate(kw_ids)]
    sem = [(c, 1.0 - i / 100) for i, c in enumerate(sem_ids)]
    out = [c for c, _ in fuse(kw, sem, config)]
    for a in ids:
        for b in ids:
            if kw_ids.index(a) < kw_ids.index(b) and sem_ids.index(a) < sem_ids.index(b):
                assert out.index(a) < out.index(b)


@given(ranked_lists(), st.sampled_from(CONFIGS))
def test_single_list_order_is_kept(kw: list[tuple[int, float]], config: FusionConfig) -> None:
    assert [c for c, _ in fuse(kw, [], config)] == [c for c, _ in kw]
    assert [c for c, _ in fuse([], kw, config)] == [c for c, _ in kw]


def test_rrf_values() -> None:
    out = dict(rrf({"a": [(1, 9.0), (2, 8.0)], "b": [(2, 0.9)]}, rrf_k=60))
    assert out[1] == pytest.approx(1 / 61)
    assert out[2] == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_counts_repeated_id_once() -> None:
    out = dict(rrf({"a": [(1, 3.0), (1, 2.0), (2, 1.0)]}, rrf_k=0))
    assert out == {1: 1.0, 2: 0.5}


def test_convex_extremes_follow_one_retriever() -> None:
    kw = [(1, 10.0), (2, 5.0), (3, 1.0)]
    sem = [(3, 0.9), (2, 0.5), (1, 0.1)]
    assert [c for c, _ in convex(kw, sem, 1.0)] == [3, 2, 1]
    assert [c for c, _ in convex(kw, sem, 0.0)] == [1, 2, 3]


def test_normalise_bounds_and_nan() -> None:
    assert normalise([(1, 5.0), (2, 5.0)]) == {1: 1.0, 2: 1.0}
    assert normalise([(1, float("nan")), (2, 3.0), (3, 1.0)]) == {2: 1.0, 3: 0.0}
    with pytest.raises(ValueError):
        convex([], [], 1.5)


def test_recency_boost_prefers_newer_on_ties_and_zero_weight_is_identity() -> None:
    fused = [(1, 0.5), (2, 0.5), (3, 0.4)]
    ages = {1: 400 * 86400.0, 2: 0.0, 3: 86400.0}
    assert recency_boost(fused, ages, 0.0, 30 * 86400.0) == fused
    boosted = recency_boost(fused, ages, 1.0, 30 * 86400.0)
    assert [c for c, _ in boosted][:2] == [2, 3]
    assert dict(boosted)[2] == pytest.approx(1.0)


@given(ranked_lists(), st.floats(0.0, 5.0), st.dictionaries(st.integers(0, 60), st.floats(-1e6, 1e9)))
def test_recency_boost_never_lowers_a_positive_score(
    fused: list[tuple[int, float]], w: float, ages: dict[int, float]
) -> None:
    pos = [(c, abs(s)) for c, s in fused]
    before = dict(pos)
    after = dict(recency_boost(pos, ages, w, 86400.0))
    assert after.keys() == before.keys()
    assert all(after[c] >= before[c] for c in before)
