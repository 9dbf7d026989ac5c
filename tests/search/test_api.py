"""/v1/search and /v1/context through the real app, on PostgreSQL manual pages indexed by the
real pipeline (extraction, chunking, the int8 MiniLM model, SQLite + FTS5 + sqlite-vec)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.ingest.chunking import HFSpanTokenizer
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN
from tests.ingest.fixtures import tokenizer_path
from tests.search.indexed import IndexedCorpus, copy_of

pytestmark = pytest.mark.anyio
Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def corpus(indexed_template: IndexedCorpus, tmp_path_factory: pytest.TempPathFactory) -> IndexedCorpus:
    return copy_of(indexed_template, tmp_path_factory.mktemp("api") / "data")


async def started(data_dir: Path) -> AsyncIterator[Client]:
    settings = Settings.load({}, {"data_dir": data_dir})
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        assert services.embedding.wait_ready(60)
        yield c


@pytest.fixture(scope="module")
async def api(corpus: IndexedCorpus) -> AsyncIterator[Client]:
    """One app for the read-only tests of this module."""
    async for c in started(corpus.data_dir):
        yield c


@pytest.fixture
async def private_api(indexed_template: IndexedCorpus, tmp_path: Path) -> AsyncIterator[tuple[Client, IndexedCorpus]]:
    """An app on a private copy, for tests that change the index."""
    mine = copy_of(indexed_template, tmp_path / "data")
    async for c in started(mine.data_dir):
        yield c, mine


async def search(api: Client, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def pages(result: dict[str, Any], corpus: IndexedCorpus) -> list[str]:
    by_id = {v: k for k, v in corpus.documents.items()}
    return [by_id[h["document_id"]] for h in result["hits"]]


async def test_hybrid_hits_have_the_documented_shape(api: Client, corpus: IndexedCorpus) -> None:
    res = await search(api, query="partial index with a WHERE clause", mode="hybrid", k=5)
    assert res["retrievers"] == ["keyword", "semantic"] and res["warnings"] == []
    assert 1 <= len(res["hits"]) <= 5
    assert "indexes-partial.html" in pages(res, corpus)[:3]
    for h in res["hits"]:
        assert isinstance(h["document_id"], str) and isinstance(h["text"], str) and isinstance(h["score"], float)
        assert h["title"] and h["path"].endswith(".html") and isinstance(h["heading_path"], list)
        assert h["char_end"] > h["char_start"] >= 0
        sn = h["snippet"]
        assert h["text"][sn["start"] : sn["end"]] == sn["text"]
        for a, b in sn["highlights"]:
            assert sn["text"][a:b].lower() in {"partial", "index", "where", "clause", "indexes", "with", "a"}
        assert set(h["scores"]) == {"fused", "keyword", "keyword_rank", "semantic", "semantic_rank"}
    assert all(res["hits"][i]["score"] >= res["hits"][i + 1]["score"] for i in range(len(res["hits"]) - 1))


@pytest.mark.parametrize(
    ("query", "page"),
    [
        ("how do I back up a database to a script file", "backup-dump.html"),
        ("pg_hba.conf", "auth-pg-hba-conf.html"),
        ("write-ahead logging", "wal-intro.html"),
        ("combining rows from two tables", "tutorial-join.html"),
    ],
)
async def test_each_mode_finds_the_answering_page(api: Client, corpus: IndexedCorpus, query: str, page: str) -> None:
    for mode in ("hybrid", "semantic", "keyword"):
        res = await search(api, query=query, mode=mode, k=5)
        assert page in pages(res, corpus), (mode, pages(res, corpus))
        for h in res["hits"]:
            s = h["scores"]
            if mode == "keyword":
                assert s["keyword"] is not None and s["semantic"] is None and h["score"] == s["keyword"]
            if mode == "semantic":
                assert s["semantic"] is not None and s["keyword"] is None and -1 <= h["score"] <= 1


async def test_filters_restrict_hits(api: Client, corpus: IndexedCorpus) -> None:
    docs = {d["id"]: d for d in (await api.get("/v1/documents?limit=100")).json()["items"]}
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"scopes": ["reference"]}, lambda d: d["scope"] == "reference"),
        ({"tags": ["backup", "wal"]}, lambda d: {"backup", "wal"} & set(d["tags"])),
        ({"document_ids": [corpus.documents["sql-vacuum.html"]]}, lambda d: d["filename"] == "sql-vacuum.html"),
        ({"mime_types": ["text/*"]}, lambda d: d["mime"].startswith("text/")),
        (
            {"path_prefix": "/usr/share/doc/postgresql-doc-15/html/indexes-"},
            lambda d: d["filename"].startswith("indexes-"),
        ),
        ({"modified_before": "1990-01-01"}, lambda d: False),
        ({"modified_after": "1990-01-01T00:00:00+00:00", "scopes": ["tutorial"]}, lambda d: d["scope"] == "tutorial"),
    ]
    for filters, ok in cases:
        for mode in ("hybrid", "keyword", "semantic"):
            res = await search(api, query="index table database", mode=mode, k=20, filters=filters)
            for h in res["hits"]:
                assert ok(docs[h["document_id"]]), (filters, mode, docs[h["document_id"]]["filename"])
            expect_some = filters.get("modified_before") is None
            assert bool(res["hits"]) == expect_some, (filters, mode)


async def test_cursor_pages_continue_the_ranking(api: Client) -> None:
    body = {"query": "index", "mode": "hybrid"}
    whole = await search(api, **body, k=6)
    first = await search(api, **body, k=3)
    assert first["next_cursor"]
    second = await search(api, **body, k=3, cursor=first["next_cursor"])
    assert [h["chunk_id"] for h in first["hits"] + second["hits"]] == [h["chunk_id"] for h in whole["hits"]]
    r = await api.post("/v1/search", json={"query": "vacuum", "k": 3, "cursor": first["next_cursor"]})
    assert r.status_code == 422 and "another query" in r.json()["message"]


async def test_results_are_cached_until_the_index_changes(private_api: tuple[Client, IndexedCorpus]) -> None:
    api, corpus = private_api
    body = {"query": "VACUUM reclaims storage", "mode": "hybrid", "k": 10}
    a = await search(api, **body)
    b = await search(api, **body)
    assert (a["cached"], b["cached"]) == (False, True) and a["hits"] == b["hits"]
    vacuum = corpus.documents["sql-vacuum.html"]
    assert vacuum in {h["document_id"] for h in b["hits"]}
    assert (await api.delete(f"/v1/documents/{vacuum}")).status_code in (200, 204)
    c = await search(api, **body)
    assert c["cached"] is False and c["generation"] > a["generation"]
    assert vacuum not in {h["document_id"] for h in c["hits"]}
    d = await search(api, **body, cache=False)
    assert d["cached"] is False and d["hits"] == c["hits"]


BAD: list[tuple[str, Any, set[int]]] = [
    ("empty", {"query": ""}, {422}),
    ("whitespace", {"query": "   \n\t"}, {422}),
    ("100 kB", {"query": "vacuum " * 15_000}, {422}),
    ("unbalanced quote", {"query": '"write ahead'}, {200}),
    ("operators", {"query": 'NEAR(index AND) OR NOT "x" col:y ^z * + -'}, {200}),
    ("only operators", {"query": "AND OR NOT ( ) * : ^"}, {200}),
    ("NUL bytes", {"query": "vac\x00uum\x00"}, {200}),
    ("emoji", {"query": "🐘🔍 elephant"}, {200}),
    ("only emoji", {"query": "🐘🔍"}, {200}),
    ("k=0", {"query": "index", "k": 0}, {422}),
    ("k=-1", {"query": "index", "k": -1}, {422}),
    ("k=10^6", {"query": "index", "k": 1_000_000}, {422}),
    ("k as text", {"query": "index", "k": "ten"}, {400, 422}),
    ("unknown filter key", {"query": "index", "filters": {"colour": ["red"]}}, {400, 422}),
    ("unknown field", {"query": "index", "limit": 5}, {400, 422}),
    ("bad mode", {"query": "index", "mode": "fuzzy"}, {400, 422}),
    ("empty scopes", {"query": "index", "filters": {"scopes": []}}, {422}),
    ("bad mime", {"query": "index", "filters": {"mime_types": ["pdf"]}}, {422}),
    ("bad date", {"query": "index", "filters": {"modified_after": "last tuesday"}}, {422}),
    ("inverted dates", {"query": "index", "filters": {"modified_after": 2e9, "modified_before": 1e9}}, {422}),
    ("NUL in filter", {"query": "index", "filters": {"tags": ["a\x00b"]}}, {422}),
    ("malformed cursor", {"query": "index", "cursor": "%%%"}, {422}),
    ("query not a string", {"query": 42}, {400, 422}),
    ("missing query", {"mode": "keyword"}, {400, 422}),
    ("recency out of range", {"query": "index", "recency_boost": 1e9}, {422}),
]


@pytest.mark.parametrize(("name", "body", "statuses"), BAD, ids=[b[0] for b in BAD])
async def test_bad_queries_never_500(api: Client, name: str, body: Any, statuses: set[int]) -> None:
    generation = None
    for mode in ("hybrid", "semantic", "keyword"):
        payload = {"mode": mode, **body} if isinstance(body, dict) else body
        r = await api.post("/v1/search", json=payload)
        assert r.status_code in statuses, (name, mode, r.status_code, r.text)
        data = r.json()
        if r.status_code == 200:
            assert isinstance(data["hits"], list)
            generation = data["generation"] if generation is None else generation
            assert data["generation"] == generation  # searching changed nothing
        else:
            assert set(data) == {"error", "message", "detail"} and data["message"]


async def test_not_json_is_refused(api: Client) -> None:
    r = await api.post(
        "/v1/search", content=b"query=index", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 415
    r = await api.post("/v1/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error"]


async def test_operators_are_searched_as_words(api: Client, corpus: IndexedCorpus) -> None:
    res = await search(api, query='"NOT NULL"', mode="keyword", k=5)
    assert "ddl-constraints.html" in pages(res, corpus)
    assert all("not null" in h["text"].lower() for h in res["hits"])


async def test_context_fits_the_budget_and_cites(api: Client, corpus: IndexedCorpus) -> None:
    tok = HFSpanTokenizer.from_file(tokenizer_path())
    for budget in (50, 300, 1500):
        r = await api.post(
            "/v1/context", json={"question": "How do I restore a dump made with pg_dump?", "token_budget": budget}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(tok.spans([body["context"]])[0]) <= budget
        assert body["tokens"] <= budget
        for c in body["citations"]:
            assert f"[{c['n']}] " in body["context"] and c["text"] in body["context"]
            assert c["document_id"] in corpus.documents.values() and c["char_end"] > c["char_start"]
        if budget >= 300:
            assert corpus.documents["backup-dump.html"] in {c["document_id"] for c in body["citations"]}
    for bad in (
        {"question": "x", "token_budget": 0},
        {"question": "x", "token_budget": 10**7},
        {"question": "", "token_budget": 100},
        {"question": "x", "filters": {"nope": 1}},
    ):
        r = await api.post("/v1/context", json=bad)
        assert r.status_code in (400, 422), (bad, r.text)


async def test_context_merges_adjacent_chunks(api: Client, corpus: IndexedCorpus) -> None:
    r = await api.post(
        "/v1/context",
        json={
            "question": "pg_dump restore psql pg_restore archive formats",
            "token_budget": 4000,
            "filters": {"document_ids": [corpus.documents["backup-dump.html"]]},
        },
    )
    body = r.json()
    multi = [c for c in body["citations"] if len(c["chunk_ids"]) > 1]
    assert multi, body["citations"]
    ids = [cid for c in body["citations"] for cid in c["chunk_ids"]]
    assert len(ids) == len(set(ids))


async def test_modified_filter_accepts_unix_seconds(api: Client) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    res = await search(api, query="index", mode="keyword", k=3, filters={"modified_after": now + 86400})
    assert res["hits"] == []
