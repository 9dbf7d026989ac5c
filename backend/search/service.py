"""SearchService: hybrid search and RAG context over the store, as a component.

The library API the HTTP handlers and the CLI share. One search:

1. parse the query (:mod:`backend.search.query`), look the request up in the result cache
   (keyed by query, mode, filters, k, cursor, options and the semantic model; emptied when the
   index generation changes);
2. embed the query (outside any read transaction; the embedder caches query vectors);
3. in ONE read snapshot: keyword (FTS5/bm25) and semantic (binary scan + float rescoring)
   retrieval with the filters, fusion (+ optional recency boost), the hits' rows;
4. snippets with highlight offsets, cursor for the next page.

Keyword search never depends on the model: while it loads (or when it is missing), ``hybrid``
answers from keyword retrieval alone and says so in ``warnings``; ``semantic`` returns the
model's 503 error. ``start()`` loads the binary mirror of the active index in a background
thread (joined by ``stop()``), so the first semantic query does not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from backend.components import ComponentState, StatusCell
from backend.embed.protocol import Embedder
from backend.embed.switching import ensure_compatible
from backend.errors import Unavailable, ValidationFailed
from backend.search.cache import ResultCache
from backend.search.context import ContextChunk, assemble, merge_passages
from backend.search.filters import SearchFilters
from backend.search.fusion import FusionConfig, fuse, recency_boost
from backend.search.hits import Hit, fetch_chunks
from backend.search.keyword import KeywordConfig, keyword_search
from backend.search.knn import KnnConfig, KnnStats, SemanticIndex
from backend.search.query import parse_query
from backend.store import Store
from backend.store import vectors as vector_repo
from backend.store.vectors import VectorIndex, VectorIndexMissing

log = logging.getLogger("docsidecar.search")

Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[Mode, ...] = ("hybrid", "semantic", "keyword")


class EmbedderSource(Protocol):
    @property
    def embedder(self) -> Embedder: ...


@dataclass(frozen=True, slots=True)
class SearchConfig:
    max_k: int = 100
    max_depth: int = 1000
    """Deepest result reachable through cursors (offset + k)."""
    max_query_chars: int = 10_000
    fuse_depth: int = 50
    """Candidates taken from each retriever before fusion (at least offset + k + 1)."""
    snippet_chars: int = 240
    cache_size: int = 256
    cache_ttl_s: float = 30.0
    recency_half_life_s: float = 30 * 86400.0
    context_candidates: int = 30
    max_token_budget: int = 100_000
    fusion: FusionConfig = field(default_factory=FusionConfig)
    keyword: KeywordConfig = field(default_factory=KeywordConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    mode: Mode = "hybrid"
    k: int = 10
    filters: SearchFilters = field(default_factory=SearchFilters)
    cursor: str | None = None
    recency_boost: float = 0.0
    use_cache: bool = True


def _fingerprint(req: SearchRequest) -> str:
    raw = json.dumps([req.query, req.mode, repr(req.filters.key()), req.recency_boost])
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_cursor(offset: int, req: SearchRequest) -> str:
    raw = json.dumps([offset, _fingerprint(req)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, req: SearchRequest) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset, fp = json.loads(raw)
        offset = int(offset)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("malformed cursor", detail={"field": "cursor"}) from exc
    if fp != _fingerprint(req) or offset < 0:
        raise ValidationFailed(
            "this cursor belongs to another query (same query, mode, filters and recency_boost needed)",
            detail={"field": "cursor"},
        )
    return offset


class SearchService:
    name = "search"

    def __init__(
        self,
        store: Store,
        embedding: EmbedderSource,
        config: SearchConfig | None = None,
        *,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.store = store
        self.embedding = embedding
        self.config = config or SearchConfig()
        self.semantic = SemanticIndex(self.config.knn)
        self.cache: ResultCache[dict[str, Any]] = ResultCache(self.config.cache_size, self.config.cache_ttl_s)
        self._count_tokens = count_tokens
        self.status = StatusCell()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.status.set(ComponentState.READY, {"mirror": "loading"})
        self._thread = threading.Thread(target=self._warm, name="search-warm")
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.status.set(ComponentState.STOPPED)

    def _warm(self) -> None:
        try:
            with self.store.read() as conn:
                index = vector_repo.active_model(conn)
                blocks = self.semantic.warm(conn, index) if index is not None else 0
            self.status.set(ComponentState.READY, {"mirror": "ready", "blocks": blocks})
        except Exception as exc:  # noqa: BLE001 - queries load the mirror themselves; report why
            log.warning("warming the semantic index failed: %r", exc)
            self.status.set(ComponentState.READY, {"mirror": "cold", "error": repr(exc)})

    # -- search ------------------------------------------------------------------------------
    def check(self, req: SearchRequest) -> int:
        """Validate ``req``; returns the offset its cursor points at."""
        if req.mode not in MODES:
            raise ValidationFailed(f"mode must be one of {', '.join(MODES)}", detail={"field": "mode"})
        if not req.query.strip():
            raise ValidationFailed("query must not be empty", detail={"field": "query"})
        if len(req.query) > self.config.max_query_chars:
            raise ValidationFailed(
                f"query is {len(req.query)} characters; at most {self.config.max_query_chars} are accepted",
                detail={"field": "query", "limit": self.config.max_query_chars},
            )
        if not 1 <= req.k <= self.config.max_k:
            raise ValidationFailed(f"k must be between 1 and {self.config.max_k}", detail={"field": "k"})
        if not 0.0 <= req.recency_boost <= 10.0:
            raise ValidationFailed("recency_boost must be between 0 and 10", detail={"field": "recency_boost"})
        offset = decode_cursor(req.cursor, req) if req.cursor else 0
        if offset + req.k > self.config.max_depth:
            raise ValidationFailed(
                f"results deeper than {self.config.max_depth} are not served; refine the query",
                detail={"field": "cursor"},
            )
        return offset

    def _query_embedder(self, conn_index: VectorIndex | None) -> Embedder:
        if conn_index is None:
            raise VectorIndexMissing("no vector index exists yet")
        # During a model switch the configured model is not the active index's: ask the source
        # for that index's embedder when it can tell (backend.embed.model_switch.ModelSwitch).
        for_index = getattr(self.embedding, "for_index", None)
        embedder = for_index(conn_index) if for_index is not None else self.embedding.embedder  # may raise Unavailable
        return ensure_compatible(embedder, model_id=conn_index.model_id, dim=conn_index.dim)

    def _embed_query(
        self, embedder: Embedder, req: SearchRequest, warnings: list[str], timings: dict[str, float]
    ) -> npt.NDArray[np.float32] | None:
        """The query vector; None (hybrid: keyword only, with a warning) if the embedder fails
        now, e.g. an HTTP provider that just went down. Semantic mode raises the error."""
        t = time.perf_counter()
        try:
            return np.asarray(embedder.embed_query(req.query), dtype=np.float32)
        except Unavailable as exc:
            if req.mode == "semantic":
                raise
            warnings.append(f"semantic retrieval unavailable, keyword results only: {exc.message}")
            return None
        finally:
            timings["embed_ms"] = _ms(t)

    def search(self, req: SearchRequest) -> dict[str, Any]:
        t0 = time.perf_counter()
        offset = self.check(req)
        parsed = parse_query(req.query)
        warnings: list[str] = []
        timings: dict[str, float] = {}
        with self.store.read() as conn:
            generation = vector_repo.read_generation(conn)
            index = vector_repo.active_model(conn)
        embedder: Embedder | None = None
        if req.mode != "keyword":
            try:
                embedder = self._query_embedder(index)
            except Unavailable as exc:
                if req.mode == "semantic":
                    raise
                warnings.append(f"semantic retrieval unavailable, keyword results only: {exc.message}")
        key = (req.query, req.mode, req.filters.key(), req.k, offset, req.recency_boost,
               None if embedder is None else embedder.model_id)  # fmt: skip
        if req.use_cache:
            cached = self.cache.get(key, generation)
            if cached is not None:
                return {**cached, "cached": True, "took_ms": _ms(t0)}
        qvec = None if embedder is None else self._embed_query(embedder, req, warnings, timings)
        need = offset + req.k + 1
        depth = max(need, self.config.fuse_depth) if req.mode == "hybrid" else need
        stats = KnnStats()
        with self.store.read() as conn:
            generation = vector_repo.read_generation(conn)
            kw: list[tuple[int, float]] = []
            sem: list[tuple[int, float]] = []
            if req.mode != "semantic":
                t = time.perf_counter()
                kw = keyword_search(conn, parsed, req.filters, depth, self.config.keyword)
                timings["keyword_ms"] = _ms(t)
                if parsed.empty:
                    warnings.append("the query has no words to match by keyword")
            if qvec is not None and index is not None:
                t = time.perf_counter()
                sem = self.semantic.search(conn, index, qvec, depth, req.filters, stats, precise=need)
                timings["semantic_ms"] = _ms(t)
            ranked = self._rank(conn, req, kw, sem)
            page = ranked[offset : offset + req.k]
            rows = fetch_chunks(conn, [cid for cid, _ in page])
        kw_pos = {cid: (i + 1, s) for i, (cid, s) in enumerate(kw)}
        sem_pos = {cid: (i + 1, s) for i, (cid, s) in enumerate(sem)}
        hits = [
            Hit(rows[cid], score, kw_pos.get(cid), sem_pos.get(cid)).to_dict(parsed, self.config.snippet_chars)
            for cid, score in page
            if cid in rows
        ]
        more = len(ranked) > offset + req.k and offset + req.k < self.config.max_depth
        result = {
            "query": req.query,
            "mode": req.mode,
            "retrievers": [
                n for n, used in (("keyword", req.mode != "semantic"), ("semantic", qvec is not None)) if used
            ],
            "hits": hits,
            "next_cursor": encode_cursor(offset + req.k, req) if more else None,
            "generation": generation,
            "warnings": warnings,
            "semantic_path": stats.path if qvec is not None else None,
            "timings_ms": timings,
        }
        if req.use_cache and (embedder is None or qvec is not None):  # not a result degraded by a failed embed
            self.cache.put(key, generation, result)
        return {**result, "cached": False, "took_ms": _ms(t0)}

    def _rank(
        self, conn: Any, req: SearchRequest, kw: list[tuple[int, float]], sem: list[tuple[int, float]]
    ) -> list[tuple[int, float]]:
        if req.mode == "keyword":
            ranked = kw
        elif req.mode == "semantic" or not kw:
            ranked = sem
        elif not sem:
            ranked = kw
        else:
            ranked = fuse(kw, sem, self.config.fusion)
        if req.recency_boost > 0 and ranked:
            rows = fetch_chunks(conn, [cid for cid, _ in ranked])
            now = time.time()
            ages = {cid: now - r.modified_at for cid, r in rows.items()}
            ranked = recency_boost(ranked, ages, req.recency_boost, self.config.recency_half_life_s)
        return ranked

    # -- RAG context -------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        if self._count_tokens is None:
            return len(text) // 4 + 1
        return self._count_tokens(text)

    def context(self, question: str, token_budget: int, filters: SearchFilters) -> dict[str, Any]:
        """The best passages for ``question`` within ``token_budget`` tokens, with citations."""
        if not 1 <= token_budget <= self.config.max_token_budget:
            raise ValidationFailed(
                f"token_budget must be between 1 and {self.config.max_token_budget}", detail={"field": "token_budget"}
            )
        t0 = time.perf_counter()
        found = self.search(SearchRequest(question, "hybrid", self.config.context_candidates, filters))
        ranked = [
            ContextChunk(
                h["chunk_id"],
                h["document_id"],
                h["ordinal"],
                h["text"],
                h["char_start"],
                h["char_end"],
                h["page"],
                " > ".join(h["heading_path"]),
                float(h["score"]),
                h["title"],
                h["path"],
            )
            for h in found["hits"]
        ]
        result = assemble(merge_passages(ranked), token_budget, self.count_tokens)
        return {
            "question": question,
            "context": result.context,
            "citations": result.citations,
            "tokens": result.tokens,
            "token_budget": token_budget,
            "skipped_passages": result.skipped,
            "warnings": found["warnings"],
            "took_ms": _ms(t0),
        }


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)
