"""The Node client for Electron (packaging/electron) against the real `python -m backend`.

Runs the module's whole `node --test` suite — spawn and handshake, ready timeout, token,
typed helpers, SSE reconnect, crash and restart, clean stop, parent SIGKILL — with this
interpreter as the sidecar (source mode). `make package` runs the same suite against the
built binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ci

ELECTRON = Path(__file__).resolve().parents[2] / "packaging" / "electron"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if ci():
            pytest.fail("node (>= 20) is required in CI for the Electron client tests")
        pytest.skip("node is not installed: the Electron client tests need Node >= 20")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"the Electron client needs Node >= 20, found {version}")
    return node


def _count(name: str, output: str) -> int:
    match = re.search(rf"^# {name} (\d+)$", output, re.MULTILINE)
    assert match, f"no '# {name}' line in the node --test output:\n{output[-3000:]}"
    return int(match.group(1))


@pytest.mark.timeout(600)
def test_node_client_suite_against_the_source_sidecar() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOCSIDECAR_BINARY"}
    env["DOCSIDECAR_PYTHON"] = sys.executable
    proc = subprocess.run(
        [_node(), "--test", "test/"],
        cwd=ELECTRON,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = proc.stdout + proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("not ok")]
    assert proc.returncode == 0, f"node --test failed: {failed}\n{output[-6000:]}"
    tests = _count("tests", proc.stdout)
    assert tests > 0
    assert _count("pass", proc.stdout) == tests
    assert _count("skipped", proc.stdout) == 0
    assert _count("todo", proc.stdout) == 0
