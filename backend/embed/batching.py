"""Length bucketing: pure planning of inference batches under a token budget.

Inputs are sorted by token length (longest first, ties in input order) and cut into batches
greedily so that ``batch_size * padded_len <= token_budget`` — a batch of short texts holds many,
a batch of long ones few, and padding is minimal because neighbours have similar lengths. A
text longer than the budget still gets a batch of its own. :func:`scatter` puts per-batch
results back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Batch:
    """Input positions (indices into the caller's list) run together, and their padded length."""

    indices: tuple[int, ...]
    padded_len: int

    @property
    def cost(self) -> int:
        """Tokens the model processes, padding included."""
        return len(self.indices) * self.padded_len


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int | None = None) -> list[Batch]:
    """Group input positions into batches, longest first; every position appears exactly once."""
    if token_budget < 1:
        raise ValueError("token_budget must be >= 1")
    if max_batch_size is not None and max_batch_size < 1:
        raise ValueError("max_batch_size must be >= 1")
    if any(n < 0 for n in lengths):
        raise ValueError("lengths must be >= 0")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[Batch] = []
    current: list[int] = []
    padded = 0
    for i in order:
        padded_if_added = max(padded, lengths[i])
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (full or (len(current) + 1) * padded_if_added > token_budget):
            batches.append(Batch(tuple(current), padded))
            current, padded_if_added = [], lengths[i]
        current.append(i)
        padded = padded_if_added
    if current:
        batches.append(Batch(tuple(current), padded))
    return batches


def scatter(n: int, dim: int, parts: Sequence[tuple[Batch, npt.NDArray[np.float32]]]) -> npt.NDArray[np.float32]:
    """Assemble per-batch results ([len(batch), dim] each) into an [n, dim] array in input order."""
    out = np.empty((n, dim), dtype=np.float32)
    seen = np.zeros(n, dtype=bool)
    for batch, rows in parts:
        if rows.shape != (len(batch.indices), dim):
            raise ValueError(f"batch result shape {rows.shape} != {(len(batch.indices), dim)}")
        idx = np.fromiter(batch.indices, dtype=np.intp, count=len(batch.indices))
        out[idx] = rows
        seen[idx] = True
    if not seen.all():
        raise ValueError("some input positions have no result")
    return out
