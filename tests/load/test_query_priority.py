"""Ingest cannot starve search: the real services, the real model, a batch held inside it.

The ingest worker's model run is held inside the real onnxruntime session (tests/helpers/
held_session.py) while a search runs through the HTTP API. The search must complete while the
bulk batch is still in the model — which proves that the search path (SearchService →
``embed_query``) and the ingest path (IngestPipeline → ``embed``) use the two lanes of the
same embedder's gate, and that the query lane does not wait for the bulk lane. If either path
took the other lane, or the services built separate embedders per path, the search would wait
for the held batch and the liveness timeout below would fail the test (no timing threshold:
the correct wiring answers immediately).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tests.helpers.held_session import LIVENESS_S, HeldSession
from tests.ingest.harness import make_settings, running_app, upload, wait_for, wait_idle

pytestmark = pytest.mark.anyio

SEED = b"# Vacuum\n\nVACUUM reclaims storage occupied by dead tuples in PostgreSQL tables.\n"
BULK = "\n\n".join(
    f"## Section {i}\n\nWrite-ahead logging section {i}: each change is written to the log before the data file."
    for i in range(30)
).encode()


async def test_search_completes_while_an_ingest_batch_is_inside_the_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", chunk_tokens=40, chunk_overlap_tokens=0)
    async with running_app(settings) as (client, services):
        r = await upload(client, "vacuum.md", SEED)
        assert r.status_code == 202
        await wait_idle(services)  # a vector index with one document exists
        embedder = services.embedding.embedder
        worker_thread = services.ingest.worker.thread_name
        held = HeldSession(embedder._session, lambda: threading.current_thread().name == worker_thread)
        embedder._session = held
        try:
            r = await upload(client, "wal.md", BULK)
            assert r.status_code == 202
            bulk_doc = r.json()["document"]["id"]
            assert await asyncio.to_thread(held.entered.wait, LIVENESS_S), "the ingest never reached the model"
            for mode in ("semantic", "hybrid"):
                body = {"query": f"reclaim space of dead rows ({mode})", "mode": mode, "k": 3, "cache": False}
                found = await asyncio.wait_for(client.post("/v1/search", json=body), LIVENESS_S)
                assert found.status_code == 200, found.text
                reply = found.json()
                assert "semantic" in reply["retrievers"] and reply["warnings"] == []
                assert reply["hits"][0]["filename"] == "vacuum.md"
            # the bulk batch is still held inside the model run, its document not yet indexed
            assert held.inside == 1 and embedder.gate.bulk_busy
            doc = (await client.get(f"/v1/documents/{bulk_doc}")).json()
            assert doc["status"] != "embedded"
        finally:
            held.release()
        await wait_idle(services)

        async def indexed() -> bool:
            return (await client.get(f"/v1/documents/{bulk_doc}")).json()["status"] == "embedded"

        await wait_for(indexed, 60, "the bulk document to be indexed")
        assert (await client.get(f"/v1/documents/{bulk_doc}")).json()["chunk_count"] > 5
