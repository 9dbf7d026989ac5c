"""API fuzzing: Schemathesis against the sidecar's own OpenAPI schema, over real HTTP.

A real ``python -m backend serve`` runs in a throwaway data dir with ``HOME`` pointed at a temp
dir (so ``~`` in fuzzed paths stays inside it) and every proxy variable pointing at a closed
loopback port (so a fuzzed sign-in can never reach the network: Supabase is unreachable and
the sync routes answer their documented errors). The test seeds a watched folder and two
documents so the list routes return real ids for the stateful phase, then runs the
Schemathesis CLI (``tests/fuzz/schemathesis.toml``; custom check in ``tests/fuzz/hooks.py``)
with a fixed seed and reads its JSON report:

* at least 2,000 generated cases, every operation tested, all phases completed;
* no failure of any check: no 5xx, responses match the schema (status codes, content types,
  bodies, headers), schema-violating requests are refused, auth is enforced, OPTIONS/405 list
  the right methods, every non-2xx body is ``{"error", "message", "detail"}``;
* afterwards the sidecar is healthy, logged no unhandled error, and watches nothing outside
  the temp dirs.

Reproduce a run by hand: start a sidecar, then the command in ``FUZZ_COMMAND`` of the report
(printed on failure), or ``st replay <case id>`` from the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.process import SidecarProcess, start_sidecar

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261202
MAX_EXAMPLES = 45
MIN_CASES = 2000
RUN_TIMEOUT_S = 420
TOKEN = "fuzz-token-0123456789abcdefghijklmnopqrstuvwxyz"
DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused at once

pytestmark = pytest.mark.slow


def _seed(sidecar: SidecarProcess, watched: Path) -> None:
    (watched / "notes.md").write_text("# Fuzz seed\n\nA watched file about lighthouses.\n")
    with sidecar.client() as http:
        assert http.post("/v1/folders", json={"path": str(watched)}).status_code == 201
        for name, text in (("a.txt", "harbour lights and tides"), ("b.md", "# Tides\n\nmoon and sea")):
            files = {"file": (name, text.encode(), "text/plain")}
            assert http.post("/v1/documents", files=files, data={"tags": "seed"}).status_code == 202


def _run_schemathesis(
    sidecar: SidecarProcess, report: Path, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(SCHEMATHESIS_HOOKS="tests.fuzz.hooks", PYTHONPATH=str(ROOT), NO_COLOR="1")
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{sidecar.base_url}/v1/openapi/openapi.json",
        "-H", f"Authorization: Bearer {sidecar.token}",
        "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
        "--report", "json", "--report-json-path", str(report), "--no-color",
    ]  # fmt: skip
    t0 = time.monotonic()
    # its working dir gets Schemathesis' own cache (.schemathesis/): keep it out of the checkout
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return proc, time.monotonic() - t0


def test_api_fuzz(tmp_path: Path) -> None:
    home, watched = tmp_path / "home", tmp_path / "watched"
    home.mkdir()
    watched.mkdir()
    env = {
        "HOME": str(home),
        "DOCSIDECAR_LOG_LEVEL": "WARNING",
        "DOCSIDECAR_SYNC_RETRY_ATTEMPTS": "1",
        **{name: DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "",
        "no_proxy": "",
    }
    sidecar = start_sidecar(tmp_path / "data", env=env, token=TOKEN)
    try:
        _seed(sidecar, watched)
        with sidecar.client() as http:
            paths = http.get("/v1/openapi/openapi.json").json()["paths"]
        methods = {"get", "put", "post", "delete", "patch", "options", "head"}
        operations = sum(1 for item in paths.values() for method in item if method in methods)
        report_path = tmp_path / "schemathesis.json"
        proc, seconds = _run_schemathesis(sidecar, report_path, tmp_path)
        output = proc.stdout[-20000:] + proc.stderr[-5000:]
        assert report_path.exists(), output
        report = json.loads(report_path.read_text())
        cases = report["test_cases"]
        print(
            f"\nAPI fuzz: {cases['generated']} cases in {seconds:.1f} s, seed {SEED}, "
            f"{report['operations']['tested']}/{report['operations']['total']} operations, "
            f"phases { ({k: v['status'] for k, v in report['phases'].items()}) }"
        )
        assert report["failures"] == [], output
        assert report["errors"] == [], output
        assert proc.returncode == 0, output
        assert report["stop_reason"] == "completed" and report["complete"], output
        assert cases["generated"] >= MIN_CASES, cases
        assert cases["with_failures"] == 0 and cases["errored"] == 0, cases
        # every operation the published schema has (counted from it, so a new route is fuzzed too)
        assert report["operations"]["tested"] == report["operations"]["total"] == operations, report["operations"]
        for phase in ("coverage", "fuzzing", "stateful"):
            assert report["phases"][phase]["status"] == "success", report["phases"]

        with sidecar.client() as http:
            assert http.get("/v1/health").json() == {"status": "ok"}
            folders = http.get("/v1/folders").json()["items"]
        for folder in folders:  # the fuzzer could only add folders that exist: never / or the real home
            assert Path(folder["path"]).is_relative_to(tmp_path), folder
    finally:
        code = sidecar.stop()
    assert code == 0
    log = (tmp_path / "data" / "logs" / "docsidecar.log").read_text()
    errors = [json.loads(line) for line in log.splitlines() if '"level": "ERROR"' in line or '"level":"ERROR"' in line]
    assert errors == [], errors[:3]
