"""Jobs API and the worker: list/get/cancel, pause/resume across restarts, retries with backoff,
a failing document recording its error while the rest of the queue goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.services import Services
from tests.helpers.index_check import index_problems, open_db
from tests.ingest.harness import FlakyExtractor, make_settings, running_app, upload, wait_for, wait_idle, wait_job

pytestmark = pytest.mark.anyio


async def test_jobs_list_get_filter_and_page(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        ids = [(await upload(client, f"{i}.txt", f"text number {i}".encode())).json()["job_id"] for i in range(5)]
        await wait_idle(services)
        page1 = (await client.get("/v1/jobs", params={"limit": 2})).json()
        page2 = (await client.get("/v1/jobs", params={"limit": 2, "before": page1["next_before"]})).json()
        page3 = (await client.get("/v1/jobs", params={"limit": 2, "before": page2["next_before"]})).json()
        listed = [j["id"] for p in (page1, page2, page3) for j in p["items"]]
        assert listed == sorted(ids, reverse=True) and page3["next_before"] is None
        done = (await client.get("/v1/jobs", params={"state": "done", "kind": "ingest"})).json()["items"]
        assert len(done) == 5 and all(j["progress"]["done"] == j["progress"]["total"] > 0 for j in done)
        one = (await client.get(f"/v1/jobs/{ids[0]}")).json()
        assert one["state"] == "done" and one["started_at"] <= one["finished_at"]
        by_doc = (await client.get("/v1/jobs", params={"document_id": one["document_id"]})).json()["items"]
        assert [j["id"] for j in by_doc] == [ids[0]]
        assert (await client.get("/v1/jobs/999999")).status_code == 404
        assert (await client.get("/v1/jobs", params={"state": "bogus"})).status_code == 422
        assert (await client.post(f"/v1/jobs/{ids[0]}/cancel")).status_code == 409
        assert (await client.post("/v1/jobs/999999/cancel")).status_code == 404


async def test_pause_is_persisted_across_restarts_and_resume_drains_the_queue(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    async with running_app(settings) as (client, _):
        paused = (await client.post("/v1/ingest/pause")).json()
        assert paused["paused"] is True
        job_id = (await upload(client, "later.txt", b"index me after the resume")).json()["job_id"]
    async with running_app(settings) as (client, _services):
        state = (await client.get("/v1/ingest")).json()
        assert state["paused"] is True and state["queued"] == 1
        assert (await client.get(f"/v1/jobs/{job_id}")).json()["state"] == "queued"
        resumed = (await client.post("/v1/ingest/resume")).json()
        assert resumed["paused"] is False
        assert (await wait_job(client, job_id))["state"] == "done"
    async with running_app(settings) as (client, _):
        assert (await client.get("/v1/ingest")).json()["paused"] is False


async def test_cancel_a_queued_job(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data")) as (client, _services):
        await client.post("/v1/ingest/pause")
        r = (await upload(client, "c.txt", b"cancel me before I run")).json()
        cancelled = await client.post(f"/v1/jobs/{r['job_id']}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
        doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
        assert doc["status"] == "failed" and "cancelled" in doc["status_reason"]
        await client.post("/v1/ingest/resume")
        redo = await client.post(f"/v1/documents/{r['document']['id']}/reindex")
        assert redo.status_code == 202
        assert (await wait_job(client, redo.json()["job_id"]))["state"] == "done"
        assert (await client.get(f"/v1/documents/{r['document']['id']}")).json()["status"] == "embedded"


async def test_cancel_a_running_job_commits_nothing(tmp_path: Path) -> None:
    big = "\n\n".join(f"Section {i}. " + "The quick brown fox jumps over the lazy dog again. " * 30 for i in range(80))
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        r = (await upload(client, "big.txt", big.encode())).json()

        async def running() -> bool:
            return (await client.get(f"/v1/jobs/{r['job_id']}")).json()["state"] == "running"

        # ~130 chunks: several embedding batches, and cancellation is checked after each one
        await wait_for(running, 60, "the job to start")
        assert (await client.post(f"/v1/jobs/{r['job_id']}/cancel")).status_code == 202
        job = await wait_job(client, r["job_id"])
        assert job["state"] == "cancelled"
        doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
        assert doc["status"] == "failed" and "cancelled" in doc["status_reason"] and doc["chunk_count"] == 0
        with services.store.read() as conn:
            assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
            assert index_problems(conn) == []


async def test_stopping_during_a_job_requeues_it_without_failing_anything(tmp_path: Path) -> None:
    big = "\n\n".join(
        f"Part {i}. " + "Every tuple version carries its creating transaction id. " * 30 for i in range(30)
    )
    settings = make_settings(tmp_path / "data")
    async with running_app(settings) as (client, _):
        r = (await upload(client, "big.txt", big.encode())).json()

        async def running() -> bool:
            return (await client.get(f"/v1/jobs/{r['job_id']}")).json()["state"] == "running"

        await wait_for(running, 60, "the job to start")
    # the app (and its worker) stopped while the job ran: it is queued again, nothing failed
    conn = open_db(settings.data_dir)
    state, attempts = conn.execute("SELECT state, attempts FROM jobs WHERE id = ?", (r["job_id"],)).fetchone()
    status = conn.execute("SELECT status FROM documents WHERE id = ?", (r["document"]["id"],)).fetchone()[0]
    conn.close()
    assert (state, attempts, status) == ("queued", 0, "queued")
    async with running_app(settings) as (client, services):
        job = await wait_job(client, r["job_id"])
        assert job["state"] == "done" and job["attempts"] == 0
        doc = (await client.get(f"/v1/documents/{r['document']['id']}")).json()
        assert doc["status"] == "embedded"
        events, _ = services.events.since(0)
        assert not [e for e in events if e.type in {"job.cancelled", "job.failed", "document.failed"}]


def _flaky(marker: str, failures: int) -> tuple[list[FlakyExtractor], object]:
    holder: list[FlakyExtractor] = []

    def patch(services: Services) -> None:
        flaky = FlakyExtractor(services.ingest.pipeline.extractor, marker, failures)
        services.ingest.pipeline.extractor = flaky
        services.ingest.extractor = flaky
        holder.append(flaky)

    return holder, patch


async def test_transient_failures_are_retried_with_backoff(tmp_path: Path) -> None:
    holder, patch = _flaky("locked", failures=2)
    settings = make_settings(tmp_path / "data", ingest_retry_base_s=0.3)
    async with running_app(settings, patch) as (client, services):  # type: ignore[arg-type]
        locked = (await upload(client, "locked.txt", b"a file another program holds open")).json()
        other = (await upload(client, "other.txt", b"a file nobody holds")).json()
        job = await wait_job(client, locked["job_id"])
        assert job["state"] == "done" and job["attempts"] == 2 and job["error"] is None
        assert (await client.get(f"/v1/documents/{locked['document']['id']}")).json()["status"] == "embedded"
        tries = [t for name, t in holder[0].calls if name == "locked.txt"]
        assert len(tries) == 3
        # backoff doubles: base, then 2 x base (lower bounds; the machine may be slower)
        assert tries[1] - tries[0] >= 0.3 and tries[2] - tries[1] >= 0.6
        # the other file did not wait for the locked one
        other_job = await wait_job(client, other["job_id"])
        assert other_job["finished_at"] < job["finished_at"]
        events, _ = services.events.since(0)
        retries = [e.data for e in events if e.type == "job.retrying"]
        assert len(retries) == 2 and all("locked by another process" in e["error"] for e in retries)


async def test_a_failing_document_records_its_error_and_the_queue_goes_on(tmp_path: Path) -> None:
    _holder, patch = _flaky("locked", failures=1000)
    async with running_app(make_settings(tmp_path / "data"), patch) as (client, _services):  # type: ignore[arg-type]
        bad = (await upload(client, "locked.txt", b"never readable")).json()
        goods = [(await upload(client, f"g{i}.txt", f"good file {i}".encode())).json() for i in range(3)]
        job = await wait_job(client, bad["job_id"])
        assert job["state"] == "failed" and job["attempts"] == 5
        assert "locked by another process" in job["error"] and "gave up after 5 attempts" in job["error"]
        doc = (await client.get(f"/v1/documents/{bad['document']['id']}")).json()
        assert doc["status"] == "failed" and "locked by another process" in doc["status_reason"]
        for g in goods:
            assert (await wait_job(client, g["job_id"]))["state"] == "done"
        cov = (await client.get("/v1/coverage")).json()["scopes"][0]
        assert (cov["indexed"], cov["failed"], cov["total"]) == (3, 1, 4)
        assert cov["summary"] == "3/4 indexed, 1 failed: cannot open file (1)"
