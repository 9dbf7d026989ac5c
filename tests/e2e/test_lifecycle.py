"""The sidecar as the Electron parent sees it: a subprocess with a handshake line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers.process import read_line, sidecar_command, start_sidecar

EXIT_WITHIN_S = 2.0


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _gone(pid):
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still running after {timeout}s")


def test_ready_line_then_serves_with_token(tmp_path: Path) -> None:
    sc = start_sidecar(tmp_path / "d")
    try:
        ready = sc.ready
        assert set(ready) == {"event", "port", "pid", "version", "token_file"}
        assert ready["event"] == "ready" and ready["pid"] == sc.proc.pid
        assert Path(ready["token_file"]).parent == tmp_path / "d"
        assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
        assert httpx.get(f"{sc.base_url}/v1/health").json() == {"status": "ok"}
        assert httpx.get(f"{sc.base_url}/v1/status").status_code == 401
        with sc.client() as c:
            assert c.get("/v1/status").json()["port"] == sc.port
        bad_host = httpx.get(
            f"{sc.base_url}/v1/status",
            headers={"Host": "rebind.example", "Authorization": f"Bearer {sc.token}"},
        )
        assert bad_host.status_code == 403
    finally:
        code = sc.stop()
    assert code == 0
    assert sc.stdout_lines == [json.dumps(sc.ready, separators=(",", ":"))], "stdout carries only the ready line"
    assert not (tmp_path / "d" / "instance.json").exists()


def test_token_from_parent_env_is_used_and_not_written(tmp_path: Path) -> None:
    sc = start_sidecar(tmp_path / "d", token="parent-chosen-token-value")
    try:
        assert sc.ready["token_file"] is None
        assert not (tmp_path / "d" / "token").exists()
        with sc.client() as c:
            assert c.get("/v1/status").status_code == 200
    finally:
        sc.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_cleanly_within_2s(tmp_path: Path, sig: signal.Signals) -> None:
    sc = start_sidecar(tmp_path / "d")
    # an open event stream must not hold the shutdown up
    stream = httpx.Client(base_url=sc.base_url, headers={"Authorization": f"Bearer {sc.token}"}, timeout=10)
    with stream.stream("GET", "/v1/events") as events:
        next(events.iter_lines())
        start = time.monotonic()
        sc.proc.send_signal(sig)
        assert sc.proc.wait(timeout=10) == 0
        assert time.monotonic() - start < EXIT_WITHIN_S
    stream.close()
    sc.stop()


def test_stdin_eof_exits(tmp_path: Path) -> None:
    sc = start_sidecar(tmp_path / "d", "--stdin-watch", stdin=subprocess.PIPE)
    assert sc.proc.stdin is not None
    start = time.monotonic()
    sc.proc.stdin.close()
    assert sc.proc.wait(timeout=10) == 0
    assert time.monotonic() - start < EXIT_WITHIN_S
    sc.stop()


PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen(sys.argv[1:] + ["--parent-pid", str(os.getpid())], stdout=subprocess.PIPE)
    sys.stdout.write(child.stdout.readline().decode()); sys.stdout.flush()
    time.sleep(600)
    """
)


def test_parent_death_exits_within_2s(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PARENT,
            *sidecar_command("serve", "--data-dir", str(tmp_path / "d")),
        ],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    line = read_line(parent.stdout, 60)
    assert line, "no ready line relayed by the parent"
    child_pid = json.loads(line)["pid"]
    assert not _gone(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_gone(child_pid, 10) < EXIT_WITHIN_S
    parent.stdout.close()


def test_second_instance_on_same_data_dir_fails_fast(tmp_path: Path) -> None:
    first = start_sidecar(tmp_path / "d")
    try:
        start = time.monotonic()
        second = subprocess.run(
            sidecar_command("serve", "--data-dir", str(tmp_path / "d")),
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert time.monotonic() - start < 30
        assert second.returncode == 3
        lines = second.stdout.decode().splitlines()
        assert len(lines) == 1
        event = json.loads(lines[0])
        assert event["event"] == "error" and event["error"] == "already_running"
        assert str(first.proc.pid) in event["message"] and str(first.port) in event["message"]
        assert event["detail"] == {"pid": first.proc.pid, "port": first.port}
        with first.client() as c:  # the first one is unharmed
            assert c.get("/v1/status").status_code == 200
    finally:
        first.stop()
    again = start_sidecar(tmp_path / "d")  # the lock is gone with the first process
    again.stop()


def test_restart_after_kill_9_is_not_blocked(tmp_path: Path) -> None:
    first = start_sidecar(tmp_path / "d")
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    first.stop()
    second = start_sidecar(tmp_path / "d")
    try:
        with second.client() as c:
            assert c.get("/v1/status").status_code == 200
    finally:
        second.stop()
