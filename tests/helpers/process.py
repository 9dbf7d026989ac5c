"""Start and stop a real sidecar subprocess and parse its ready line."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

READY_TIMEOUT_S = 60.0


@dataclass
class SidecarProcess:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    ready: dict[str, Any]
    token: str
    stdout_lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kwargs,
        )

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.rest_of_stdout()
        for stream in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if stream is not None:
                stream.close()
        return int(self.proc.returncode)

    def rest_of_stdout(self) -> list[str]:
        if self.proc.stdout is not None and not self.proc.stdout.closed and self.proc.poll() is not None:
            self.stdout_lines += self.proc.stdout.read().decode().splitlines()
        return self.stdout_lines


def sidecar_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "backend", *args]


def read_line(stream: IO[bytes], timeout: float) -> str | None:
    """One line from a pipe within ``timeout`` seconds (None on timeout or EOF)."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                continue
            byte = os.read(stream.fileno(), 1)
            if not byte:
                return buf.decode() if buf else None
            if byte == b"\n":
                return buf.decode()
            buf += byte
        return None
    finally:
        sel.close()


def start_sidecar(
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    token: str | None = None,
    expect_ready: bool = True,
) -> SidecarProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DOCSIDECAR_TOKEN", None)
    if token is not None:
        full_env["DOCSIDECAR_TOKEN"] = token
    proc = subprocess.Popen(
        sidecar_command("serve", "--data-dir", str(data_dir), *extra),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if os.environ.get("DOCSIDECAR_TEST_QUIET_STDERR") else None,
        env=full_env,
    )
    assert proc.stdout is not None
    line = read_line(proc.stdout, READY_TIMEOUT_S)
    if line is None:
        proc.kill()
        proc.wait()
        raise AssertionError("sidecar printed no line on stdout within the timeout")
    event = json.loads(line)
    if expect_ready and event.get("event") != "ready":
        proc.kill()
        proc.wait()
        raise AssertionError(f"sidecar did not become ready: {event}")
    resolved = token
    if resolved is None and event.get("token_file"):
        resolved = Path(event["token_file"]).read_text().strip()
    return SidecarProcess(proc, data_dir, event, resolved or "", [line])
