"""SearchService behaviour on a real store: cache invalidation by any index change (chunks,
tags, scope), recency boost, cursors over the fused ranking."""

from __future__ import annotations

import time

import numpy as np

from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.switching import Fixed
from backend.search.filters import make_filters
from backend.search.service import SearchRequest, SearchService
from backend.store import Store
from backend.store import documents as doc_repo
from tests.search.builders import DocSpec, add_document, unit_vectors


def service(store: Store, embedder: OnnxEmbedder) -> SearchService:
    return SearchService(store, Fixed(embedder))


def test_cache_is_dropped_when_chunks_tags_or_scope_change(store: Store, embedder: OnnxEmbedder) -> None:
    rng = np.random.default_rng(0)
    a = DocSpec(["the elephant never forgets"], unit_vectors(rng, 1), tags=("zoo",))
    store.write(lambda c: add_document(c, a))
    svc = service(store, embedder)
    req = SearchRequest("elephant", "keyword", 10, make_filters(tags=["zoo"]))
    first = svc.search(req)
    assert [h["document_id"] for h in first["hits"]] == [a.doc_id] and not first["cached"]
    assert svc.search(req)["cached"]

    b = DocSpec(["an elephant in the room"], unit_vectors(rng, 1), tags=("zoo",))
    store.write(lambda c: add_document(c, b))  # new chunks
    after_add = svc.search(req)
    assert not after_add["cached"] and {h["document_id"] for h in after_add["hits"]} == {a.doc_id, b.doc_id}

    store.write(lambda c: doc_repo.set_tags(c, a.doc_id, ("office",)))  # only a tag changes
    after_tag = svc.search(req)
    assert not after_tag["cached"] and [h["document_id"] for h in after_tag["hits"]] == [b.doc_id]

    scoped = SearchRequest("elephant", "keyword", 10, make_filters(scopes=["default"]))
    assert len(svc.search(scoped)["hits"]) == 2
    store.write(lambda c: doc_repo.update(c, b.doc_id, scope="private"))  # only the scope changes
    assert [h["document_id"] for h in svc.search(scoped)["hits"]] == [a.doc_id]


def test_recency_boost_lifts_newer_documents(store: Store, embedder: OnnxEmbedder) -> None:
    rng = np.random.default_rng(1)
    now = time.time()
    old = DocSpec(
        ["postgres vacuum tuning notes"],
        unit_vectors(rng, 1),
        path="/d/old.txt",
        mtime_ns=int((now - 400 * 86400) * 1e9),
    )
    new = DocSpec(
        ["postgres vacuum tuning notes, again"],
        unit_vectors(rng, 1),
        path="/d/new.txt",
        mtime_ns=int((now - 86400) * 1e9),
    )
    for spec in (old, new):
        store.write(lambda c, s=spec: add_document(c, s))
    svc = service(store, embedder)
    plain = svc.search(SearchRequest("postgres vacuum tuning notes", "keyword", 2))
    assert [h["document_id"] for h in plain["hits"]] == [old.doc_id, new.doc_id]  # bm25 prefers the shorter
    boosted = svc.search(SearchRequest("postgres vacuum tuning notes", "keyword", 2, recency_boost=2.0))
    assert [h["document_id"] for h in boosted["hits"]] == [new.doc_id, old.doc_id]


def test_cursor_walks_the_whole_ranking_without_repeats(store: Store, embedder: OnnxEmbedder) -> None:
    rng = np.random.default_rng(2)
    spec = DocSpec([f"common topic number {i}" for i in range(37)], unit_vectors(rng, 37))
    store.write(lambda c: add_document(c, spec))
    svc = service(store, embedder)
    whole = [h["chunk_id"] for h in svc.search(SearchRequest("common topic", "hybrid", 37))["hits"]]
    seen, cursor = [], None
    while True:
        page = svc.search(SearchRequest("common topic", "hybrid", 5, cursor=cursor))
        seen += [h["chunk_id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == whole and len(set(seen)) == 37
