"""The sidecar writes only inside its data dir: not in $HOME (caches, telemetry ids), as a
desktop app installed in a read-only location must. Regression: onnxruntime 1.32 creates
~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db} and queues usage
telemetry unless ORT_DISABLE_TELEMETRY is set before it is imported (`backend.cli.main`
sets it). onnxruntime stays quiet when it detects CI, so CI markers are removed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.helpers.process import read_line, sidecar_command

CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "BUILDKITE", "JENKINS_URL")
TOKEN = "confined-writes-test-token-0123456789abcdef"


def test_indexing_writes_nothing_to_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    doc = tmp_path / "note.txt"
    doc.write_text("Vacuum reclaims the storage of dead tuples.\n", encoding="utf-8")
    env = {
        k: v for k, v in os.environ.items() if k not in CI_MARKERS and not k.startswith(("ORT_", "XDG_", "DOCSIDECAR_"))
    }
    env.update({"HOME": str(home), "DOCSIDECAR_TOKEN": TOKEN})
    proc = subprocess.Popen(
        sidecar_command("serve", "--data-dir", str(tmp_path / "data")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = read_line(proc.stdout, 60)
        assert line, "no ready line"
        port = json.loads(line)["port"]
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as c:
            doc_id = c.post("/v1/documents", json={"path": str(doc)}).json()["document"]["id"]
            deadline = time.monotonic() + 120
            while c.get(f"/v1/documents/{doc_id}").json()["status"] != "embedded":
                assert time.monotonic() < deadline, "the document was not embedded in time"
                time.sleep(0.1)
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []
