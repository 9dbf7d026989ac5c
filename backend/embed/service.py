"""EmbeddingService: the component the composition root starts and stops.

``start()`` spawns ONE named thread (``embed-loader:<model-id>``) that finds the manifest,
verifies size + sha256 of the model files once, creates the onnxruntime session and exits.
Until it succeeds, :attr:`EmbeddingService.embedder` raises ``ModelNotReady`` (or the verify
error once loading failed), so keyword search and everything else keep working without the
model; ``/v1/status`` shows :meth:`EmbeddingService.status`. ``stop()`` joins the loader and
closes the embedder (later calls raise ``ModelNotReady``).

States: ``"idle"`` (constructed) → ``"starting"`` → ``"ready"`` | ``"failed"`` → ``"stopped"``.
It implements :class:`backend.components.Component` (``name``, ``status``, ``start``, ``stop``):
``status`` mirrors the state with the error body or model details for ``/v1/status``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backend.components import ComponentState, StatusCell
from backend.embed.errors import ModelLoadFailed, ModelNotReady
from backend.embed.manifest import DEFAULT_MODEL_ID, ModelManifest, find_manifest
from backend.embed.onnx_embedder import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_TOKEN_BUDGET,
    BatchObserver,
    OnnxEmbedder,
    default_threads,
)
from backend.errors import SidecarError

log = logging.getLogger("docsidecar.embed")

State = Literal["idle", "starting", "ready", "failed", "stopped"]


@dataclass(frozen=True, slots=True)
class EmbedConfig:
    """Settings of the local embedder (the lead maps ``Settings`` fields onto these)."""

    models_dir: Path
    """Directory holding ``<model-id>.toml`` manifests and fetched ``<model-id>/`` dirs."""
    model_id: str = DEFAULT_MODEL_ID
    """Which manifest to load."""
    threads: int | None = None
    """onnxruntime intra-op threads; ``None`` = physical cores."""
    allow_spinning: bool = False
    """Let onnxruntime workers busy-wait after a run (faster back-to-back runs, burns idle CPU)."""
    token_budget: int = DEFAULT_TOKEN_BUDGET
    """Max ``batch_size * padded_length`` per model run."""
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    """Max texts per model run."""
    query_cache_size: int = 256
    """Entries in the query-embedding LRU cache (0 disables it)."""
    stop_wait_s: float | None = None
    """How long ``stop()`` waits for a load still in progress (``None`` = until it ends). The
    onnxruntime session creation cannot be interrupted and takes 0.3-2 s on a busy laptop; the
    sidecar process uses a short wait so a shutdown during start-up stays fast — the loader then
    finishes on its own, discards the session and ends (the process exits without waiting)."""


class EmbeddingService:
    """Owns the background load of one local model and hands out the ready embedder."""

    provider = "onnx"

    def __init__(self, config: EmbedConfig, *, name: str = "embedding", on_batch: BatchObserver | None = None) -> None:
        self.config = config
        self.name = name
        self._on_batch = on_batch
        """Given to the embedder: told about every model run (the composition root passes metrics)."""
        self.status = StatusCell(ComponentState.STARTING)
        self._lock = threading.Lock()
        self._state: State = "idle"
        self._error: SidecarError | None = None
        self._embedder: OnnxEmbedder | None = None
        self._manifest: ModelManifest | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._stopping = threading.Event()
        self._load_seconds: float | None = None

    @property
    def model_id(self) -> str:
        return self.config.model_id

    def configured_dim(self) -> int:
        """Dimension of this model's vectors (from its manifest)."""
        return find_manifest(self.config.models_dir, self.config.model_id).dim

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @property
    def error(self) -> SidecarError | None:
        with self._lock:
            return self._error

    @property
    def embedder(self) -> OnnxEmbedder:
        """The ready embedder, or the reason there is none (an ``Unavailable`` subclass)."""
        with self._lock:
            if self._embedder is not None and self._state == "ready":
                return self._embedder
            if self._state == "failed" and self._error is not None:
                raise self._error
            raise ModelNotReady(
                f"embedding model {self.config.model_id} is {self._state}",
                detail={"model_id": self.config.model_id, "state": self._state},
            )

    def start(self) -> None:
        """Begin loading in the background; returns at once. Calling it twice is an error."""
        with self._lock:
            if self._state != "idle":
                raise RuntimeError(f"EmbeddingService.start() in state {self._state}")
            self._state = "starting"
            self.status.set(ComponentState.STARTING, {"model_id": self.config.model_id})
            self._thread = threading.Thread(
                target=self._load, name=f"embed-loader:{self.config.model_id}", daemon=False
            )
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loading ended (ready or failed); True when ready."""
        self._done.wait(timeout)
        return self.state == "ready"

    def stop(self, timeout: float | None = None) -> None:
        """Join the loader thread and close the embedder; idempotent. A load in progress stops
        before its next expensive step (hashing the model, creating the session)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout if timeout is not None else self.config.stop_wait_s)
            if thread.is_alive() and timeout is not None:
                raise RuntimeError(f"{thread.name} did not finish within {timeout} s")
            if thread.is_alive():
                log.info("shutdown: not waiting for the load of %s to end", self.config.model_id)
        with self._lock:
            if self._embedder is not None:
                self._embedder.close()
            self._embedder = None
            self._state = "stopped"
        self.status.set(ComponentState.STOPPED, {"model_id": self.config.model_id})
        self._done.set()

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (state, model, threads, load time, error body)."""
        with self._lock:
            e, m, err = self._embedder, self._manifest, self._error
            return {
                "state": self._state,
                "model_id": self.config.model_id,
                "dim": m.dim if m else None,
                "max_tokens": m.max_tokens if m else None,
                "threads": e.threads if e else None,
                "load_seconds": self._load_seconds,
                "error": err.to_body() if err else None,
            }

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            manifest = find_manifest(self.config.models_dir, self.config.model_id)
            embedder = OnnxEmbedder.load(
                manifest,
                manifest.dir_in(self.config.models_dir),
                threads=self.config.threads or default_threads(),
                allow_spinning=self.config.allow_spinning,
                token_budget=self.config.token_budget,
                max_batch_size=self.config.max_batch_size,
                query_cache_size=self.config.query_cache_size,
                should_stop=self._stopping.is_set,
                on_batch=self._on_batch,
            )
        except ModelNotReady:
            log.info("loading %s stopped by shutdown", self.config.model_id)
        except SidecarError as exc:
            self._fail(exc)
        except Exception as exc:  # noqa: BLE001 - reported as state "failed", never silent
            self._fail(ModelLoadFailed(f"loading {self.config.model_id} failed: {exc!r}"))
        else:
            with self._lock:
                self._manifest, self._load_seconds = manifest, time.perf_counter() - t0
                became_ready = self._state == "starting"
                if became_ready:
                    self._embedder, self._state = embedder, "ready"
            if not became_ready:  # stopped meanwhile: drop the session
                embedder.close()
                return
            self.status.set(ComponentState.READY, self._detail())
            log.info(
                "embedding model %s ready in %.2f s (%d threads)",
                manifest.id, self._load_seconds, embedder.threads,
            )  # fmt: skip
        finally:
            self._done.set()

    def _fail(self, exc: SidecarError) -> None:
        with self._lock:
            self._error = exc
            if self._state != "starting":
                return  # stopped meanwhile
            self._state = "failed"
        self.status.fail(exc)
        log.error("embedding model %s unavailable: %s", self.config.model_id, exc.message)

    def _detail(self) -> dict[str, Any]:
        s = self.summary()
        return {k: s[k] for k in ("model_id", "dim", "max_tokens", "threads", "load_seconds")}
