"""GET /v1/metrics after real work through the real app: ingest a generated document, run a
search, a job that fails, a sync run with nothing configured, a paused and a backed-off
queue — each metric moves with the right labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.services import Services
from tests.helpers.prom import Scrape
from tests.ingest.harness import FlakyExtractor, make_settings, running_app, upload, wait_for, wait_idle, wait_job

pytestmark = pytest.mark.anyio

MODEL = "all-MiniLM-L6-v2-int8"


async def _scrape(client) -> Scrape:  # type: ignore[no-untyped-def]
    r = await client.get("/v1/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return Scrape(r.text)


def _document(paragraphs: int) -> bytes:
    return "\n\n".join(
        f"Section {i}. The lighthouse keeper logs the tide at dawn and the ships at dusk, number {i}."
        for i in range(paragraphs)
    ).encode()


def _flaky(marker: str, failures: int):  # type: ignore[no-untyped-def]
    def patch(services: Services) -> None:
        flaky = FlakyExtractor(services.ingest.pipeline.extractor, marker, failures)
        services.ingest.pipeline.extractor = flaky
        services.ingest.extractor = flaky

    return patch


async def test_ingest_search_and_an_unconfigured_sync_run_show_in_the_metrics(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        assert services.embedding.wait_ready(60)
        r = (await upload(client, "tides.txt", _document(40))).json()
        assert (await wait_job(client, r["job_id"]))["state"] == "done"
        chunks = (await client.get(f"/v1/documents/{r['document']['id']}")).json()["chunk_count"]
        assert chunks > 1
        assert (await client.post("/v1/search", json={"query": "when does the keeper log the tide"})).status_code == 200
        refused = await client.post("/v1/sync/run")
        assert refused.status_code == 409 and refused.json()["error"] == "sync_not_configured"

        m = await _scrape(client)
        # embedding: every chunk went through the bulk lane, the query through the query lane
        assert m.value("docsidecar_embed_texts_total", model=MODEL, lane="bulk") == chunks
        assert m.value("docsidecar_embed_texts_total", model=MODEL, lane="query") == 1
        assert (m.value("docsidecar_embed_tokens_total", model=MODEL, lane="bulk") or 0) > chunks
        assert (m.value("docsidecar_embed_batch_duration_seconds_count", model=MODEL, lane="bulk") or 0) >= 1
        assert m.value("docsidecar_embed_batch_duration_seconds_count", model=MODEL, lane="query") == 1
        # the job and the (now empty) queue
        assert m.value("docsidecar_job_outcomes_total", kind="ingest", outcome="done") == 1
        assert m.value("docsidecar_jobs", kind="ingest", state="queued") == 0
        assert m.value("docsidecar_jobs", kind="ingest", state="running") == 0
        assert m.value("docsidecar_ingest_paused") == 0
        assert m.value("docsidecar_ingest_queue_limit") == services.settings.max_queued_jobs
        # sync: not configured, so no lag or counts, and the refused run is counted
        assert m.value("docsidecar_sync_enabled") == 0
        assert m.value("docsidecar_sync_runs_total", outcome="not_configured") == 1
        assert m.value("docsidecar_sync_runs_total", outcome="ok") == 0
        assert not m.has("docsidecar_sync_last_success_age_seconds") and not m.has("docsidecar_sync_pending_documents")
        # the store: writes went through the writer, nobody else held the lock
        assert (m.value("docsidecar_store_write_queue_seconds_count") or 0) > 0
        assert m.value("docsidecar_sqlite_busy_total", connection="writer") == 0


async def test_a_job_that_keeps_failing_is_counted_as_retried_then_failed(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data"), _flaky("locked", 1000)) as (client, _services):
        bad = (await upload(client, "locked.txt", b"never readable")).json()
        good = (await upload(client, "fine.txt", b"a file nobody holds")).json()
        assert (await wait_job(client, bad["job_id"]))["state"] == "failed"
        assert (await wait_job(client, good["job_id"]))["state"] == "done"
        m = await _scrape(client)
        assert m.value("docsidecar_job_outcomes_total", kind="ingest", outcome="retried") == 4
        assert m.value("docsidecar_job_outcomes_total", kind="ingest", outcome="failed") == 1
        assert m.value("docsidecar_job_outcomes_total", kind="ingest", outcome="done") == 1
        assert m.value("docsidecar_jobs", kind="ingest", state="queued") == 0


async def test_queue_depth_says_why_queued_jobs_wait(tmp_path: Path) -> None:
    # retry delays of 5 minutes: a failed attempt leaves its job waiting in backoff
    settings = make_settings(tmp_path / "data", ingest_retry_base_s=600.0)
    async with running_app(settings, _flaky("locked", 1000)) as (client, services):
        assert services.embedding.wait_ready(60)
        await client.post("/v1/ingest/pause")
        for i in range(2):
            await upload(client, f"later{i}.txt", f"indexed after the resume {i}".encode())
        m = await _scrape(client)
        assert m.value("docsidecar_ingest_paused") == 1
        assert m.value("docsidecar_jobs", kind="ingest", state="queued") == 2
        assert m.value("docsidecar_jobs_waiting", kind="ingest", reason="paused") == 2
        assert m.value("docsidecar_jobs_waiting", kind="ingest", reason="backoff") == 0

        await client.post("/v1/ingest/resume")
        await wait_idle(services)
        await upload(client, "locked.txt", b"another program holds this file")

        async def backed_off() -> bool:
            return (await _scrape(client)).value("docsidecar_job_outcomes_total", kind="ingest", outcome="retried") == 1

        await wait_for(backed_off, 60, "the first failed attempt")
        m = await _scrape(client)
        assert m.value("docsidecar_ingest_paused") == 0
        assert m.value("docsidecar_jobs", kind="ingest", state="queued") == 1
        assert m.value("docsidecar_jobs_waiting", kind="ingest", reason="backoff") == 1
        assert m.value("docsidecar_jobs_waiting", kind="ingest", reason="paused") == 0
        assert m.value("docsidecar_job_outcomes_total", kind="ingest", outcome="done") == 2
