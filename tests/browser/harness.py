"""What the browser tests need around a real sidecar: static page servers for the origins
(attacker, app), a collector for the pages' reports, a DNS-rebinding relay, and headless
Chromium (Debian's /usr/bin/chromium, driven by command line only: no browser download,
no automation library)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAGES = Path(__file__).resolve().parent / "pages"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
REBIND_HOST = "rebind.test"
REBIND_IP = "127.0.0.2"


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Collector:
    """Reports POSTed by the pages, by page name."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._reports: dict[str, dict[str, Any]] = {}

    def add(self, raw: bytes) -> None:
        report = json.loads(raw)
        with self._cond:
            self._reports[report["page"]] = report["results"]
            self._cond.notify_all()

    def wait(self, page: str, timeout: float) -> dict[str, Any] | None:
        with self._cond:
            self._cond.wait_for(lambda: page in self._reports, timeout)
            return self._reports.pop(page, None)


class PageServer:
    """Serves tests/browser/pages/ on 127.0.0.1:<port> (one origin); POST /report feeds a collector."""

    def __init__(self, collector: Collector | None = None, host: str = "127.0.0.1") -> None:
        collector_ = collector

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.split("?", 1)[0].lstrip("/")
                path = PAGES / name
                if not name or "/" in name or not path.is_file():
                    self._reply(404, b"not found", "text/plain")
                    return
                ctype = "text/html" if name.endswith(".html") else "text/javascript"
                self._reply(200, path.read_bytes(), ctype)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path == "/report" and collector_ is not None:
                    collector_.add(body)
                self._reply(204, b"", "text/plain")

            def _reply(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype + "; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = int(self.server.server_address[1])
        self.origin = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> PageServer:
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"pages-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class RebindRelay:
    """The attacker's host after a DNS rebinding, on 127.0.0.2:<the sidecar's port>.

    A connection whose first request asks for a page (``/rebind.html``, ``/common.js``) gets it
    from tests/browser/pages and is closed; any other connection is piped byte for byte to the
    sidecar on 127.0.0.1:<port>. The browser believes it talks to ``rebind.test:<port>``
    throughout, so the sidecar sees exactly the requests a rebinding attack would send
    (``Host: rebind.test:<port>``, no Origin on same-origin GETs).
    """

    def __init__(self, sidecar_port: int) -> None:
        self.sidecar_port = sidecar_port
        self.sock = socket.create_server((REBIND_IP, sidecar_port))  # raises OSError if 127.0.0.2 is unusable
        self.relayed = 0
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._accept = threading.Thread(target=self._serve, name="rebind-relay", daemon=True)

    def start(self) -> RebindRelay:
        self._accept.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        self._accept.join(5)
        for t in self._threads:
            t.join(5)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    head += piece
            if not head:
                return
            path = head.split(b" ", 2)[1].split(b"?", 1)[0].decode("latin-1")
            page = PAGES / path.lstrip("/")
            if path in ("/rebind.html", "/common.js") and page.is_file():
                body = page.read_bytes()
                ctype = b"text/html" if path.endswith(".html") else b"text/javascript"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                return
            self.relayed += 1
            with socket.create_connection(("127.0.0.1", self.sidecar_port)) as upstream:
                upstream.sendall(head)
                _pipe(conn, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def copy(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while piece := src.recv(65536):
                dst.sendall(piece)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    a.settimeout(30)
    b.settimeout(30)
    back = threading.Thread(target=copy, args=(b, a), daemon=True)
    back.start()
    copy(a, b)
    back.join(30)


@contextlib.contextmanager
def chromium(executable: str, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Chromium showing ``url`` in a fresh profile; killed (whole process group) on exit."""
    profile = tempfile.mkdtemp(prefix="docsidecar-chromium-")
    proc = subprocess.Popen(
        [
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--host-resolver-rules=MAP {REBIND_HOST} {REBIND_IP}",
            url,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def run_page(executable: str, url: str, collector: Collector, page: str, timeout: float = 60.0) -> dict[str, Any]:
    started = time.monotonic()
    with chromium(executable, url) as proc:
        report = collector.wait(page, timeout)
        if report is None:
            raise AssertionError(
                f"page {page!r} sent no report within {timeout:.0f} s "
                f"(chromium {'exited ' + str(proc.returncode) if proc.poll() is not None else 'still running'}, "
                f"{time.monotonic() - started:.1f} s)"
            )
    return report
