"""Rank fusion of the keyword and semantic result lists (pure functions).

Inputs are ranked lists, best first, of ``(chunk_id, score)`` with higher scores better
(keyword: ``-bm25``; semantic: cosine similarity). Two fusion functions:

* :func:`rrf` — weighted reciprocal rank fusion, ``sum_i w_i / (rrf_k + rank_i)``; uses ranks
  only, so it needs no score calibration.
* :func:`convex` — ``alpha * semantic' + (1 - alpha) * keyword'`` over scores min-max normalised
  within each list (a chunk absent from a list contributes 0 there). Bruch et al. (TOIS 2023)
  find a tuned convex combination beats RRF; which one the service uses, and its parameters,
  are chosen on the judged PostgreSQL set (``tests/bench/eval_retrieval.py``).

Ties are broken by chunk id so the output is deterministic. :func:`recency_boost` multiplies
fused scores by ``1 + weight * 2 ** (-age / half_life)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Ranked = Sequence[tuple[int, float]]
FusionMethod = Literal["rrf", "convex"]


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """Defaults chosen on the judged PostgreSQL set (tests/bench/eval_retrieval.py): the best
    MRR@10 on the tuning half of the questions among RRF (k 10/30/60, semantic weight
    0.5-2) and convex (alpha 0.3-0.9) settings; convex alpha 0.6-0.7 came within 0.004."""

    method: FusionMethod = "rrf"
    alpha: float = 0.6
    """Convex: weight of the semantic list (1 - alpha for keyword)."""
    rrf_k: float = 10.0
    semantic_weight: float = 1.5
    """RRF: weight of the semantic list (the keyword list has weight 1)."""


def _ordered(scores: Mapping[int, float]) -> list[tuple[int, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def rrf(
    lists: Mapping[str, Ranked], weights: Mapping[str, float] | None = None, rrf_k: float = 60.0
) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion; an id repeated within one list counts once (best rank)."""
    if rrf_k < 0:
        raise ValueError("rrf_k must be >= 0")
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        seen: set[int] = set()
        rank = 0
        for cid, _ in ranked:
            if cid in seen:
                continue
            seen.add(cid)
            rank += 1
            fused[cid] = fused.get(cid, 0.0) + w / (rrf_k + rank)
    return _ordered(fused)


def normalise(ranked: Ranked) -> dict[int, float]:
    """Min-max scale scores into [0, 1] (all equal → 1.0); best score per id."""
    best: dict[int, float] = {}
    for cid, s in ranked:
        if not math.isfinite(s):
            continue
        if cid not in best or s > best[cid]:
            best[cid] = s
    if not best:
        return {}
    lo, hi = min(best.values()), max(best.values())
    if hi - lo <= 1e-12:
        return dict.fromkeys(best, 1.0)
    return {cid: (s - lo) / (hi - lo) for cid, s in best.items()}


def convex(keyword: Ranked, semantic: Ranked, alpha: float) -> list[tuple[int, float]]:
    """``alpha * semantic + (1 - alpha) * keyword`` over min-max normalised scores."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be within [0, 1]")
    kw, sem = normalise(keyword), normalise(semantic)
    fused = {cid: (1.0 - alpha) * kw.get(cid, 0.0) + alpha * sem.get(cid, 0.0) for cid in kw.keys() | sem.keys()}
    return _ordered(fused)


def fuse(keyword: Ranked, semantic: Ranked, config: FusionConfig) -> list[tuple[int, float]]:
    if config.method == "rrf":
        return rrf(
            {"keyword": keyword, "semantic": semantic},
            {"keyword": 1.0, "semantic": config.semantic_weight},
            config.rrf_k,
        )
    return convex(keyword, semantic, config.alpha)


def recency_boost(
    fused: Ranked, ages_seconds: Mapping[int, float], weight: float, half_life_seconds: float
) -> list[tuple[int, float]]:
    """Boost newer chunks: ``score * (1 + weight * 2 ** (-age / half_life))``, re-sorted.

    Ages below zero (clock skew, future mtimes) count as zero; a missing age gets no boost.
    """
    if weight < 0 or half_life_seconds <= 0:
        raise ValueError("weight must be >= 0 and half_life_seconds > 0")
    if weight == 0:
        return _ordered(dict(fused))
    out: dict[int, float] = {}
    for cid, score in fused:
        age = ages_seconds.get(cid)
        factor = 1.0 if age is None else 1.0 + weight * 2.0 ** (-max(age, 0.0) / half_life_seconds)
        out[cid] = score * factor
    return _ordered(out)
