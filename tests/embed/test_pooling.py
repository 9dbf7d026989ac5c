"""Masked mean pooling and L2 normalisation (pure numpy), property-tested."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backend.embed.pooling import l2_normalize, mean_pool

finite = st.floats(-100, 100, allow_nan=False, width=32)


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    b, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    hidden = draw(hnp.arrays(np.float32, (b, s, d), elements=finite))
    lengths = draw(st.lists(st.integers(0, s), min_size=b, max_size=b))
    mask = (np.arange(s)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    return hidden, mask


@given(batches())
def test_mean_over_unmasked_positions_only(data: tuple[np.ndarray, np.ndarray]) -> None:
    hidden, mask = data
    pooled = mean_pool(hidden, mask)
    for row in range(hidden.shape[0]):
        n = int(mask[row].sum())
        expected = hidden[row, :n].mean(axis=0) if n else np.zeros(hidden.shape[2])
        np.testing.assert_allclose(pooled[row], expected, rtol=1e-4, atol=1e-3)


@given(batches(), st.floats(-1e6, 1e6, allow_nan=False, width=32))
def test_padding_content_never_matters(data: tuple[np.ndarray, np.ndarray], junk: float) -> None:
    hidden, mask = data
    dirty = hidden.copy()
    dirty[mask == 0] = junk
    np.testing.assert_array_equal(mean_pool(dirty, mask), mean_pool(hidden, mask))


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 8)), elements=finite))
def test_normalize_gives_unit_rows_or_keeps_zero_rows(x: np.ndarray) -> None:
    out = l2_normalize(x)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    for row, norm in enumerate(norms):
        if norm > 1e-6:
            assert abs(np.linalg.norm(out[row]) - 1) < 1e-5
            # direction is preserved
            np.testing.assert_allclose(out[row] * norm, x[row], rtol=1e-3, atol=1e-3)
        elif norm == 0:
            assert not out[row].any()


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        mean_pool(np.zeros((2, 3, 4), np.float32), np.ones((2, 4), np.int64))
