"""Model-id tagging and the zero-downtime model switch (embedder side).

Tagging
-------
Vectors of two models are not comparable, so every vector carries the id of the model that made
it: :func:`embed_tagged` returns :class:`TaggedVectors` (``model_id`` + array), and the store
writes ``embeddings(chunk_id, model_id, vector)`` from it, never from a bare array. A query
vector is only ever compared with vectors of the same id: :meth:`EmbedderRegistry.for_index`
hands out the embedder for an index's ``(model_id, dim)`` or raises ``EmbedderMismatch``.

Switching models without taking search down
--------------------------------------------
State: ``kv.active_model_id`` (which index answers queries) and ``vector_indexes(model_id,
table_name, dim, state)`` with state ``building`` → ``ready`` → ``retired``.

1. **Start.** The user picks model B while A is active. The composition root starts a second
   :class:`~backend.embed.service.EmbeddingService` for B and calls
   ``registry.begin_build(B)``; the store adds ``vector_indexes(B, ..., 'building')`` (a new vec0
   table of B's dim) and enqueues one durable job ``reembed(model_id=B)``.
2. **Fill (durable, resumable).** The job repeatedly selects chunks that have no vector for B
   (``LEFT JOIN embeddings e ON e.chunk_id = c.id AND e.model_id = B WHERE e.chunk_id IS NULL
   LIMIT n``), embeds them with B's bulk ``embed`` (which yields to queries between batches) and
   writes ``embeddings`` + B's vec0 rows in one write transaction. The query itself is the
   cursor: after a crash or restart the job resumes where it stopped; re-running is harmless
   (primary key ``(chunk_id, model_id)``). Progress = vectors of B / chunks.
3. **Meanwhile A answers.** Search keeps using ``registry.active()`` (A) against A's index.
   Ingest writes vectors for every model in ``registry.write_targets()`` (A and B), so documents
   added during the build need no second pass; deletes cascade from ``chunks``. If B's model is
   missing or corrupt, B's service is ``failed``, the job waits and reports it; A is untouched.
   Keyword search never depends on any model.
4. **Switch (atomic).** When no chunk lacks a B vector, one write transaction sets B
   ``ready``, A ``retired`` and ``kv.active_model_id = B``; right after the commit,
   ``registry.finish_build()`` makes B active in memory. A query that started before still
   holds A's embedder and reads A's index, which exists until step 5, so it stays correct.
5. **Clean up (another durable job).** Delete A's ``embeddings`` rows and drop A's vec0 table,
   then ``registry.retire(A)`` and stop A's service. Cancelling a build is the mirror image
   (drop B's rows and table, ``registry.cancel_build()``).

Never: wiping the index and re-embedding in place, or blocking search during a rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from backend.embed.errors import EmbedderMismatch, ModelNotReady, ModelUnknown
from backend.embed.protocol import Embedder


def ensure_compatible(embedder: Embedder, *, model_id: str, dim: int) -> Embedder:
    """Return ``embedder`` if it produces vectors for the index ``(model_id, dim)``."""
    if embedder.model_id != model_id or embedder.dim != dim:
        raise EmbedderMismatch(
            f"embedder {embedder.model_id} ({embedder.dim}-d) cannot serve the index of "
            f"{model_id} ({dim}-d); configure a provider for {model_id} or rebuild the index",
            detail={
                "index_model_id": model_id,
                "index_dim": dim,
                "embedder_model_id": embedder.model_id,
                "embedder_dim": embedder.dim,
            },
        )
    return embedder


@dataclass(frozen=True, slots=True)
class TaggedVectors:
    """Vectors and the id of the model that made them (the only thing the store accepts)."""

    model_id: str
    vectors: npt.NDArray[np.float32]
    """float32 [n, dim], L2-normalised, read-only."""

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def blobs(self) -> list[bytes]:
        """Each vector as little-endian float32 bytes (the store's and sqlite-vec's format)."""
        le = self.vectors.astype("<f4", copy=False)
        return [row.tobytes() for row in le]


def embed_tagged(embedder: Embedder, texts: Sequence[str]) -> TaggedVectors:
    """``embedder.embed(texts)`` tagged with ``embedder.model_id``."""
    vectors = np.array(embedder.embed(texts), dtype=np.float32, copy=True)
    if vectors.ndim != 2 or vectors.shape[1] != embedder.dim:
        raise EmbedderMismatch(
            f"embedder {embedder.model_id} returned shape {vectors.shape}, expected dim {embedder.dim}"
        )
    vectors.setflags(write=False)
    return TaggedVectors(embedder.model_id, vectors)


class EmbedderSource(Protocol):
    """Something that may have an embedder ready: an ``EmbeddingService`` or a fixed one."""

    @property
    def model_id(self) -> str: ...

    @property
    def embedder(self) -> Embedder: ...


class Fixed:
    """An :class:`EmbedderSource` for an embedder that is always ready (e.g. HTTP provider)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def embedder(self) -> Embedder:
        return self._embedder


class EmbedderRegistry:
    """The embedders the index uses now: the active one and, during a switch, the one being
    built. All transitions happen under one lock, so readers see A or B, never a mix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, EmbedderSource] = {}
        self._active: str | None = None
        self._building: str | None = None

    def register(self, source: EmbedderSource) -> None:
        with self._lock:
            self._sources[source.model_id] = source

    def set_active(self, model_id: str) -> None:
        """Make ``model_id`` the active model (start-up: the id stored in ``kv``)."""
        with self._lock:
            self._require(model_id)
            self._active = model_id

    @property
    def active_id(self) -> str | None:
        with self._lock:
            return self._active

    @property
    def building_id(self) -> str | None:
        with self._lock:
            return self._building

    def active(self) -> Embedder:
        """The embedder for queries (raises ``ModelNotReady`` / the model's load error)."""
        with self._lock:
            if self._active is None:
                raise ModelNotReady("no embedding model is active")
            source = self._sources[self._active]
        return source.embedder

    def get(self, model_id: str) -> Embedder:
        with self._lock:
            source = self._require(model_id)
        return source.embedder

    def for_index(self, model_id: str, dim: int) -> Embedder:
        """The embedder whose vectors are comparable with the index ``(model_id, dim)``."""
        return ensure_compatible(self.get(model_id), model_id=model_id, dim=dim)

    def write_targets(self) -> list[str]:
        """Model ids ingest must write vectors for: the active one and the one being built."""
        with self._lock:
            return [m for m in (self._active, self._building) if m is not None]

    def begin_build(self, model_id: str) -> None:
        with self._lock:
            self._require(model_id)
            if model_id == self._active:
                raise ValueError(f"{model_id} is already the active model")
            if self._building not in (None, model_id):
                raise ValueError(f"a build of {self._building} is already in progress")
            self._building = model_id

    def finish_build(self) -> str | None:
        """Atomically make the model being built active; returns the previous active id."""
        with self._lock:
            if self._building is None:
                raise ValueError("no model is being built")
            previous, self._active, self._building = self._active, self._building, None
            return previous

    def cancel_build(self) -> None:
        with self._lock:
            self._building = None

    def retire(self, model_id: str) -> None:
        """Forget a model no index uses any more (not the active or building one)."""
        with self._lock:
            if model_id in (self._active, self._building):
                raise ValueError(f"{model_id} is still in use")
            self._sources.pop(model_id, None)

    def _require(self, model_id: str) -> EmbedderSource:
        source = self._sources.get(model_id)
        if source is None:
            raise ModelUnknown(f"no embedder registered for model {model_id}")
        return source
