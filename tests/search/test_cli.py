"""`docsidecar search` against a running sidecar (real subprocess), and in-process without one."""

from __future__ import annotations

import json
import subprocess
import time

from tests.helpers.process import SidecarProcess, sidecar_command
from tests.search.indexed import PG_HTML, require_pg_docs


def run_cli(sidecar: SidecarProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sidecar_command("search", "--data-dir", str(sidecar.data_dir), *args),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_search_command(sidecar: SidecarProcess) -> None:
    require_pg_docs()
    with sidecar.client() as http:
        ids = [
            http.post("/v1/documents", json={"path": str(PG_HTML / page), "scope": "manual"}).json()["document"]["id"]
            for page in ("wal-intro.html", "backup-dump.html")
        ]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            states = {http.get(f"/v1/documents/{i}").json()["status"] for i in ids}
            if states == {"embedded"}:
                break
            time.sleep(0.3)
        assert states == {"embedded"}

    out = run_cli(sidecar, "write-ahead logging", "-k", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(" 1. ") and "Write-Ahead Logging" in lines[0] and "score" in lines[0]
    assert "wal-intro.html" in lines[1]
    assert "[" in out.stdout and "hits in" in lines[-1]

    out = run_cli(sidecar, "pg_dump", "--mode", "keyword", "--json", "--scope", "manual")
    body = json.loads(out.stdout)
    assert body["mode"] == "keyword" and body["hits"] and body["hits"][0]["document_id"] == ids[1]

    out = run_cli(sidecar, "pg_dump", "--scope", "nowhere")
    assert out.returncode == 0 and "no results" in out.stdout

    out = run_cli(sidecar, "pg_dump", "-k", "0")
    assert out.returncode == 1 and "k must be between" in out.stderr

    assert sidecar.stop() == 0
    out = run_cli(sidecar, "pg_dump", "--mode", "keyword", "-k", "2")
    assert out.returncode == 0, out.stderr
    assert "in-process" in out.stderr and "pg_dump" in out.stdout
