"""Replies of ``POST /v1/search`` and ``POST /v1/context``."""

from __future__ import annotations

from backend.api.schemas import Out


class Snippet(Out):
    text: str
    start: int
    end: int
    highlights: list[list[int]]
    """[start, end) offsets into ``text`` of the matched terms."""


class Scores(Out):
    fused: float
    keyword: float | None
    keyword_rank: int | None
    semantic: float | None
    semantic_rank: int | None


class SearchHit(Out):
    chunk_id: int
    document_id: str
    title: str
    filename: str
    path: str | None
    scope: str
    mime: str | None
    modified_at: float
    ordinal: int
    page: int | None
    heading_path: list[str]
    char_start: int
    char_end: int
    text: str
    snippet: Snippet
    score: float
    scores: Scores


class SearchResult(Out):
    query: str
    mode: str
    retrievers: list[str]
    hits: list[SearchHit]
    next_cursor: str | None
    generation: int
    warnings: list[str]
    semantic_path: str | None
    timings_ms: dict[str, float]
    cached: bool
    took_ms: float


class Citation(Out):
    n: int
    document_id: str
    title: str
    path: str | None
    pages: list[int]
    heading_path: list[str]
    char_start: int
    char_end: int
    chunk_ids: list[int]
    score: float
    text: str


class ContextResult(Out):
    question: str
    context: str
    citations: list[Citation]
    tokens: int
    token_budget: int
    skipped_passages: int
    warnings: list[str]
    took_ms: float
