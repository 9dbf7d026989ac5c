"""Shared helpers for the embedding tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.query_cache import QueryCache

GOLDEN_PATH = Path(__file__).with_name("golden_minilm.json")


def load_golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
    return data


def variant(
    base: OnnxEmbedder,
    *,
    token_budget: int = 8192,
    max_batch_size: int = 128,
    model_id: str | None = None,
) -> OnnxEmbedder:
    """Another embedder over the same loaded session and tokenizer, with other batching."""
    return OnnxEmbedder(
        model_id=model_id or base.model_id,
        dim=base.dim,
        max_tokens=base.max_tokens,
        session=base._session,
        tokenizer=base._tokenizer,
        input_names=base._inputs,
        output_name=base._output,
        token_budget=token_budget,
        max_batch_size=max_batch_size,
        cache=QueryCache(0),
    )


def one_by_one(emb: OnnxEmbedder, texts: list[str]) -> npt.NDArray[np.float32]:
    """Each text embedded alone (batch of one, no padding): the reference for bucketing."""
    return np.stack([emb.embed([t])[0] for t in texts]) if texts else np.empty((0, emb.dim))
