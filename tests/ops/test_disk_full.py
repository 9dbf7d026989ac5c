"""Disk full during ingest, on a real 16 MiB tmpfs holding a real sidecar's data dir (in a
private mount namespace: tests/ops/namespace.py; the scenario itself is
tests/ops/disk_full_scenario.py). What the user relies on:

* a write the disk cannot take is refused with a clear 507 ``disk_full`` and stores nothing;
* ``/v1/status`` shows the ``disk`` component ``degraded`` with ``disk_full``, the ingest queue
  says it is held for disk space, the interrupted job's error and its document's reason say so;
  while it lasts new documents are refused (507) rather than queued into a full disk;
* no job fails or burns an attempt because of it, the worker never dies, search keeps working;
* once space is back everything resumes by itself, and the database is intact
  (``PRAGMA integrity_check`` on a fresh connection, no orphans, FTS5 integrity-check).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.ops.namespace import require_mount_namespace

ROOT = Path(__file__).resolve().parents[2]


def test_disk_full_during_ingest_is_reported_harmless_and_recovers(tmp_path: Path) -> None:
    prefix = require_mount_namespace()
    run = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.ops.disk_full_scenario", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.stdout.strip(), f"the scenario printed nothing (exit {run.returncode}): {run.stderr[-3000:]}"
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in seen, seen["error"] + "\n--- sidecar stderr ---\n" + seen.get("stderr_tail", "")

    # full disk: refused with a clear error, nothing half-stored
    assert seen["before"]["state"] == "ready"
    for refusal in (seen["refused"], seen["upload_refused"]):
        assert refusal["status"] == 507 and refusal["body"]["error"] == "disk_full", refusal
        assert "is full" in refusal["body"]["message"]
    assert seen["documents_after_refusal"] == ["glacier.txt", "lighthouse.txt"]
    assert seen["retried_refused"] == 202  # the same request works once there is room

    # full while ingesting: clear state in /v1/status, the jobs and the documents
    disk = seen["full_status"]
    assert disk["state"] == "degraded" and disk["error"]["error"] == "disk_full", disk
    assert "resumes by itself" in disk["error"]["message"]
    assert seen["ingest_while_full"]["held_for"] == "disk space"
    waiting = [d for d in seen["documents_while_full"].values() if d["status_reason"] == "waiting for disk space"]
    disk_jobs = [j for j in seen["jobs_while_full"] if (j["error"] or "").startswith("disk full")]
    assert waiting and disk_jobs, (seen["documents_while_full"], seen["jobs_while_full"])
    assert all(d["status"] != "embedded" for d in waiting)  # its old state stays until space is back
    assert all(j["attempts"] == 0 and j["state"] != "failed" for j in seen["jobs_while_full"])
    assert all(d["status"] != "failed" for d in seen["documents_while_full"].values())
    assert seen["reserve"] == {"before": True, "while_full": False, "after": True}  # released, then re-made
    assert seen["alive_while_full"] == 200
    assert seen["search_while_full"]["status"] == 200
    assert seen["search_while_full"]["hits"][0] == seen["lighthouse_id"]

    # space back: resumed by itself, nothing lost, nothing corrupted
    assert seen["after_status"]["state"] == "ready" and seen["worker_alive"] == "ready"
    assert {d["status"] for d in seen["documents_after"].values()} == {"embedded"}
    assert len(seen["documents_after"]) == 10
    assert all(j["state"] == "done" and j["attempts"] == 0 for j in seen["jobs_after"])
    assert seen["exit_code"] == 0
    assert seen["integrity_check"] == ["ok"]
    assert seen["index_problems"] == []
