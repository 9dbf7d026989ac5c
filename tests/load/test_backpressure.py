"""Backpressure is explicit: at ``max_queued_jobs`` every way a user queues work answers 429
with ``Retry-After`` and changes nothing; a watched folder larger than the queue is admitted
in slices as the queue drains (the rest waits on disk), never past the limit.

A small limit (3, 10) and a paused queue make every count exact; no timing is asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.services import Services
from tests.ingest.harness import make_settings, running_app, upload, wait_for, wait_idle

pytestmark = pytest.mark.anyio


def stored_blobs(services: Services) -> set[str]:
    return {p.name for p in (services.settings.data_dir / "blobs").glob("??/*")}


def document_count(services: Services) -> int:
    with services.store.read() as conn:
        return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])


def max_queue_length(services: Services, kind: str | None = None) -> int:
    """The longest the queue ever was, from the jobs' own timestamps: each job was queued from
    ``created_at`` until ``started_at`` (or is still queued)."""
    where = "WHERE kind = ?" if kind else ""
    with services.store.read() as conn:
        rows = conn.execute(f"SELECT created_at, started_at FROM jobs {where}", (kind,) if kind else ()).fetchall()
    marks = [(float(c), 1) for c, _ in rows] + [(float(s), -1) for _, s in rows if s is not None]
    depth = peak = 0
    for _, step in sorted(marks, key=lambda m: (m[0], m[1])):  # a claim before an enqueue at the same instant
        depth += step
        peak = max(peak, depth)
    return peak


def assert_429(r: Any, queued: int, limit: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "5"
    body = r.json()
    assert body["error"] == "too_many_requests" and "retry later" in body["message"]
    assert body["detail"] == {"queued": queued, "limit": limit}


async def test_uploads_paths_and_reindex_get_429_at_the_limit_and_change_nothing(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path / "data", max_queued_jobs=3)) as (client, services):
        first = (await upload(client, "indexed.md", b"# Indexed\n\nAlready in the index.\n")).json()
        await wait_idle(services)
        assert (await client.post("/v1/ingest/pause")).status_code == 200
        for i in range(3):
            r = await upload(client, f"q{i}.txt", f"queued document number {i}".encode())
            assert r.status_code == 202, r.text
        docs, blobs = document_count(services), stored_blobs(services)

        assert_429(await upload(client, "over.txt", b"one more than the queue holds"), 3, 3)
        local = tmp_path / "local.txt"
        local.write_text("a local file indexed in place")
        assert_429(await client.post("/v1/documents", json={"path": str(local)}), 3, 3)
        assert_429(await client.post(f"/v1/documents/{first['document']['id']}/reindex"), 3, 3)
        # nothing was added: no document, no stored copy, no partial upload, no job
        assert document_count(services) == docs and stored_blobs(services) == blobs
        assert not list((services.settings.data_dir / "blobs" / "tmp").iterdir())
        state = (await client.get("/v1/ingest")).json()
        assert state["queued"] == 3 and state["limit"] == 3
        # bad input is still a 4xx about the input, not a 429
        assert (await client.post("/v1/documents", json={"path": "relative.txt"})).status_code == 422
        assert (await client.post("/v1/documents/no-such-id/reindex")).status_code == 404
        assert (await upload(client, "empty.txt", b"")).status_code == 422

        # the queue drains → accepted again
        await client.post("/v1/ingest/resume")
        await wait_idle(services)
        assert (await upload(client, "over.txt", b"one more than the queue holds")).status_code == 202
        assert (await client.post("/v1/documents", json={"path": str(local)})).status_code == 202
        await wait_idle(services)
        assert max_queue_length(services) == 3


async def test_a_folder_larger_than_the_queue_is_admitted_in_slices(tmp_path: Path) -> None:
    root = (tmp_path / "big").resolve()
    root.mkdir()
    for i in range(30):
        (root / f"note{i:02d}.txt").write_text(f"note {i}: the folder holds more files than the queue")
    settings = make_settings(tmp_path / "data", max_queued_jobs=10)  # folders may fill 9 of 10
    async with running_app(settings) as (client, services):
        await client.post("/v1/ingest/pause")
        folder = (await client.post("/v1/folders", json={"path": str(root)})).json()

        async def first_slice() -> bool:
            items = (await client.get("/v1/folders")).json()["items"]
            return items[0]["deferred"] == 21

        await wait_for(first_slice, 30, "the first slice of the folder")
        assert (await client.get("/v1/ingest")).json()["queued"] == 9
        assert document_count(services) == 9  # the other 21 files are not registered yet
        status = (await client.get("/v1/status")).json()["components"]["watcher"]
        assert status["detail"]["deferred"] == 21
        # the reserve keeps the user's own uploads working while the folder waits
        assert (await upload(client, "mine.txt", b"uploaded while the folder waits")).status_code == 202
        assert_429(await upload(client, "more.txt", b"but the queue is now full"), 10, 10)

        await client.post("/v1/ingest/resume")

        async def all_indexed() -> bool:
            page = (await client.get("/v1/documents", params={"folder_id": folder["id"], "limit": 100})).json()
            items = (await client.get("/v1/folders")).json()["items"]
            return (
                len(page["items"]) == 30
                and all(d["status"] == "embedded" for d in page["items"])
                and (items[0]["deferred"] == 0)
            )

        await wait_for(all_indexed, 240, "every file of the folder indexed")
        await wait_idle(services)
        assert max_queue_length(services) <= 10
        assert max_queue_length(services, "ingest") <= 10
        with services.store.read() as conn:
            paths = [r[0] for r in conn.execute("SELECT path FROM documents WHERE folder_id = ?", (folder["id"],))]
        assert sorted(paths) == sorted(str(p) for p in root.iterdir())  # each file exactly once


async def test_an_event_burst_over_the_pending_cap_becomes_a_full_reconcile(tmp_path: Path) -> None:
    root = (tmp_path / "burst").resolve()
    root.mkdir()
    async with running_app(make_settings(tmp_path / "data")) as (client, services):
        await client.post("/v1/ingest/pause")
        folder = (await client.post("/v1/folders", json={"path": str(root)})).json()

        async def watching() -> bool:
            item = (await client.get("/v1/folders")).json()["items"][0]
            return item["mode"] == "watching" and item["scanned_at"] is not None

        await wait_for(watching, 30, "the folder to be watched and scanned")
        scanned_at = (await client.get("/v1/folders")).json()["items"][0]["scanned_at"]
        pending = services.watcher._watched[folder["id"]].pending
        pending.max_paths = 5  # instead of creating 10,000 files
        for i in range(40):
            (root / f"burst{i:02d}.txt").write_text(f"burst file {i}")

        async def registered() -> bool:
            page = (await client.get("/v1/documents", params={"folder_id": folder["id"], "limit": 100})).json()
            return len(page["items"]) == 40

        await wait_for(registered, 60, "all 40 files registered")
        # registered by a full reconcile (the only thing that marks the folder scanned: the
        # periodic rescan is 30 min away), not from a dirty-path set holding the whole burst
        assert (await client.get("/v1/folders")).json()["items"][0]["scanned_at"] > scanned_at
        assert len(pending.files) <= 5
