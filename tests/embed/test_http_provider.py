"""The sidecar with ``embed_provider = "http"`` against a real OpenAI-compatible server.

The server (``tests/helpers/openai_embeddings.py``) runs in the test on loopback and embeds with
the project's real ONNX model, standing in for Ollama / TEI / OpenAI, which cannot run here.
Everything else is the real app: real SQLite index, ingest pipeline, search, status.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.embed.http_service import PROBE_TEXT
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.settings import Settings
from tests.helpers.openai_embeddings import EmbeddingsServer
from tests.ingest.harness import FAST, running_app, upload, wait_for

pytestmark = pytest.mark.anyio
Client = Any

API_KEY = "sk-test-5up3r-s3cr3t-k3y-0123456789"
SERVED = "minilm-server"
LOCAL_ID = "all-MiniLM-L6-v2-int8"
CAT = (
    "Our cat spends every afternoon on the windowsill, watching the sparrows in the garden and "
    "twitching her tail whenever one lands on the fence."
)
TAX = (
    "Small businesses must file the quarterly VAT return by the end of the month following the "
    "quarter; late filing costs a penalty of five percent."
)
KITTEN = "a kitten staring outside at birds"  # no word in common with CAT


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def provider(onnx_embedder: OnnxEmbedder) -> Iterator[EmbeddingsServer]:
    server = EmbeddingsServer({SERVED: onnx_embedder.embed}, api_key=API_KEY).start()
    try:
        yield server
    finally:
        server.stop()


def http_settings(data_dir: Path, url: str, **overrides: Any) -> Settings:
    values = {
        "data_dir": data_dir,
        **FAST,
        "embed_provider": "http",
        "embed_http_model": SERVED,
        "embed_http_model_id": "remote-minilm",
        "embed_http_dim": 384,
        "embed_http_attempts": 2,
        "embed_http_cooldown_s": 1.0,
        **overrides,
    }
    env = {
        "DOCSIDECAR_EMBED_HTTP_API_KEY": API_KEY,
        "DOCSIDECAR_EMBED_HTTP_BASE_URL": url + "/v1",  # as OpenAI SDKs take it; the sidecar drops the /v1
    }
    return Settings.load(env, values)


async def status(c: Client) -> dict[str, Any]:
    r = await c.get("/v1/status")
    assert r.status_code == 200, r.text
    assert API_KEY not in r.text
    return r.json()  # type: ignore[no-any-return]


async def search(c: Client, query: str, mode: str, k: int = 3) -> Any:
    return await c.post("/v1/search", json={"query": query, "mode": mode, "k": k})


async def add(c: Client, services: Any, name: str, text: str) -> str:
    r = await upload(c, name, text.encode())
    assert r.status_code == 202, r.text
    doc_id = str(r.json()["document"]["id"])

    async def indexed() -> bool:  # (an embed_missing job may stay queued: the provider is down)
        with services.store.read() as conn:
            row = conn.execute(
                "SELECT count(*) FROM jobs WHERE kind = 'ingest' AND state IN ('queued', 'running')"
            ).fetchone()
        return int(row[0]) == 0 and services.ingest.worker.current_job is None

    await wait_for(indexed, 90, f"ingest of {name}")
    return doc_id


def vectors_by_model(services: Any) -> dict[str, int]:
    with services.store.read() as conn:
        return {str(m): int(n) for m, n in conn.execute("SELECT model_id, count(*) FROM embeddings GROUP BY model_id")}


async def embedding_state(c: Client, want: str, timeout: float = 60.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal seen
        seen = (await status(c))["embedding"]
        return seen["state"] == want

    await wait_for(reached, timeout, f"embedding state {want}")
    return seen


async def test_http_provider_indexes_and_semantic_search_finds_by_meaning(
    tmp_path: Path, provider: EmbeddingsServer
) -> None:
    settings = http_settings(tmp_path / "data", provider.url)
    async with running_app(settings) as (c, services):
        assert services.embedding.wait_ready(60), services.embedding.summary()
        cat = await add(c, services, "cat.txt", CAT)
        await add(c, services, "tax.txt", TAX)
        res = await search(c, KITTEN, "semantic")
        assert res.status_code == 200, res.text
        assert res.json()["hits"][0]["document_id"] == cat
        assert (await search(c, KITTEN, "keyword")).json()["hits"] == []  # found by meaning only
        assert set(vectors_by_model(services)) == {"remote-minilm"}
        emb = (await status(c))["embedding"]
        assert emb | {"retry_after_s": None} == {
            "provider": "http", "model_id": "remote-minilm", "dim": 384, "state": "ready", "reason": None,
            "error": None, "base_url": provider.url, "model": SERVED, "circuit": "closed", "retry_after_s": None,
        }  # fmt: skip
        docs = (await c.get("/v1/documents")).json()
        assert API_KEY not in json.dumps(docs)
    seen = provider.seen()
    assert seen and all(r.authorization == f"Bearer {API_KEY}" and r.model == SERVED for r in seen)
    assert all(r.path == "/v1/embeddings" for r in seen)


async def test_provider_down_degrades_to_keyword_and_recovers(tmp_path: Path, provider: EmbeddingsServer) -> None:
    settings = http_settings(tmp_path / "data", provider.url)
    async with running_app(settings) as (c, services):
        assert services.embedding.wait_ready(60)
        cat = await add(c, services, "cat.txt", CAT)
        provider.stop()

        res = await search(c, "windowsill sparrows", "hybrid")  # the first call notices the outage
        body = res.json()
        assert res.status_code == 200 and body["retrievers"] == ["keyword"], body
        assert body["hits"][0]["document_id"] == cat
        assert any("semantic retrieval unavailable" in w for w in body["warnings"])
        emb = await embedding_state(c, "unavailable")
        assert emb["error"]["error"] in {"embedding_provider_unavailable", "embedding_circuit_open"}
        assert provider.url in emb["reason"]
        assert (await status(c))["components"]["embedding"]["state"] == "degraded"
        res = await search(c, KITTEN, "semantic")
        assert res.status_code == 503 and res.json()["error"].startswith("embedding_")

        async def circuit_open() -> bool:
            return (await status(c))["embedding"]["circuit"] == "open"

        await wait_for(circuit_open, 60, "the circuit breaker to open")  # the probes keep failing

        # a document added meanwhile is searchable by keyword at once ...
        tax = await add(c, services, "tax.txt", TAX)
        res = await search(c, "quarterly VAT return", "hybrid")
        assert res.json()["hits"][0]["document_id"] == tax
        assert vectors_by_model(services) == {"remote-minilm": 1}

        provider.start()  # ... and gets its vector once the provider is back
        emb = await embedding_state(c, "ready")
        assert emb["circuit"] == "closed" and emb["reason"] is None

        async def backfilled() -> bool:
            return vectors_by_model(services).get("remote-minilm") == 2

        await wait_for(backfilled, 60, "the vectors of the document added during the outage")
        res = await search(c, "deadline for the sales tax declaration", "semantic")
        assert res.status_code == 200 and res.json()["hits"][0]["document_id"] == tax
        res = await search(c, KITTEN, "hybrid")
        assert res.json()["retrievers"] == ["keyword", "semantic"] and res.json()["hits"][0]["document_id"] == cat
    assert not [t.name for t in threading.enumerate() if t.name.startswith("embed-http:")]  # stop() joined it


async def local_index(data_dir: Path) -> str:
    """A database indexed with the local ONNX model (the default provider); the cat's id."""
    async with running_app(Settings.load({}, {"data_dir": data_dir, **FAST})) as (c, services):
        assert services.embedding.wait_ready(60)
        cat = await add(c, services, "cat.txt", CAT)
        assert vectors_by_model(services) == {LOCAL_ID: 1}
    return cat


@pytest.mark.parametrize(
    ("model_id", "dim", "says"),
    [("remote-other", 384, "vectors of all-MiniLM-L6-v2-int8 (384-d)"), (LOCAL_ID, 768, "384-d vectors of model")],
    ids=["other-model-id", "other-dim"],
)
async def test_index_of_another_model_refuses_the_provider(
    tmp_path: Path, provider: EmbeddingsServer, model_id: str, dim: int, says: str
) -> None:
    cat = await local_index(tmp_path / "data")
    settings = http_settings(tmp_path / "data", provider.url, embed_http_model_id=model_id, embed_http_dim=dim)
    async with running_app(settings) as (c, services):
        emb = await embedding_state(c, "failed")
        assert emb["provider"] == "http" and emb["model_id"] == model_id
        assert emb["error"]["error"] == "embedding_provider_incompatible" and says in emb["reason"]
        st = await status(c)
        assert st["components"]["models"]["state"] == "degraded"
        assert st["components"]["embedding"]["state"] == "failed"

        res = await search(c, "windowsill sparrows", "keyword")
        assert res.status_code == 200 and res.json()["hits"][0]["document_id"] == cat
        res = await search(c, "windowsill sparrows", "hybrid")
        assert res.json()["retrievers"] == ["keyword"] and says in " ".join(res.json()["warnings"])
        res = await search(c, KITTEN, "semantic")
        assert res.status_code == 503 and res.json()["error"] == "embedding_provider_incompatible"

        tax = await add(c, services, "tax.txt", TAX)  # indexed for keyword search, no vector written
        assert (await search(c, "quarterly VAT return", "keyword")).json()["hits"][0]["document_id"] == tax
        assert vectors_by_model(services) == {LOCAL_ID: 1}
        with services.store.read() as conn:
            assert [(r[0], r[1]) for r in conn.execute("SELECT model_id, dim FROM vector_indexes")] == [(LOCAL_ID, 384)]
    assert all(r.inputs == [PROBE_TEXT] for r in provider.seen())  # at most the start-up probe


async def test_provider_with_the_index_model_id_serves_the_existing_index(
    tmp_path: Path, onnx_embedder: OnnxEmbedder
) -> None:
    """The rule: same model id and dim = same vectors. A server running exactly the local model
    under its id answers queries against the index the local model built, without re-embedding."""
    cat = await local_index(tmp_path / "data")
    server = EmbeddingsServer({SERVED: onnx_embedder.embed}, api_key=API_KEY).start()
    try:
        settings = http_settings(tmp_path / "data", server.url, embed_http_model_id=LOCAL_ID)
        async with running_app(settings) as (c, services):
            assert services.embedding.wait_ready(60)
            res = await search(c, KITTEN, "semantic")
            assert res.status_code == 200 and res.json()["hits"][0]["document_id"] == cat
            await add(c, services, "tax.txt", TAX)
            assert vectors_by_model(services) == {LOCAL_ID: 2}
    finally:
        server.stop()


async def test_a_server_answering_another_dimension_is_refused_then_fixed(
    tmp_path: Path, provider: EmbeddingsServer
) -> None:
    """A wrong embed_http_dim on an empty index: the first answer shows it, the provider is
    refused (nothing written); restarted with the right dim the same model id is used."""
    data = tmp_path / "data"
    async with running_app(http_settings(data, provider.url, embed_http_dim=256)) as (c, services):
        emb = await embedding_state(c, "failed")
        assert emb["error"]["error"] == "embedding_provider_incompatible"
        assert "answers 384-d vectors" in emb["reason"] and "DOCSIDECAR_EMBED_HTTP_DIM is 256" in emb["reason"]
        cat = await add(c, services, "cat.txt", CAT)
        assert (await search(c, "windowsill sparrows", "keyword")).json()["hits"][0]["document_id"] == cat
        assert vectors_by_model(services) == {}
    async with running_app(http_settings(data, provider.url)) as (c, services):
        assert services.embedding.wait_ready(60), services.embedding.summary()

        async def backfilled() -> bool:
            return vectors_by_model(services) == {"remote-minilm": 1}

        await wait_for(backfilled, 60, "the vectors of the document indexed while refused")
        res = await search(c, KITTEN, "semantic")
        assert res.status_code == 200 and res.json()["hits"][0]["document_id"] == cat


async def test_wrong_api_key_is_unavailable_with_the_servers_reason(tmp_path: Path, provider: EmbeddingsServer) -> None:
    settings = dataclasses.replace(http_settings(tmp_path / "data", provider.url), embed_http_api_key="sk-wrong")
    async with running_app(settings) as (c, _services):
        emb = await embedding_state(c, "unavailable")
        assert emb["error"]["error"] == "embedding_provider_rejected"
        assert "Incorrect API key provided" in emb["reason"] and "sk-wrong" not in json.dumps(await status(c))
