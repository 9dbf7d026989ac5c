"""Adapter between extraction results and stored chunks: loads the model's tokenizer lazily
(verified, and without needing the ONNX file) and turns ``chunking.chunk_document`` output
into :class:`~backend.store.chunks.NewChunk` rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from backend.ingest.chunking import ChunkingConfig, SpanTokenizer, chunk_document
from backend.ingest.extract import ExtractedDocument
from backend.store.chunks import NewChunk

RELOAD_AFTER_S = 60.0
"""After the tokenizer failed to load (model files missing), ingest is held back this long
before a job tries again (:attr:`Chunker.unavailable`)."""


class Chunker:
    def __init__(self, load_tokenizer: Callable[[], SpanTokenizer], config: ChunkingConfig) -> None:
        self._load = load_tokenizer
        self.config = config
        self._tokenizer: SpanTokenizer | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> SpanTokenizer:
        with self._lock:
            if self._tokenizer is None:
                try:
                    self._tokenizer = self._load()
                except Exception:
                    self._failed_at = time.monotonic()
                    raise
                self._failed_at = None
            return self._tokenizer

    @property
    def unavailable(self) -> bool:
        """The tokenizer failed to load less than RELOAD_AFTER_S ago (a gate for ingest jobs)."""
        with self._lock:
            failed = self._failed_at
        return failed is not None and time.monotonic() - failed < RELOAD_AFTER_S

    def chunk(self, doc: ExtractedDocument) -> list[NewChunk]:
        return [
            NewChunk(
                ordinal=c.ordinal,
                text=c.text,
                sha256=c.sha256,
                char_start=c.char_start,
                char_end=c.char_end,
                page=c.page,
                heading_path=tuple(c.heading_path),
                token_count=c.token_count,
            )
            for c in chunk_document(doc, self.tokenizer, self.config)
        ]
