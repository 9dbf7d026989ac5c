"""PostgREST RPC calls of sync (``POST /rest/v1/rpc/<fn>``), with typed decoding of the large
responses (msgspec: a page of 1000 chunks with 384-d embeddings decodes in C, not in Python)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from sync.errors import SupabaseError
from sync.supabase.http import SupabaseHttp, decode_body

MAX_PAGE = 1000  # PostgREST's default max_rows, and the limit the RPCs accept


class WireChunk(msgspec.Struct, kw_only=True):
    id: str
    document_id: str
    doc_hlc: int
    doc_device: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None = None
    heading_path: list[str] = []
    model_id: str
    embedding: list[float] | None = None


class ChunkPage(msgspec.Struct):
    chunks: list[WireChunk]
    next_cursor: str | None = None
    has_more: bool = False


class PullPage(msgspec.Struct):
    changes: list[dict[str, Any]]
    next_cursor: str | None = None
    has_more: bool = False


class PushReply(msgspec.Struct):
    results: list[dict[str, Any]]


class Match(msgspec.Struct):
    chunk_id: str
    document_id: str
    ordinal: int
    text: str
    similarity: float
    page: int | None = None
    heading_path: list[str] = []


class RestClient:
    def __init__(self, http: SupabaseHttp) -> None:
        self.http = http

    def _rpc_raw(self, name: str, args: dict[str, Any]) -> bytes:
        response = self.http.send("rest", "POST", f"/rest/v1/rpc/{name}", json_body=args)
        return response.content

    def rpc(self, name: str, args: dict[str, Any]) -> Any:
        response = self.http.send("rest", "POST", f"/rest/v1/rpc/{name}", json_body=args)
        return decode_body(response)

    def _decode(self, raw: bytes, type_: type[Any], name: str) -> Any:
        try:
            return msgspec.json.decode(raw, type=type_)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SupabaseError("permanent", f"unexpected answer from {name}: {exc}", service="rest") from exc

    def push(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        reply = self._decode(self._rpc_raw("sync_push", {"p_changes": list(changes)}), PushReply, "sync_push")
        if len(reply.results) != len(changes):
            raise SupabaseError("permanent", "sync_push answered a different number of results", service="rest")
        return list(reply.results)

    def pull(self, cursor: str | None, limit: int) -> PullPage:
        raw = self._rpc_raw("sync_pull", {"p_cursor": cursor, "p_limit": min(limit, MAX_PAGE)})
        page: PullPage = self._decode(raw, PullPage, "sync_pull")
        return page

    def pull_chunks(self, versions: Sequence[dict[str, Any]], cursor: str | None, limit: int) -> ChunkPage:
        raw = self._rpc_raw(
            "sync_pull_chunks", {"p_documents": list(versions), "p_cursor": cursor, "p_limit": min(limit, MAX_PAGE)}
        )
        page: ChunkPage = self._decode(raw, ChunkPage, "sync_pull_chunks")
        return page

    def match_chunks(
        self, embedding: Sequence[float], count: int = 10, scope: str | None = None, min_similarity: float | None = None
    ) -> list[Match]:
        args: dict[str, Any] = {"query_embedding": [float(x) for x in embedding], "match_count": count}
        if scope is not None:
            args["filter_scope"] = scope
        if min_similarity is not None:
            args["min_similarity"] = min_similarity
        matches: list[Match] = self._decode(self._rpc_raw("match_chunks", args), list[Match], "match_chunks")
        return matches
