"""Adapter between extraction results and stored chunks: loads the model's tokenizer lazily
(verified, and without needing the ONNX file) and turns ``chunking.chunk_document`` output
into :class:`~backend.store.chunks.NewChunk` rows."""

from __future__ import annotations

import threading
from collections.abc import Callable

from backend.ingest.chunking import ChunkingConfig, SpanTokenizer, chunk_document
from backend.ingest.extract import ExtractedDocument
from backend.store.chunks import NewChunk


class Chunker:
    def __init__(self, load_tokenizer: Callable[[], SpanTokenizer], config: ChunkingConfig) -> None:
        self._load = load_tokenizer
        self.config = config
        self._tokenizer: SpanTokenizer | None = None
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> SpanTokenizer:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._load()
            return self._tokenizer

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
