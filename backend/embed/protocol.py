"""The embedder protocol every provider (local ONNX, OpenAI-compatible HTTP) implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors tagged by ``model_id``.

    ``embed`` returns an array of shape ``[len(texts), dim]`` in input order; ``embed_query``
    returns shape ``[dim]`` and may be cached and prioritised over bulk work. Both are safe to
    call from several threads. Vectors from different ``model_id`` values are not comparable:
    the store tags every vector with the id (see :mod:`backend.embed.switching`).
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...

    def embed_query(self, text: str) -> npt.NDArray[np.float32]: ...
