"""Search hits: reading chunk + document fields for ranked chunk ids and shaping them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import apsw

from backend.search.filters import MODIFIED_SQL
from backend.search.query import ParsedQuery
from backend.search.snippets import make_snippet
from backend.store.chunks import HEADING_SEPARATOR


@dataclass(frozen=True, slots=True)
class ChunkRow:
    chunk_id: int
    document_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: str
    token_count: int
    title: str
    filename: str
    path: str | None
    scope: str
    mime: str | None
    modified_at: float


def fetch_chunks(conn: apsw.Connection, chunk_ids: list[int]) -> dict[int, ChunkRow]:
    if not chunk_ids:
        return {}
    rows = conn.execute(
        "SELECT c.id, c.document_id, c.ordinal, c.text, c.char_start, c.char_end, c.page, c.heading_path, "  # noqa: S608
        f"c.token_count, coalesce(d.title, d.filename), d.filename, d.path, d.scope, d.mime, {MODIFIED_SQL} "
        "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN (SELECT value FROM json_each(?))",
        (json.dumps(chunk_ids),),
    )
    out = {}
    for r in rows:
        out[int(r[0])] = ChunkRow(
            int(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]), int(r[5]),
            None if r[6] is None else int(r[6]), str(r[7]), int(r[8]), str(r[9]), str(r[10]),
            None if r[11] is None else str(r[11]), str(r[12]), None if r[13] is None else str(r[13]), float(r[14]),
        )  # fmt: skip
    return out


@dataclass(slots=True)
class Hit:
    row: ChunkRow
    score: float
    keyword: tuple[int, float] | None = None
    """(rank, -bm25) in the keyword list."""
    semantic: tuple[int, float] | None = None
    """(rank, cosine) in the semantic list."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, query: ParsedQuery, snippet_chars: int) -> dict[str, Any]:
        r = self.row
        return {
            "chunk_id": r.chunk_id,
            "document_id": r.document_id,
            "title": r.title,
            "filename": r.filename,
            "path": r.path,
            "scope": r.scope,
            "mime": r.mime,
            "modified_at": r.modified_at,
            "ordinal": r.ordinal,
            "page": r.page,
            "heading_path": r.heading_path.split(HEADING_SEPARATOR) if r.heading_path else [],
            "char_start": r.char_start,
            "char_end": r.char_end,
            "text": r.text,
            "snippet": make_snippet(r.text, query, snippet_chars).to_dict(),
            "score": self.score,
            "scores": {
                "fused": self.score,
                "keyword": None if self.keyword is None else self.keyword[1],
                "keyword_rank": None if self.keyword is None else self.keyword[0],
                "semantic": None if self.semantic is None else self.semantic[1],
                "semantic_rank": None if self.semantic is None else self.semantic[0],
            },
        }
