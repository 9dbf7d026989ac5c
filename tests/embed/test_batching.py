"""Length bucketing: pure planning, property-tested."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.embed.batching import Batch, plan_batches, scatter

lengths_st = st.lists(st.integers(0, 300), max_size=60)
budget_st = st.integers(1, 4096)
max_bs_st = st.none() | st.integers(1, 50)


@given(lengths_st, budget_st, max_bs_st)
def test_every_input_exactly_once(lengths: list[int], budget: int, max_bs: int | None) -> None:
    plan = plan_batches(lengths, budget, max_bs)
    flat = [i for b in plan for i in b.indices]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(b.indices for b in plan)


@given(lengths_st, budget_st, max_bs_st)
def test_budget_size_and_padding(lengths: list[int], budget: int, max_bs: int | None) -> None:
    for b in plan_batches(lengths, budget, max_bs):
        assert b.padded_len == max(lengths[i] for i in b.indices)
        assert b.cost <= budget or len(b.indices) == 1
        assert max_bs is None or len(b.indices) <= max_bs


@given(lengths_st, budget_st)
def test_sorted_longest_first_with_stable_ties(lengths: list[int], budget: int) -> None:
    flat = [i for b in plan_batches(lengths, budget) for i in b.indices]
    assert flat == sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


@given(lengths_st, budget_st)
def test_greedy_batches_are_full(lengths: list[int], budget: int) -> None:
    """No batch could have taken the next input without exceeding the budget."""
    plan = plan_batches(lengths, budget)
    for cur, nxt in itertools.pairwise(plan):
        first_next = nxt.indices[0]
        padded = max(cur.padded_len, lengths[first_next])
        assert (len(cur.indices) + 1) * padded > budget


@given(lengths_st, budget_st, st.integers(1, 4))
def test_scatter_restores_input_order(lengths: list[int], budget: int, dim: int) -> None:
    truth = np.arange(len(lengths) * dim, dtype=np.float32).reshape(len(lengths), dim)
    plan = plan_batches(lengths, budget)
    parts = [(b, truth[list(b.indices)]) for b in plan]
    np.testing.assert_array_equal(scatter(len(lengths), dim, parts), truth)


def test_scatter_refuses_gaps_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="no result"):
        scatter(2, 1, [(Batch((0,), 1), np.zeros((1, 1), np.float32))])
    with pytest.raises(ValueError, match="shape"):
        scatter(1, 2, [(Batch((0,), 1), np.zeros((1, 3), np.float32))])


@pytest.mark.parametrize(("lengths", "budget", "max_bs"), [([1], 0, None), ([1], 1, 0), ([-1], 10, None)])
def test_bad_arguments(lengths: list[int], budget: int, max_bs: int | None) -> None:
    with pytest.raises(ValueError):
        plan_batches(lengths, budget, max_bs)
