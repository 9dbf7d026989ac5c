"""HttpEmbedder against a real HTTP server in the test that speaks the OpenAI embeddings API.

The server stands in for an external provider (OpenAI / TEI / Ollama); it answers with vectors
from the real local ONNX model, in the OpenAI response shape, and can be scripted to fail.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from backend.embed.circuit import BreakerPolicy
from backend.embed.errors import (
    EmbedderMismatch,
    EmbeddingCircuitOpen,
    EmbeddingProviderRejected,
    EmbeddingProviderUnavailable,
    EmbedInputInvalid,
    ModelNotReady,
)
from backend.embed.http_embedder import HttpEmbedder, HttpEmbedderConfig
from backend.embed.onnx_embedder import OnnxEmbedder
from backend.embed.protocol import Embedder


@dataclass
class Provider:
    """Shared state between the test and the server thread."""

    embedder: OnnxEmbedder
    script: deque[str] = field(default_factory=deque)  # actions for the next requests
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with provider.lock:
                provider.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                action = provider.script.popleft() if provider.script else "ok"
            if self.path != "/v1/embeddings":
                return self._send(404, {"error": {"message": "not found"}})
            if action == "hang":
                provider.release.wait(10)
                return self._send(200, {"data": []})
            if action == "429":
                return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "2"})
            if action == "503":
                return self._send(503, {"error": {"message": "overloaded", "type": "server"}})
            if action == "401":
                return self._send(401, {"error": {"message": "Incorrect API key provided"}})
            if action == "garbage":
                return self._send(200, b"<html>proxy login</html>")
            if action == "drop":
                self.close_connection = True
                return None
            vecs = provider.embedder.embed(body["input"])
            if action == "dim":
                vecs = vecs[:, :256]
            if action == "scaled":
                vecs = vecs * 3.0  # some providers do not normalise
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]
            if action == "short":
                data = data[:-1]
            random.Random(len(data)).shuffle(data)  # order is given by "index", not position
            n_tok = sum(provider.embedder.count_tokens(body["input"]))
            return self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": n_tok, "total_tokens": n_tok},
                },
            )

    return Handler


@pytest.fixture
def provider(onnx_embedder: OnnxEmbedder) -> Iterator[tuple[Provider, str]]:
    state = Provider(onnx_embedder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="t-fake-provider")
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


_started: list[HttpEmbedder] = []


@pytest.fixture(autouse=True)
def _stop_embedders() -> Iterator[None]:
    yield
    while _started:
        _started.pop().stop()


def make(base: str, sleeps: Sleeps | None = None, **kw: Any) -> HttpEmbedder:
    cfg: dict[str, Any] = {
        "base_url": base, "model": "all-minilm", "model_id": "all-MiniLM-L6-v2-int8",
        "dim": 384, "api_key": "sk-test", "timeout_s": 5.0, "max_attempts": 3,
        "backoff_initial_s": 0.5, "backoff_max_s": 4.0, "max_inputs_per_request": 3,
    } | kw  # fmt: skip
    emb = HttpEmbedder(HttpEmbedderConfig(**cfg), sleep=sleeps if sleeps is not None else Sleeps())
    emb.start()
    _started.append(emb)
    return emb


def test_matches_the_local_model_and_speaks_the_protocol(
    provider: tuple[Provider, str], onnx_embedder: OnnxEmbedder
) -> None:
    state, base = provider
    emb = make(base)
    assert isinstance(emb, Embedder)
    texts = [f"text number {i} about indexes" for i in range(7)]
    vecs = emb.embed(texts)
    np.testing.assert_allclose(vecs, onnx_embedder.embed(texts), atol=1e-6)
    assert [len(r["body"]["input"]) for r in state.requests] == [3, 3, 1]
    assert state.requests[0] == {
        "path": "/v1/embeddings",
        "body": {"model": "all-minilm", "input": texts[:3]},
        "auth": "Bearer sk-test",
    }
    q = emb.embed_query("text number 1 about indexes")
    np.testing.assert_allclose(q, vecs[1], atol=1e-6)
    emb.embed_query("text number 1 about indexes")
    assert len(state.requests) == 4  # the second query came from the cache
    assert emb.embed([]).shape == (0, 384)
    emb.stop()


def test_retries_429_and_5xx_with_backoff_then_succeeds(provider: tuple[Provider, str]) -> None:
    state, base = provider
    state.script.extend(["429", "503"])
    sleeps = Sleeps()
    emb = make(base, sleeps)
    assert emb.embed(["hello"]).shape == (1, 384)
    assert len(state.requests) == 3
    assert sleeps[0] >= 2.0  # Retry-After: 2 honoured
    assert 0 < sleeps[1] <= 4.0  # exponential with jitter, capped at backoff_max_s
    assert emb.breaker.state.name == "closed"
    emb.stop()


def test_gives_up_after_max_attempts(provider: tuple[Provider, str]) -> None:
    state, base = provider
    state.script.extend(["503", "503", "503", "503"])
    sleeps = Sleeps()
    emb = make(base, sleeps)
    with pytest.raises(EmbeddingProviderUnavailable, match=r"overloaded.*after 3 attempts") as info:
        emb.embed(["x"])
    assert info.value.status == 503 and len(state.requests) == 3 and len(sleeps) == 2
    emb.stop()


def test_transport_errors_and_timeouts_are_retried(provider: tuple[Provider, str]) -> None:
    state, base = provider
    state.script.extend(["drop", "hang"])
    emb = make(base, timeout_s=0.3)
    assert emb.embed(["after a drop and a timeout"]).shape == (1, 384)
    assert len(state.requests) == 3
    emb.stop()


def test_unreachable_server(provider: tuple[Provider, str]) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emb = make(f"http://127.0.0.1:{port}", max_attempts=2)
    with pytest.raises(EmbeddingProviderUnavailable, match="unreachable"):
        emb.embed(["x"])
    emb.stop()


def test_4xx_is_not_retried_and_names_the_cause(provider: tuple[Provider, str]) -> None:
    state, base = provider
    state.script.append("401")
    emb = make(base)
    with pytest.raises(EmbeddingProviderRejected, match=r"401.*Incorrect API key"):
        emb.embed(["x"])
    assert len(state.requests) == 1 and emb.breaker.state.failures == 0
    emb.stop()


@pytest.mark.parametrize(
    ("action", "error", "needle"),
    [
        ("garbage", EmbeddingProviderRejected, "without an OpenAI embeddings body"),
        ("short", EmbeddingProviderRejected, "returned 2 embeddings"),
        ("dim", EmbedderMismatch, "256-d vectors"),
    ],
)
def test_malformed_answers_are_refused(
    provider: tuple[Provider, str], action: str, error: type[Exception], needle: str
) -> None:
    state, base = provider
    state.script.append(action)
    emb = make(base)
    with pytest.raises(error, match=needle):
        emb.embed(["a", "b", "c"])
    emb.stop()


def test_unnormalised_provider_vectors_are_normalised(provider: tuple[Provider, str]) -> None:
    state, base = provider
    state.script.append("scaled")
    emb = make(base)
    np.testing.assert_allclose(np.linalg.norm(emb.embed(["a", "b"]), axis=1), 1.0, atol=1e-6)
    emb.stop()


def test_circuit_opens_fails_fast_then_recovers(provider: tuple[Provider, str]) -> None:
    state, base = provider
    now = [0.0]
    emb = HttpEmbedder(
        HttpEmbedderConfig(
            base_url=base, model="m", model_id="all-MiniLM-L6-v2-int8", dim=384,
            max_attempts=1, breaker=BreakerPolicy(failure_threshold=2, cooldown_s=30),
        ),
        clock=lambda: now[0], sleep=Sleeps(),
    )  # fmt: skip
    emb.start()
    _started.append(emb)
    state.script.extend(["503", "503"])
    for _ in range(2):
        with pytest.raises(EmbeddingProviderUnavailable):
            emb.embed(["x"])
    with pytest.raises(EmbeddingCircuitOpen) as info:
        emb.embed(["x"])
    assert info.value.headers == {"Retry-After": "30"} and len(state.requests) == 2
    now[0] = 31.0
    assert emb.embed(["x"]).shape == (1, 384)  # the half-open probe succeeds
    assert emb.breaker.state.name == "closed"
    emb.stop()


def test_bad_inputs_and_lifecycle(provider: tuple[Provider, str]) -> None:
    _, base = provider
    emb = HttpEmbedder(HttpEmbedderConfig(base_url=base, model="m", model_id="x", dim=384))
    with pytest.raises(ModelNotReady):
        emb.embed(["not started"])
    emb.start()
    _started.append(emb)
    with pytest.raises(EmbedInputInvalid):
        emb.embed("a string")  # type: ignore[arg-type]
    with pytest.raises(EmbedInputInvalid):
        emb.embed_query(None)  # type: ignore[arg-type]
    emb.stop()
    emb.stop()
    with pytest.raises(ModelNotReady):
        emb.embed(["stopped"])


def test_concurrent_callers(provider: tuple[Provider, str], onnx_embedder: OnnxEmbedder) -> None:
    _, base = provider
    emb = make(base)
    out: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        out[k] = emb.embed([f"caller {k} sentence {i}" for i in range(4)])

    threads = [threading.Thread(target=work, args=(k,), name=f"t-http-{k}") for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(6):
        expected = onnx_embedder.embed([f"caller {k} sentence {i}" for i in range(4)])
        np.testing.assert_allclose(out[k], expected, atol=1e-6)
    emb.stop()
