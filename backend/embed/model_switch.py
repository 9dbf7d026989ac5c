"""ModelSwitch: which embedding model answers queries, and the start of a model change.

The configured model (``Settings.model_id``, the ``EmbeddingService`` the composition root
builds) is the *target*: ingest embeds new chunks with it. The *active* model is the one whose
index queries read (``kv[search.active_model]`` in the database). Normally they are the same.
When the user changes the setting and restarts, :meth:`ModelSwitch.start` sees target B ≠
active A and, without blocking anything:

1. loads A's model too (a second ``EmbeddingService``) so queries keep being embedded with A
   and keep reading A's index;
2. registers B's index as ``building`` and queues one durable ``reembed`` build job
   (:mod:`backend.embed.reindex_job`), which fills B's index in the background — resumable
   after a crash or restart, the chunks still lacking a B vector being the cursor — and then
   switches atomically (one transaction) and queues the clean-up of A.

Starting again with the setting back on A abandons an unfinished build of B (its partial
index is retired and cleaned up); A never stopped answering.

An external provider (``embed_provider = "http"``, :mod:`backend.embed.http_service`) is
never rebuilt for: the composition root passes ``on_incompatible``, and when the index already
holds vectors of another model id, or vectors of the provider's model id with another
dimension, the provider is refused (``on_incompatible(error)``, ``embedding_provider_incompatible``)
— nothing is embedded with it, keyword search keeps working. An index without such vectors
adopts its model id and dimension, as for a local model (at once when there are no chunks).

Query side, for the search code: read the active index from the database
(``backend.store.vectors.active_model(conn)``) and embed the query with
``models.for_index(index)`` — never with the configured model directly, which during a
switch is not the one the active index was built with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from backend.components import ComponentState, StatusCell
from backend.embed.errors import EmbeddingProviderIncompatible
from backend.embed.protocol import Embedder
from backend.embed.service import EmbeddingService
from backend.embed.switching import EmbedderRegistry
from backend.errors import SidecarError
from backend.events import EventBus
from backend.store import Store, index_switch
from backend.store import vectors as vector_repo
from backend.store.index_switch import BuildProgress
from backend.store.vectors import VectorIndex

log = logging.getLogger("docsidecar.embed")

ServiceFactory = Callable[[str], EmbeddingService]


class SwitchTarget(Protocol):
    """The configured embedder: a local model's ``EmbeddingService`` or an HTTP provider's."""

    name: str
    status: StatusCell

    @property
    def model_id(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def embedder(self) -> Embedder: ...

    def configured_dim(self) -> int: ...


class ModelSwitch:
    """Component: owns the embedder registry and the extra service of the previous model."""

    name = "models"

    def __init__(
        self,
        store: Store,
        events: EventBus,
        target: SwitchTarget,
        make_service: ServiceFactory,
        *,
        notify_worker: Callable[[], None] = lambda: None,
        on_incompatible: Callable[[SidecarError], None] | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.target = target
        self.make_service = make_service
        self.notify_worker = notify_worker
        self.on_incompatible = on_incompatible
        """None: another active model is re-embedded in the background (local models); set:
        the target is refused instead (an external provider)."""
        self._refusal: SidecarError | None = None
        self.registry = EmbedderRegistry()
        self.status = StatusCell()
        self._lock = threading.Lock()
        self._extra: dict[str, EmbeddingService] = {}
        self._progress: BuildProgress | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        target_id = self.target.model_id
        fixed = self.on_incompatible is not None
        self.registry.register(self.target)
        with self.store.read() as conn:
            refusal = self._incompatible(conn, vector_repo.active_model(conn)) if fixed else None
        if refusal is not None:
            self._refuse(refusal)
            return
        try:
            if fixed and self.store.write(lambda c: index_switch.redimension_empty(c, target_id, self._dim())):
                log.info("index of %s holds no vector yet: re-created with %d dimensions", target_id, self._dim())
            with self.store.read() as conn:
                active = vector_repo.active_model(conn)
            if active is not None and active.model_id == target_id:
                self._steady(target_id)
            elif not self._switch_if_trivial(target_id):
                # an external provider never loads the old model: queries are keyword-only meanwhile
                previous = active.model_id if active is not None and not fixed else None
                self._begin_switch(previous, target_id)
        except SidecarError as exc:
            # e.g. the new model's manifest is unknown: the old index keeps answering.
            log.error("cannot start the switch to model %s: %s", target_id, exc.message)
            self.status.fail(exc, ComponentState.DEGRADED)
            return
        self._publish_status()

    def _dim(self) -> int:
        return self.target.configured_dim()

    def _incompatible(self, conn: Any, active: VectorIndex | None) -> SidecarError | None:
        """Why the fixed target cannot serve this database's index (None: it can, or the index
        holds no vector it would have to replace)."""
        target_id, dim = self.target.model_id, self._dim()
        same_id = vector_repo.get_index(conn, target_id)
        detail = {"provider_model_id": target_id, "provider_dim": dim}
        if same_id is not None and same_id.dim != dim and index_switch.has_vectors(conn, target_id):
            return EmbeddingProviderIncompatible(
                f"the index holds {same_id.dim}-d vectors of model {target_id}; the embedding provider "
                f"is configured for {dim}-d and is not used, keyword search keeps working. A model of "
                "another dimension needs another DOCSIDECAR_EMBED_HTTP_MODEL_ID (and an empty index)",
                detail={**detail, "index_model_id": target_id, "index_dim": same_id.dim},
            )
        if active is None or active.model_id == target_id or not index_switch.has_vectors(conn, active.model_id):
            return None
        return EmbeddingProviderIncompatible(
            f"the index holds vectors of {active.model_id} ({active.dim}-d); the embedding provider is "
            f"configured for {target_id} ({dim}-d) and is not used, keyword search keeps working. Set "
            "DOCSIDECAR_EMBED_HTTP_MODEL_ID and DOCSIDECAR_EMBED_HTTP_DIM to the index's model (only if "
            "the server runs exactly that model), set DOCSIDECAR_EMBED_PROVIDER=onnx, or use an empty data dir",
            detail={**detail, "index_model_id": active.model_id, "index_dim": active.dim},
        )

    def _refuse(self, error: SidecarError) -> None:
        assert self.on_incompatible is not None
        with self._lock:
            self._refusal = error
        self.on_incompatible(error)
        self.status.fail(error, ComponentState.DEGRADED)

    def stop(self) -> None:
        with self._lock:
            extra, self._extra = list(self._extra.values()), {}
        for service in extra:
            service.stop()
        self.status.set(ComponentState.STOPPED)

    def _steady(self, target_id: str) -> None:
        self.registry.set_active(target_id)
        retired = self.store.write(lambda c: index_switch.abandon_builds(c, keep=[target_id]))
        if retired:
            log.info("abandoned unfinished index build(s) of %s; model %s stays active", retired, target_id)
            self.notify_worker()

    def _switch_if_trivial(self, target_id: str) -> bool:
        """With no chunks at all there is nothing to re-embed: switch in one transaction now."""
        with self.store.read() as conn:
            if conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None:
                return False
        dim = self._dim()

        def write(conn: Any) -> tuple[bool, str | None]:
            if conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None:
                return False, None  # a document arrived meanwhile
            index_switch.abandon_builds(conn, keep=[target_id])
            vector_repo.ensure_index(conn, target_id, dim)
            switched = index_switch.switch_active(conn, target_id, cleanup_delay_s=0.0)
            return switched is not None, switched.previous if switched else None

        done, previous = self.store.write(write)
        if done:
            self.registry.set_active(target_id)
            log.info("no chunks indexed yet: model %s is active at once (was %s)", target_id, previous)
            self.notify_worker()
        return done

    def _begin_switch(self, active_id: str | None, target_id: str) -> None:
        if active_id is not None:
            previous = self.make_service(active_id)
            with self._lock:
                self._extra[active_id] = previous
            previous.start()
            self.registry.register(previous)
            self.registry.set_active(active_id)
        dim = self._dim()
        keep = [m for m in (target_id, active_id) if m]

        def write(conn: Any) -> int:
            index_switch.abandon_builds(conn, keep=keep)
            return index_switch.begin_build(conn, target_id, dim, active_id).id

        job_id = self.store.write(write)
        if active_id is None:
            self.registry.set_active(target_id)  # nothing else could answer; fills as it builds
        else:
            self.registry.begin_build(target_id)
        with self.store.read() as conn:
            self._progress = index_switch.progress(conn, target_id)
        log.info(
            "building the index of model %s in the background (job %d); %s keeps answering queries",
            target_id, job_id, active_id,
        )  # fmt: skip
        self.events.publish("index.rebuild_started", {"model_id": target_id, "previous": active_id, "job_id": job_id})
        self.notify_worker()

    # -- query side -----------------------------------------------------------------------
    def for_index(self, index: VectorIndex) -> Embedder:
        """The embedder whose vectors are comparable with ``index`` (raises ``Unavailable`` /
        ``EmbedderMismatch``): the one to embed queries with for that index."""
        self._raise_refusal()
        return self.registry.for_index(index.model_id, index.dim)

    @property
    def embedder(self) -> Embedder:
        """:meth:`active_embedder` (an ``EmbedderSource`` for code that only needs the active one)."""
        return self.active_embedder()

    def active_embedder(self) -> Embedder:
        """The embedder of the model queries use now (raises ``Unavailable`` while loading)."""
        self._raise_refusal()
        return self.registry.active()

    def _raise_refusal(self) -> None:
        with self._lock:
            refusal = self._refusal
        if refusal is not None:
            raise refusal

    @property
    def active_id(self) -> str | None:
        return self.registry.active_id

    @property
    def building_id(self) -> str | None:
        return self.registry.building_id

    # -- called by the reindex job --------------------------------------------------------
    def report_progress(self, progress: BuildProgress) -> None:
        with self._lock:
            self._progress = progress
        self._publish_status()

    def switched(self, new_active: str, previous: str | None) -> None:
        """The switch transaction committed: make the new model active in memory too."""
        if self.registry.building_id == new_active:
            self.registry.finish_build()
        else:
            self.registry.set_active(new_active)
        with self._lock:
            self._progress = None
        log.info("model %s is now active (was %s)", new_active, previous)
        self.events.publish("index.model_switched", {"model_id": new_active, "previous": previous})
        self._publish_status()

    def retired(self, model_id: str) -> None:
        """The old model's index is gone: forget its embedder and unload its model."""
        with self._lock:
            service = self._extra.pop(model_id, None)
        if model_id not in (self.registry.active_id, self.registry.building_id):
            self.registry.retire(model_id)
        if service is not None:
            service.stop()
        self._publish_status()

    def _publish_status(self) -> None:
        with self._lock:
            progress = self._progress
        detail: dict[str, Any] = {
            "active_model": self.registry.active_id,
            "building_model": self.registry.building_id,
            "configured_model": self.target.model_id,
        }
        if progress is not None and self.registry.building_id is not None:
            detail["build_progress"] = {"done": progress.done, "total": progress.total}
        self.status.set(ComponentState.READY, detail)
