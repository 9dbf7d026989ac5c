"""A tiny OpenAI-compatible embeddings server: the stand-in for Ollama / HF TEI / OpenAI.

It speaks the wire format ``backend/embed/http_embedder.py`` documents — ``POST /v1/embeddings``
with ``{"model": name, "input": str | [str, ...]}`` and ``Authorization: Bearer <key>`` when a
key is set; answer ``{"object": "list", "data": [{"object": "embedding", "index": i,
"embedding": [...]}], "model": name, "usage": {...}}``; errors as ``{"error": {"message",
"type", "code"}}`` (401 bad key, 404 unknown model, 400 bad body). The vectors come from a
real model (the project's ONNX embedder), so semantic search over them means something.

``stop()`` closes the socket (the provider is down: connections are refused), ``start()``
brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import numpy.typing as npt

EmbedFn = Callable[[Sequence[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class SeenRequest:
    path: str
    model: str | None
    inputs: list[str]
    authorization: str | None


class EmbeddingsServer:
    def __init__(self, models: dict[str, EmbedFn], *, api_key: str | None = None) -> None:
        self.models = models
        self.api_key = api_key
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> EmbeddingsServer:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))  # same port on a restart
        server.daemon_threads = True
        self._server, self._port = server, int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="t-embeddings-server"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:  # keep-alive connections too: a stopped provider answers nothing
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self.requests)

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, request: SeenRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _handler(server: EmbeddingsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            server._track(self.connection, True)

        def finish(self) -> None:
            server._track(self.connection, False)
            with contextlib.suppress(OSError):
                super().finish()

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization")
            try:
                body = json.loads(raw)
                model, inputs = body.get("model"), body["input"]
                inputs = [inputs] if isinstance(inputs, str) else inputs
                if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
                    raise TypeError("input must be a string or an array of strings")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                server._record(SeenRequest(self.path, None, [], auth))
                return self._send(400, _error(f"invalid body: {exc}", "invalid_request_error", None))
            server._record(SeenRequest(self.path, model, list(inputs), auth))
            if self.path != "/v1/embeddings":
                return self._send(404, _error(f"unknown path {self.path}", "invalid_request_error", None))
            if server.api_key is not None and auth != f"Bearer {server.api_key}":
                return self._send(401, _error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"))
            embed = server.models.get(str(model))
            if embed is None:
                return self._send(
                    404, _error(f"The model `{model}` does not exist", "invalid_request_error", "model_not_found")
                )
            vectors = embed(inputs)
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
            tokens = sum(len(t.split()) for t in inputs)
            return self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    return Handler
