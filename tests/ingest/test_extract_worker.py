"""The extraction child process: a file that hangs is killed at the time limit, one that crashes
the child is reported, and the next file is extracted by a fresh child; through the pipeline
both end as explained failures while the queue goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.ingest.extract import ExtractionWorker
from backend.ingest.limits import ExtractLimits
from backend.services import Services
from tests.ingest.harness import make_settings, running_app, upload, wait_idle
from tests.ingest.pathological import extract_or_misbehave


def test_timeout_and_crash_are_results_and_the_worker_recovers(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("ordinary text")
    (tmp_path / "hang.txt").write_text("x")
    (tmp_path / "crash.txt").write_text("x")
    worker = ExtractionWorker(ExtractLimits(timeout_seconds=1.0), extractor=extract_or_misbehave)
    worker.start()
    try:
        first = worker.pid
        assert worker.extract(good).text == "ordinary text"
        hung = worker.extract(tmp_path / "hang.txt")
        assert (hung.status, hung.reason) == ("failed", "extraction timed out after 1 s")
        assert worker.extract(good).status == "ok" and worker.pid != first
        crashed = worker.extract(tmp_path / "crash.txt")
        assert crashed.status == "failed" and crashed.reason and "crashed" in crashed.reason
        assert crashed.reason.endswith("(exit code -11)")
        assert worker.extract(good).status == "ok"
    finally:
        worker.stop()
    assert worker.pid is None


@pytest.mark.anyio
async def test_pathological_files_fail_with_reasons_and_the_queue_goes_on(tmp_path: Path) -> None:
    def patch(services: Services) -> None:
        misbehaving = ExtractionWorker(ExtractLimits(timeout_seconds=1.0), extractor=extract_or_misbehave)
        services.ingest.pipeline.extractor = misbehaving
        services.ingest.extractor = misbehaving

    async with running_app(make_settings(tmp_path / "data"), patch) as (client, services):
        hang = (await upload(client, "hang.txt", b"never finishes")).json()["document"]["id"]
        crash = (await upload(client, "crash.txt", b"kills the child")).json()["document"]["id"]
        good = (await upload(client, "good.txt", b"fine")).json()["document"]["id"]
        await wait_idle(services)
        docs = {d: (await client.get(f"/v1/documents/{d}")).json() for d in (hang, crash, good)}
        assert (docs[hang]["status"], docs[hang]["status_reason"]) == ("failed", "extraction timed out after 1 s")
        assert docs[crash]["status"] == "failed" and "crashed" in docs[crash]["status_reason"]
        assert docs[good]["status"] == "embedded"
