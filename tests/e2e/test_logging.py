"""Logs of a real sidecar: JSON lines on stderr and in the rotating file, each with a request id."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.process import read_line, sidecar_command, start_sidecar


def test_every_log_line_is_json_with_the_request_id(tmp_path: Path) -> None:
    sc = start_sidecar(tmp_path / "d", "--log-level", "DEBUG")
    try:
        with sc.client() as c:
            assert c.get("/v1/status", headers={"X-Request-ID": "req-status-1"}).status_code == 200
            assert c.get("/v1/nope", headers={"X-Request-ID": "req-missing-2"}).status_code == 404
            generated = c.get("/v1/status").headers["x-request-id"]
            refused = c.get("/v1/status", headers={"Authorization": "Bearer wrong", "X-Request-ID": "req-refused-3"})
            assert refused.status_code == 401
    finally:
        assert sc.stop() == 0
    lines = (tmp_path / "d" / "logs" / "docsidecar.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records and all({"ts", "level", "logger", "msg", "request_id"} <= set(r) for r in records)
    by_id = {r["request_id"]: r for r in records if r["logger"] == "docsidecar.http"}
    assert by_id["req-status-1"]["msg"] == "GET /v1/status -> 200"
    assert by_id["req-missing-2"]["msg"] == "GET /v1/nope -> 404"
    assert by_id["req-refused-3"]["status"] == 401
    assert by_id[generated]["route"] == "/v1/status"
    # outside a request (start-up, shutdown) the id is "-", never missing
    assert any(r["request_id"] == "-" and r["msg"].startswith("ready on 127.0.0.1:") for r in records)


def test_stderr_carries_the_same_json_lines_and_stdout_only_the_ready_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        sidecar_command("serve", "--data-dir", str(tmp_path / "d")),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip

    assert proc.stdout is not None and proc.stderr is not None
    ready = json.loads(read_line(proc.stdout, 60) or "{}")
    assert ready["event"] == "ready"
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert out == b"", "nothing but the ready line on stdout"
    records = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert any(r["msg"] == "stopped" for r in records)
    assert all("request_id" in r for r in records)
