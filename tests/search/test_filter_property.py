"""Filters: every hit satisfies the filter, and k hits come back whenever at least k matching
chunks exist — for keyword, semantic and hybrid search, whatever the candidate budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.switching import Fixed
from backend.search.filters import SearchFilters, make_filters
from backend.search.knn import KnnConfig
from backend.search.service import SearchConfig, SearchRequest, SearchService
from backend.store import Store
from tests.search.builders import DocSpec, add_document, unit_vectors

SCOPES = ["alpha", "beta", "gamma"]
MIMES = ["text/plain", "text/html", "application/pdf", None]
TAGS = ["red", "green", "blue"]
PATHS = ["/p/x/", "/p/y/", "/q/", None]
T0 = 1_700_000_000


@dataclass
class Doc:
    spec: DocSpec
    chunk_ids: list[int]
    has_vectors: bool
    modified: float


@dataclass
class Corpus:
    store: Store
    docs: list[Doc]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    rng = np.random.default_rng(2024)
    store = Store(tmp_path_factory.mktemp("filters") / "data")
    store.start()
    docs = []
    for i in range(70):
        n = int(rng.integers(1, 25))
        path_dir = PATHS[i % 4]
        mtime = None if path_dir is None else T0 + int(rng.integers(0, 100)) * 86400
        spec = DocSpec(
            texts=[f"common word{j % 7} doc{i} item{j}" for j in range(n)],
            vectors=unit_vectors(rng, n) if i % 5 else None,  # every fifth: keyword only
            scope=SCOPES[int(rng.integers(0, 3))],
            mime=MIMES[int(rng.integers(0, 4))],
            path=None if path_dir is None else f"{path_dir}doc{i}.txt",
            mtime_ns=None if mtime is None else mtime * 10**9,
            tags=tuple(t for t in TAGS if rng.random() < 0.4),
        )
        ids = store.write(lambda c, s=spec: add_document(c, s))
        docs.append(Doc(spec, ids, spec.vectors is not None, 0.0))
    with store.read() as conn:
        created = dict(conn.execute("SELECT id, created_at FROM documents").fetchall())
    for d in docs:
        d.modified = d.spec.mtime_ns / 1e9 if d.spec.mtime_ns is not None else float(created[d.spec.doc_id])
    yield Corpus(store, docs)
    store.stop()


def passes(doc: Doc, f: SearchFilters) -> bool:
    s = doc.spec
    if f.scopes is not None and s.scope not in f.scopes:
        return False
    if f.document_ids is not None and s.doc_id not in f.document_ids:
        return False
    if f.tags is not None and not set(s.tags) & set(f.tags):
        return False
    if f.mime_types is not None:
        mime = s.mime or ""
        if not any(mime == m or (m.endswith("/*") and mime.startswith(m[:-1])) for m in f.mime_types):
            return False
    if f.path_prefix is not None and (s.path is None or not s.path.startswith(f.path_prefix)):
        return False
    if f.modified_after is not None and not doc.modified >= f.modified_after:
        return False
    return not (f.modified_before is not None and not doc.modified < f.modified_before)


@st.composite
def filters(draw: st.DrawFn, doc_ids: list[str]) -> SearchFilters:
    def maybe(strategy: st.SearchStrategy) -> object:  # type: ignore[type-arg]
        return draw(st.one_of(st.none(), strategy))

    times = st.sampled_from(
        [T0 - 1.0, T0 + 10 * 86400.0, T0 + 50 * 86400.0, T0 + 99 * 86400.0, time.time() - 3600, time.time() + 3600]
    )
    after, before = maybe(times), maybe(times)
    if after is not None and before is not None and after >= before:  # type: ignore[operator]
        after, before = before, None
    if after is not None and after == before:
        before = None
    return make_filters(
        scopes=maybe(st.lists(st.sampled_from([*SCOPES, "nope"]), min_size=1, max_size=3)),  # type: ignore[arg-type]
        document_ids=maybe(st.lists(st.sampled_from(doc_ids), min_size=1, max_size=8)),  # type: ignore[arg-type]
        tags=maybe(st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)),  # type: ignore[arg-type]
        mime_types=maybe(
            st.lists(st.sampled_from(["text/plain", "text/*", "application/pdf", "image/png"]), min_size=1, max_size=2)
        ),  # type: ignore[arg-type]
        path_prefix=maybe(st.sampled_from(["/p/", "/p/x/", "/q/doc1", "/nowhere"])),  # type: ignore[arg-type]
        modified_after=after,  # type: ignore[arg-type]
        modified_before=before,  # type: ignore[arg-type]
    )


CONFIGS = {
    "default": KnnConfig(),
    # candidates = k: the filter mask must do the work
    "tight": KnnConfig(coarse_oversample=1, min_coarse=1, oversample=1, min_candidates=1),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def service(request: pytest.FixtureRequest, corpus: Corpus, embedder: OnnxEmbedder) -> SearchService:
    return SearchService(corpus.store, Fixed(embedder), SearchConfig(knn=CONFIGS[request.param], cache_size=0))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_hits_satisfy_filters_and_fill_k(corpus: Corpus, service: SearchService, data: st.DataObject) -> None:
    f = data.draw(filters([d.spec.doc_id for d in corpus.docs]))
    k = data.draw(st.sampled_from([1, 3, 10, 40, 100]))
    mode = data.draw(st.sampled_from(["keyword", "semantic", "hybrid"]))
    matching = [d for d in corpus.docs if passes(d, f)]
    keyword_ok = {cid for d in matching for cid in d.chunk_ids}
    semantic_ok = {cid for d in matching if d.has_vectors for cid in d.chunk_ids}
    expected = {"keyword": keyword_ok, "semantic": semantic_ok, "hybrid": keyword_ok | semantic_ok}[mode]
    found = service.search(SearchRequest("common", mode, k, f))  # type: ignore[arg-type]
    got = [h["chunk_id"] for h in found["hits"]]
    assert set(got) <= expected, f"hits outside the filter {f}"
    assert len(got) == len(set(got)) == min(k, len(expected))
