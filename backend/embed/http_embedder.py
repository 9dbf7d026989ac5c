"""Optional second provider: an OpenAI-compatible ``/v1/embeddings`` endpoint over HTTP.

Covers OpenAI, Jina, HF TEI, Ollama, llama.cpp server, vLLM...: ``POST {base_url}/v1/embeddings``
with ``{"model": ..., "input": [...]}``, answer ``{"data": [{"index": i, "embedding": [...]}]}``.

- per-call timeout (httpx), tenacity retries with exponential backoff + jitter on 429, 5xx,
  timeouts and transport errors (a ``Retry-After`` header is honoured, capped);
- a circuit breaker (:mod:`backend.embed.circuit`) counting calls that failed after their retries;
  while open, calls fail fast with ``EmbeddingCircuitOpen``;
- vectors are checked (count, order by ``index``, finite, ``dim``) and L2-normalised, so they
  are comparable with the index; any other 4xx or malformed answer is ``EmbeddingProviderRejected``.

Use it only when its ``model_id`` and ``dim`` equal the index's
(:func:`backend.embed.switching.ensure_compatible`). ``start()`` creates the HTTP client,
``stop()`` closes it; nothing happens in the constructor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from backend.embed.circuit import BreakerPolicy, CircuitBreaker
from backend.embed.errors import (
    EmbedderMismatch,
    EmbeddingCircuitOpen,
    EmbeddingProviderRejected,
    EmbeddingProviderUnavailable,
    ModelNotReady,
)
from backend.embed.onnx_embedder import Progress, check_texts
from backend.embed.pooling import l2_normalize
from backend.embed.query_cache import QueryCache

MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class HttpEmbedderConfig:
    base_url: str
    """Server root, e.g. ``http://127.0.0.1:11434``; the client posts to ``/v1/embeddings``."""
    model: str
    """Model name sent to the provider."""
    model_id: str
    """Id the vectors are tagged with; must equal the index's model id."""
    dim: int
    max_tokens: int = 512
    api_key: str | None = None
    timeout_s: float = 30.0
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_inputs_per_request: int = 64
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    query_cache_size: int = 256


class _Retryable(EmbeddingProviderUnavailable):
    """One attempt failed in a way worth retrying; ``retry_after`` from the server, if any."""

    def __init__(self, message: str, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class HttpEmbedder:
    """Implements :class:`~backend.embed.protocol.Embedder` against an HTTP provider."""

    def __init__(
        self,
        config: HttpEmbedderConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.breaker = CircuitBreaker(config.breaker, clock)
        self.cache = QueryCache(config.query_cache_size)
        self._transport, self._sleep = transport, sleep
        # initial * 2**n plus up to ``initial`` of random jitter, capped at backoff_max_s
        self._backoff = wait_exponential_jitter(
            multiplier=config.backoff_initial_s,
            max=config.backoff_max_s,
            jitter=config.backoff_initial_s,
        )
        self._client: httpx.Client | None = None

    @property
    def model_id(self) -> str:
        return self.config.model_id

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens

    def start(self) -> None:
        headers = {"Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        self._client = httpx.Client(
            base_url=self.config.base_url.rstrip("/"),
            timeout=self.config.timeout_s,
            headers=headers,
            transport=self._transport,
        )

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def embed(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> npt.NDArray[np.float32]:
        """``on_progress(done, total)`` is called after each request (ingest progress)."""
        items = check_texts(texts)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        step = self.config.max_inputs_per_request
        parts = []
        for i in range(0, len(items), step):
            parts.append(self._call(items[i : i + step]))
            if on_progress is not None:
                on_progress(min(i + step, len(items)), len(items))
        return np.concatenate(parts, axis=0)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        hit = self.cache.get(check_texts([text])[0])
        if hit is not None:
            return hit.copy()
        return self.cache.put(text, self._call([text])[0]).copy()

    def _call(self, inputs: list[str]) -> npt.NDArray[np.float32]:
        if not self.breaker.allow():
            wait = self.breaker.retry_after()
            raise EmbeddingCircuitOpen(
                f"embedding provider {self.config.base_url} failed repeatedly; not calling it for {wait:.0f} s",
                detail={"retry_after_s": wait},
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            vectors = retrying(self._post, inputs)
        except _Retryable as exc:
            self.breaker.record_failure()
            raise EmbeddingProviderUnavailable(
                f"{exc.message} (after {self.config.max_attempts} attempts)", detail=exc.detail
            ) from exc
        except (EmbeddingProviderRejected, EmbedderMismatch):
            self.breaker.record_success()  # the provider is up; it refused this request
            raise
        except BaseException:
            self.breaker.record_abandon()
            raise
        self.breaker.record_success()
        return vectors

    def _wait(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        server = exc.retry_after if isinstance(exc, _Retryable) and exc.retry_after else 0.0
        return max(backoff, min(server, MAX_RETRY_AFTER_S))

    def _post(self, inputs: list[str]) -> npt.NDArray[np.float32]:
        client = self._client
        if client is None:
            raise ModelNotReady(f"HTTP embedder {self.model_id} is not started")
        url = f"{self.config.base_url.rstrip('/')}/v1/embeddings"
        try:
            resp = client.post("/v1/embeddings", json={"model": self.config.model, "input": inputs})
        except httpx.TimeoutException as exc:
            raise _Retryable(f"{url} timed out after {self.config.timeout_s} s") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{url} unreachable: {exc!r}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _Retryable(
                f"{url} answered {resp.status_code}: {_error_text(resp)}",
                retry_after=_retry_after(resp),
                detail={"status": resp.status_code},
            )
        if resp.status_code >= 400:
            raise EmbeddingProviderRejected(
                f"{url} refused the request ({resp.status_code}): {_error_text(resp)}",
                detail={"status": resp.status_code},
            )
        return self._parse(resp, len(inputs), url)

    def _parse(self, resp: httpx.Response, n: int, url: str) -> npt.NDArray[np.float32]:
        try:
            data = resp.json()["data"]
            rows = sorted(data, key=lambda d: d["index"])
            indices = [d["index"] for d in rows]
            vectors = np.asarray([d["embedding"] for d in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingProviderRejected(f"{url} answered 200 without an OpenAI embeddings body: {exc!r}") from exc
        if indices != list(range(n)) or vectors.ndim != 2:
            raise EmbeddingProviderRejected(
                f"{url} returned {len(indices)} embeddings (indices {indices[:5]}...) for {n} inputs"
            )
        if vectors.shape[1] != self.dim:
            raise EmbedderMismatch(
                f"{url} model {self.config.model!r} returns {vectors.shape[1]}-d vectors; "
                f"the index of {self.model_id} holds {self.dim}-d vectors",
                detail={"expected_dim": self.dim, "actual_dim": int(vectors.shape[1])},
            )
        if not np.isfinite(vectors).all():
            raise EmbeddingProviderRejected(f"{url} returned non-finite vector values")
        return l2_normalize(vectors)


def _error_text(resp: httpx.Response) -> str:
    """The provider's error message: OpenAI's ``{"error": {"message"}}`` or the body's start."""
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    except ValueError:
        pass
    return resp.text[:300] or resp.reason_phrase


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff
