"""Disk full during ingest, for real: run inside a private mount namespace (see
tests/ops/test_disk_full.py), it mounts a 16 MiB tmpfs, puts a real sidecar's data dir on it,
fills the disk while documents are being ingested, frees it again, and prints one JSON line
with what it observed (the test asserts on it).

    python -m tests.ops.disk_full_scenario ROOT
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.index_check import index_problems, open_db
from tests.helpers.process import read_line, sidecar_command

TOPICS = ["lighthouse", "glacier", "orchard", "volcano", "harbour", "meadow", "canyon", "lagoon", "tundra", "prairie"]


def write_documents(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, topic in enumerate(TOPICS):
        body = "\n\n".join(
            f"The {topic} keeper wrote entry {k} of volume {i}: the {topic} changed with the weather, "
            f"and the notes on the {topic} grew longer every season, paragraph {k}." * 3
            for k in range(12)
        )
        path = folder / f"{topic}.txt"
        path.write_text(f"# Notes on the {topic}\n\n{body}\n")
        paths.append(path)
    return paths


def fill(target: Path, leave: int) -> None:
    """Write ``target`` until the file system is full, then give ``leave`` bytes back."""
    block = b"\0" * 65536
    with open(target, "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    size = target.stat().st_size
    os.truncate(target, max(0, size - leave))


def wait(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def main(root: Path, out: dict[str, Any]) -> None:
    mnt = root / "mnt"
    mnt.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)], check=True)
    data = mnt / "data"
    docs = write_documents(root / "docs")
    env = {**os.environ, "DOCSIDECAR_MIN_FREE_BYTES": "0", "DOCSIDECAR_INGEST_RETRY_BASE_S": "0.5",
           "DOCSIDECAR_EMBED_THREADS": "1", "DOCSIDECAR_LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("DOCSIDECAR_TOKEN", None)
    with open(root / "sidecar.stderr", "wb") as err:
        proc = subprocess.Popen(
            sidecar_command("serve", "--data-dir", str(data)), stdout=subprocess.PIPE, stderr=err, env=env
        )
    assert proc.stdout is not None
    ready = json.loads(read_line(proc.stdout, 60) or "{}")
    assert ready.get("event") == "ready", ready
    token = Path(ready["token_file"]).read_text().strip()
    client = httpx.Client(base_url=f"http://127.0.0.1:{ready['port']}", headers={"Authorization": f"Bearer {token}"},
                          timeout=30)  # fmt: skip

    def status() -> dict[str, Any]:
        body: dict[str, Any] = client.get("/v1/status").json()
        return body

    def documents() -> dict[str, dict[str, Any]]:
        return {d["filename"]: d for d in client.get("/v1/documents", params={"limit": 100}).json()["items"]}

    def add(path: Path) -> httpx.Response:
        return client.post("/v1/documents", json={"path": str(path)})

    try:
        wait(lambda: status()["components"]["embedding"]["state"] == "ready", 90, "the model")
        # 1. two documents indexed while there is room
        for path in docs[:2]:
            assert add(path).status_code == 202
        wait(lambda: sum(d["status"] == "embedded" for d in documents().values()) == 2, 120, "the first documents")
        out["before"] = status()["components"]["disk"]
        reserve = data / ".disk-reserve"
        out["reserve"] = {"before": reserve.exists()}
        # 2. the disk fills up: nothing can be added, with a clear error, nothing half-stored
        fill(mnt / "filler", leave=0)
        refused = add(docs[2])
        out["refused"] = {"status": refused.status_code, "body": refused.json()}
        files = {"file": ("upload.txt", b"an upload that cannot be stored " * 2000, "text/plain")}
        upload = client.post("/v1/documents", files=files)
        out["upload_refused"] = {"status": upload.status_code, "body": upload.json()}
        out["documents_after_refusal"] = sorted(documents())
        # 3. space comes back: the guard notices, writes work again, the refused ones go in
        (mnt / "filler").unlink()
        wait(lambda: status()["components"]["disk"]["state"] == "ready", 30, "the disk to be ready again")
        out["retried_refused"] = add(docs[2]).status_code
        wait(lambda: documents().get(docs[2].name, {}).get("status") == "embedded", 120, "the refused document")
        # 4. the disk fills up again while documents are being ingested: queued while paused, they
        # run out of space mid-way once resumed, go back to the queue (no attempt counted), say why
        assert client.post("/v1/ingest/pause").status_code in (200, 202)
        out["accepted_codes"] = [add(path).status_code for path in docs[3:7]]
        fill(mnt / "filler", leave=40 * 1024)
        assert client.post("/v1/ingest/resume").status_code in (200, 202)
        full = wait(
            lambda: (s := status())["components"]["disk"]["state"] == "degraded" and s, 90, "the disk-full state"
        )
        out["full_status"] = full["components"]["disk"]
        out["reserve"]["while_full"] = reserve.exists()
        time.sleep(2.0)  # the worker holds jobs back while full: give it time to (not) misbehave
        out["jobs_while_full"] = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
        out["documents_while_full"] = documents()
        out["ingest_while_full"] = client.get("/v1/ingest").json()
        out["alive_while_full"] = client.get("/v1/health").status_code
        hits = client.post("/v1/search", json={"query": "lighthouse keeper", "mode": "keyword", "k": 3})
        out["search_while_full"] = {"status": hits.status_code,
                                    "hits": [h["document_id"] for h in hits.json().get("hits", [])]}  # fmt: skip
        out["lighthouse_id"] = documents()["lighthouse.txt"]["id"]
        # 5. space comes back: everything resumes by itself, nothing is lost
        (mnt / "filler").unlink()
        wait(lambda: status()["components"]["disk"]["state"] == "ready", 30, "the disk to be ready again")
        for path, code in zip(docs[3:7], out["accepted_codes"], strict=True):
            if code != 202:
                add(path)
        for path in docs[7:]:
            add(path)
        wait(lambda: sum(d["status"] == "embedded" for d in documents().values()) == len(docs), 240, "every document")
        out["documents_after"] = documents()
        out["reserve"]["after"] = reserve.exists()
        out["jobs_after"] = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
        out["after_status"] = status()["components"]["disk"]
        out["worker_alive"] = status()["components"]["ingest"]["state"]
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        out["exit_code"] = proc.wait(30)
    conn = open_db(data, readonly=False)  # a fresh connection (see index_check)
    try:
        out["integrity_check"] = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        out["index_problems"] = index_problems(conn, fts_check=True)
    finally:
        conn.close()


if __name__ == "__main__":
    observed: dict[str, Any] = {}
    try:
        main(Path(sys.argv[1]), observed)
    except BaseException:
        observed["error"] = traceback.format_exc()
    stderr_file = Path(sys.argv[1]) / "sidecar.stderr"
    if stderr_file.exists():
        observed["stderr_tail"] = stderr_file.read_text(errors="replace")[-4000:]
    print(json.dumps(observed, default=str))
