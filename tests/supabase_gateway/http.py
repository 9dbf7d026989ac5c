"""A small threaded HTTP/1.1 server with socket-level control (stdlib ``http.server``).

The stdlib server is used on purpose: fault injection needs to close a connection without
answering, before or after the request was applied, which ASGI servers do not expose. Every
connection thread is named, tracked and joined by ``stop()``; nothing runs at import or in a
constructor.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any


class DropConnection(Exception):
    """Raised by an application to close the connection without sending any response."""


@dataclass
class Request:
    method: str
    path: str  # decoded path, without the query string
    raw_path: str  # as sent, with the query string
    query: list[tuple[str, str]]
    headers: Message
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        value = self.headers.get(name)
        return default if value is None else str(value)

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json; charset=utf-8"


App = Callable[[Request], Response]


def _read_chunked(rfile: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        line = rfile.readline(65537)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(rfile.read(size))
        rfile.readline(65537)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet; the gateway keeps its own request log

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        elif length:
            body = self.rfile.read(int(length))
        else:
            body = b""
        parsed = urllib.parse.urlsplit(self.path)
        request = Request(
            method=self.command,
            path=urllib.parse.unquote(parsed.path),
            raw_path=self.path,
            query=urllib.parse.parse_qsl(parsed.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            response = self.server.app(request)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        if response.content_type is not None and self.command != "HEAD":
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in response.headers):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _Server(http.server.HTTPServer):
    daemon_threads = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.threads: set[threading.Thread] = set()
        self.sockets: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"supabase-gateway-conn-{next(self._ids)}",
        )
        with self._lock:
            self.threads.add(thread)
            self.sockets.add(request)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except (ConnectionError, TimeoutError, OSError):
            pass
        finally:
            self.shutdown_request(request)
            with self._lock:
                self.sockets.discard(request)
                self.threads.discard(threading.current_thread())


class HttpServer:
    """Serves ``app`` on 127.0.0.1; ``start()`` binds and starts the accept thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._server = _Server(self._address, self._app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="supabase-gateway-accept",
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        with server._lock:
            sockets = list(server.sockets)
            threads = list(server.threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=10)
        server.server_close()
