"""The ``embed_missing`` job: give every chunk a vector of the active model.

Queued when a document was indexed for keyword search only (the model was unavailable); runs
once the model is ready (the worker's gate), in batches, so a restart resumes where it stopped.
Documents whose chunks all have vectors then become ``embedded``.
"""

from __future__ import annotations

import functools

import apsw
import numpy as np

from backend.errors import Unavailable
from backend.events import EventBus
from backend.ingest.pipeline import LOADING_STATES, EmbedderSource, JobContext, WaitForModel
from backend.store import Store, embedding_gaps

EMBED_BATCH = 256


class EmbedMissing:
    def __init__(self, store: Store, embedding: EmbedderSource, events: EventBus) -> None:
        self.store = store
        self.embedding = embedding
        self.events = events

    def run(self, ctx: JobContext) -> None:
        try:
            embedder = self.embedding.embedder
        except Unavailable as exc:
            loading = self.embedding.state in LOADING_STATES
            raise WaitForModel(
                f"waiting for the embedding model: {exc.message}",
                retry_after=5.0 if loading else 60.0,
            ) from exc
        model_id = embedder.model_id
        done = 0
        while True:
            ctx.check()
            with self.store.read() as conn:
                rows = embedding_gaps.chunks_without_vectors(conn, model_id, EMBED_BATCH)
                total = done + embedding_gaps.count_chunks_without_vectors(conn, model_id)
            if not rows:
                break
            vectors = embedder.embed([text for _, text in rows])
            pairs = [(cid, np.asarray(vec, dtype=np.float32)) for (cid, _), vec in zip(rows, vectors, strict=True)]
            self.store.write(functools.partial(embedding_gaps.put_if_chunks_exist, model_id=model_id, rows=pairs))
            done += len(rows)
            ctx.progress("embedding", done, total, 0)
        self.store.write(lambda c: mark_embedded(c, model_id))
        self.events.publish("index.vectors_complete", {"model_id": model_id, "embedded": done})


def mark_embedded(conn: apsw.Connection, model_id: str) -> None:
    conn.execute(
        "UPDATE documents SET status = 'embedded', status_reason = NULL WHERE status = 'chunked' "
        "AND chunk_count > 0 AND NOT EXISTS (SELECT 1 FROM chunks c LEFT JOIN embeddings e "
        "ON e.chunk_id = c.id AND e.model_id = ? WHERE c.document_id = documents.id AND e.chunk_id IS NULL)",
        (model_id,),
    )
