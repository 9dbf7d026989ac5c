"""HttpEmbeddingService: the component for an OpenAI-compatible embeddings server.

The counterpart of :class:`~backend.embed.service.EmbeddingService` when
``Settings.embed_provider == "http"``: same ``name``, ``status``, ``state``, ``embedder``,
``wait_ready`` and ``summary``, so ingest, search and the model switch use it unchanged.

``start()`` opens the HTTP client and spawns ONE named thread (``embed-http:<model-id>``) that
probes the server with a one-line request: a right answer makes the service ``ready``; an
answer of another dimension *refuses* the provider for good (``failed``,
``embedding_provider_incompatible``); no answer makes it ``unavailable`` and the thread probes
again every ``probe_interval_s`` until the server answers. The thread also wakes when a real
call fails, so a provider that went down is reported at once and used again as soon as it is
back. ``stop()`` ends and joins the thread and closes the client.

The model switch (:mod:`backend.embed.model_switch`) refuses the provider the same way
(:meth:`HttpEmbeddingService.refuse`) when the index already holds vectors of another model id
or dimension: then nothing ever embeds with it, so no mismatched vector is written.

States: ``idle`` → ``starting`` → ``ready`` ⇄ ``unavailable``; ``failed`` (refused) and
``stopped`` are final. While ``unavailable`` or ``failed``, :attr:`embedder` raises the reason
(an ``Unavailable`` subclass): ingest indexes for keyword search and fills the vectors in once
the provider is ready again (the ``embed_missing`` job), search answers from keywords.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from backend.components import ComponentState, StatusCell
from backend.embed.errors import (
    EmbedderMismatch,
    EmbeddingCircuitOpen,
    EmbeddingProviderIncompatible,
    EmbeddingProviderRejected,
    EmbeddingProviderUnavailable,
    ModelNotReady,
)
from backend.embed.http_embedder import HttpEmbedder, HttpEmbedderConfig
from backend.embed.onnx_embedder import Progress
from backend.embed.protocol import Embedder
from backend.errors import SidecarError

log = logging.getLogger("docsidecar.embed")

State = Literal["idle", "starting", "ready", "unavailable", "failed", "stopped"]
T = TypeVar("T")

PROBE_TEXT = "docsidecar embedding provider check"
PROVIDER_DOWN = (EmbeddingProviderUnavailable, EmbeddingCircuitOpen)
CONFIG_REJECTED = frozenset({401, 403, 404})
"""Refusals that concern every request (bad key, unknown model or path), not one input."""


def public_url(base_url: str) -> str:
    """``base_url`` as shown in status and logs (settings reject credentials and queries;
    this drops them anyway, for configs built in code)."""
    parts = httpx.URL(base_url)
    return str(parts.copy_with(username=None, password=None, query=None, fragment=None))


class HttpEmbeddingService:
    """Owns the :class:`HttpEmbedder`, its availability and the probe thread."""

    provider = "http"

    def __init__(
        self,
        config: HttpEmbedderConfig,
        *,
        name: str = "embedding",
        probe_interval_s: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.status = StatusCell(ComponentState.STARTING)
        self.probe_interval_s = probe_interval_s if probe_interval_s is not None else config.breaker.cooldown_s
        self._stopping = threading.Event()
        # retry back-off ends early at stop(); the next attempt then fails fast (client closed)
        self._http = HttpEmbedder(config, transport=transport, sleep=self._backoff_sleep)
        self._guarded = _Guarded(self._http, self._observe)
        self._lock = threading.Lock()
        self._state: State = "idle"
        self._error: SidecarError | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._settled = threading.Event()

    def _backoff_sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # -- what ingest, search and the model switch read -------------------------------------
    @property
    def model_id(self) -> str:
        return self.config.model_id

    @property
    def dim(self) -> int:
        return self.config.dim

    def configured_dim(self) -> int:
        return self.config.dim

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @property
    def error(self) -> SidecarError | None:
        with self._lock:
            return self._error

    @property
    def embedder(self) -> Embedder:
        """The provider while it answers, else the reason it is not used (``Unavailable``)."""
        with self._lock:
            if self._state == "ready":
                return self._guarded
            if self._error is not None and self._state in ("unavailable", "failed"):
                raise self._error
            raise ModelNotReady(
                f"embedding provider {public_url(self.config.base_url)} is {self._state}",
                detail={"model_id": self.config.model_id, "state": self._state},
            )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._state != "idle":
                raise RuntimeError(f"HttpEmbeddingService.start() in state {self._state}")
            self._state = "starting"
        self.status.set(ComponentState.STARTING, self._detail())
        self._http.start()
        self._thread = threading.Thread(target=self._probe_loop, name=f"embed-http:{self.model_id}", daemon=False)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first probe ended; True when the provider is ready."""
        self._settled.wait(timeout)
        return self.state == "ready"

    def stop(self) -> None:
        """Stop probing, close the client and join the probe thread (a request in flight ends
        with the closed client, or at the latest after ``timeout_s``)."""
        self._stopping.set()
        self._wake.set()
        self._http.stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.config.timeout_s + 1.0)
            if thread.is_alive():
                log.warning("shutdown: %s still waits for the embedding provider", thread.name)
        with self._lock:
            self._state = "stopped"
        self.status.set(ComponentState.STOPPED, self._detail())
        self._settled.set()

    def refuse(self, error: SidecarError) -> None:
        """Never use this provider (its model id / dim do not match the index)."""
        with self._lock:
            if self._state in ("failed", "stopped"):
                return
            self._state, self._error = "failed", error
        self.status.fail(error)
        self._wake.set()
        self._settled.set()
        log.error("embedding provider refused: %s", error.message)

    def summary(self) -> dict[str, Any]:
        """Provider, model, state and reason, circuit breaker state: for ``/v1/status``."""
        with self._lock:
            state, err = self._state, self._error
        breaker = self._http.breaker.state
        return {
            "provider": self.provider,
            "model_id": self.config.model_id,
            "dim": self.config.dim,
            "state": state,
            "reason": err.message if err is not None and state in ("unavailable", "failed") else None,
            "error": err.to_body() if err is not None and state in ("unavailable", "failed") else None,
            "base_url": public_url(self.config.base_url),
            "model": self.config.model,
            "circuit": breaker.name,
            "retry_after_s": round(self._http.breaker.retry_after(), 3) if breaker.name == "open" else None,
        }

    # -- availability ---------------------------------------------------------------------
    def _probe_loop(self) -> None:
        while not self._stopping.is_set() and self._now() in ("starting", "unavailable"):
            self._wake.clear()
            try:
                self._observe(lambda: self._http.embed([PROBE_TEXT]))
            except SidecarError:
                pass  # the outcome is recorded by _observe
            except Exception as exc:  # noqa: BLE001 - e.g. the client closed by stop(); never silent
                if self._stopping.is_set():
                    break
                self._set_unavailable(EmbeddingProviderUnavailable(f"probing the embedding provider failed: {exc!r}"))
            finally:
                self._settled.set()
            if self._now() == "ready":
                self._wake.wait()  # until a call fails (then: unavailable), refuse() or stop()
            self._wake.clear()
            if self._stopping.is_set() or self._now() != "unavailable":
                continue
            self._wake.wait(max(self.probe_interval_s, self._http.breaker.retry_after()))

    def _now(self) -> State:
        with self._lock:
            return self._state

    def _observe(self, call: Callable[[], T]) -> T:
        """Run a provider call and keep the state in step with its outcome."""
        try:
            result = call()
        except EmbedderMismatch as exc:
            refusal = EmbeddingProviderIncompatible(
                f"embedding provider {public_url(self.config.base_url)} model {self.config.model!r} "
                f"answers {exc.detail.get('actual_dim') if exc.detail else '?'}-d vectors, but "
                f"DOCSIDECAR_EMBED_HTTP_DIM is {self.config.dim}; fix the setting (a new model id "
                "needs an empty index) — the provider is not used",
                detail=exc.detail,
            )
            self.refuse(refusal)
            raise refusal from exc
        except PROVIDER_DOWN as exc:
            self._set_unavailable(exc)
            raise
        except EmbeddingProviderRejected as exc:
            status = exc.detail.get("status") if exc.detail else None
            if status is None or status in CONFIG_REJECTED:  # a malformed answer, a bad key or model
                self._set_unavailable(exc)
            raise
        self._set_ready()
        return result

    def _set_ready(self) -> None:
        with self._lock:
            if self._state not in ("starting", "unavailable"):
                return
            previous, self._state, self._error = self._state, "ready", None
        self.status.set(ComponentState.READY, self._detail())
        if previous == "unavailable":
            log.info("embedding provider %s answers again", public_url(self.config.base_url))
        else:
            log.info("embedding provider %s ready (model %s)", public_url(self.config.base_url), self.model_id)

    def _set_unavailable(self, exc: SidecarError) -> None:
        with self._lock:
            if self._state not in ("starting", "ready", "unavailable"):
                return
            previous, self._state, self._error = self._state, "unavailable", exc
        self.status.fail(exc, ComponentState.DEGRADED)
        if previous == "ready":
            self._wake.set()  # the probe thread waits for this; probing starts after one interval
        if previous != "unavailable":
            log.warning("embedding provider unavailable, keyword search only until it answers: %s", exc.message)

    def _detail(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model_id": self.config.model_id,
            "dim": self.config.dim,
            "base_url": public_url(self.config.base_url),
        }


class _Guarded:
    """The embedder handed out: the HTTP embedder, each call observed by the service."""

    def __init__(self, inner: HttpEmbedder, observe: Callable[[Callable[[], Any]], Any]) -> None:
        self._inner = inner
        self._observe = observe

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dim(self) -> int:
        return self._inner.dim

    @property
    def max_tokens(self) -> int:
        return self._inner.max_tokens

    def embed(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> npt.NDArray[np.float32]:
        result: npt.NDArray[np.float32] = self._observe(lambda: self._inner.embed(texts, on_progress=on_progress))
        return result

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        result: npt.NDArray[np.float32] = self._observe(lambda: self._inner.embed_query(text))
        return result
