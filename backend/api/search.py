"""Search and RAG context: ``POST /v1/search``, ``POST /v1/context``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from backend.api.guards import json_body
from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.search import ContextResult, SearchResult
from backend.errors import ValidationFailed
from backend.search.filters import SearchFilters, make_filters
from backend.search.service import SearchRequest
from backend.services import Services

Timestamp = float | str


class FiltersBody(msgspec.Struct, forbid_unknown_fields=True):
    scopes: list[str] | None = None
    document_ids: list[str] | None = None
    tags: list[str] | None = None
    mime_types: list[str] | None = None
    path_prefix: str | None = None
    modified_after: Timestamp | None = None
    """Unix seconds or an ISO 8601 date/time (UTC when no offset is given)."""
    modified_before: Timestamp | None = None


class SearchBody(msgspec.Struct, forbid_unknown_fields=True):
    query: str
    mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    k: int = 10
    filters: FiltersBody | None = None
    cursor: str | None = None
    recency_boost: float = 0.0
    """0 = off; w boosts a chunk by (1 + w * 2^(-age / 30 days))."""
    cache: bool = True


class ContextBody(msgspec.Struct, forbid_unknown_fields=True):
    question: str
    token_budget: int = 2000
    filters: FiltersBody | None = None


def _timestamp(value: Timestamp | None, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        seconds = float(value)
    else:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationFailed(
                f"filters.{field} must be unix seconds or an ISO 8601 date/time, got {value[:40]!r}",
                detail={"field": field},
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        seconds = parsed.timestamp()
    if not -1e11 < seconds < 1e11:
        raise ValidationFailed(f"filters.{field} is out of range", detail={"field": field})
    return seconds


def to_filters(body: FiltersBody | None) -> SearchFilters:
    if body is None:
        return SearchFilters()
    return make_filters(
        scopes=body.scopes,
        document_ids=body.document_ids,
        tags=body.tags,
        mime_types=body.mime_types,
        path_prefix=body.path_prefix,
        modified_after=_timestamp(body.modified_after, "modified_after"),
        modified_before=_timestamp(body.modified_before, "modified_before"),
    )


@post(
    "/v1/search",
    summary="Hybrid, semantic or keyword search over the indexed chunks, with filters and cursors",
    tags=["search"],
    status_code=200,
    guards=[json_body],
    sync_to_thread=True,
    responses=errors(400, 415, 422, 503),
)
def search(services: NamedDependency[Services], data: JSONBody[SearchBody]) -> SearchResult:
    req = SearchRequest(
        query=data.query,
        mode=data.mode,
        k=data.k,
        filters=to_filters(data.filters),
        cursor=data.cursor,
        recency_boost=data.recency_boost,
        use_cache=data.cache,
    )
    return reply(services.search.search(req), SearchResult)


@post(
    "/v1/context",
    summary="RAG context: the best passages for a question within a token budget, with citations",
    tags=["search"],
    status_code=200,
    guards=[json_body],
    sync_to_thread=True,
    responses=errors(400, 415, 422, 503),
)
def context(services: NamedDependency[Services], data: JSONBody[ContextBody]) -> ContextResult:
    return reply(services.search.context(data.question, data.token_budget, to_filters(data.filters)), ContextResult)


ROUTES = [search, context]
