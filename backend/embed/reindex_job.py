"""The durable ``reembed`` job: build the new model's index in the shadow, switch, clean up.

Runs on the job worker (registered in ``IngestService``'s handler table by the composition
root). Two phases, one job kind (:data:`backend.store.index_switch.KIND`):

``build`` (payload ``model_id`` = the new model B)
    Walk the chunks lacking a B vector (a cursor over chunk ids), embed them in batches with
    B's embedder (bulk turns, so queries still go first) and write them to B's ``building``
    index; each batch is its own transaction, so a crash or a restart loses at most one batch
    and the next run resumes from the chunks still lacking a vector. Chunks that ingest adds
    meanwhile get B vectors from ingest (it embeds with the configured model, B) and A vectors
    from this job, so the active index A stays complete. When the cursor is exhausted, one
    transaction re-checks that no chunk lacks a B vector and switches: B ``ready`` and active,
    A ``retired``, generation bumped, A's clean-up queued. Until that commit every query reads
    A; after it every query reads B.
    The job yields the worker: after ``slice_s`` seconds, if document jobs are waiting, it
    queues its own continuation and returns (document ingest is never stuck behind a rebuild).
    If B's model is not ready (loading, missing, corrupt) it waits (``WaitForModel``, retried
    without counting an attempt) and A keeps answering.

``cleanup`` (payload ``model_id`` = the retired model A; due a few seconds after the switch so
    queries that started on A finish)
    Delete A's vectors in batches, drop A's vec0 table and registry row, unload A's model.
    Skipped if A is active or being built again (the user switched back).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from backend.embed.model_switch import ModelSwitch
from backend.embed.switching import embed_tagged
from backend.errors import Unavailable
from backend.events import EventBus
from backend.ingest.pipeline import WaitForModel
from backend.store import Store, embedding_gaps, index_switch, jobs
from backend.store import vectors as vector_repo

log = logging.getLogger("docsidecar.embed")


class JobCtx(Protocol):
    """What the job worker hands a handler (``backend.ingest.pipeline.JobContext``)."""

    job: jobs.Job

    def check(self) -> None: ...

    @property
    def progress(self) -> Callable[[str, int, int, int], None]: ...


class ReindexJob:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        switch: ModelSwitch,
        *,
        batch: int = 64,
        slice_s: float = 30.0,
        cleanup_delay_s: float = 10.0,
        notify_worker: Callable[[], None] = lambda: None,
        after_batch: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.switch = switch
        self.batch = batch
        self.slice_s = slice_s
        self.cleanup_delay_s = cleanup_delay_s
        self.notify_worker = notify_worker
        self.after_batch = after_batch
        """Called after each committed batch with the model id written (observability hook)."""

    def run(self, ctx: JobCtx) -> None:
        payload = ctx.job.payload
        model_id, phase = payload.get("model_id"), payload.get("phase")
        if not isinstance(model_id, str) or phase not in {"build", "cleanup"}:
            log.error("reembed job %d has a payload this version does not understand: %s", ctx.job.id, payload)
            return
        if phase == "build":
            self._build(ctx, model_id)
        else:
            self._cleanup(ctx, model_id)

    # -- build ----------------------------------------------------------------------------
    def _build(self, ctx: JobCtx, model_id: str) -> None:
        if self.switch.target.model_id != model_id:
            log.info("reembed job %d for %s is stale (configured model: %s)", ctx.job.id, model_id,
                     self.switch.target.model_id)  # fmt: skip
            return
        started = time.monotonic()
        cursor, active_cursor = 0, 0
        dim = self._embedder(model_id).dim
        self.store.write(lambda c: vector_repo.ensure_index(c, model_id, dim))
        while True:
            ctx.check()
            with self.store.read() as conn:
                active = vector_repo.active_model(conn)
            if active is not None and active.model_id == model_id:
                return  # switched by an earlier run
            if active is not None:
                active_cursor = self._fill_active_gaps(active.model_id, active_cursor)
            embedder = self._embedder(model_id)
            with self.store.read() as conn:
                rows = index_switch.gaps_from(conn, model_id, cursor, self.batch)
            if not rows:
                if self._try_switch(model_id):
                    return
                cursor = 0  # a chunk behind the cursor lost its vector (edited): walk again
                continue
            tagged = embed_tagged(embedder, [text for _, text in rows])
            pairs = list(zip((cid for cid, _ in rows), tagged.vectors, strict=True))
            self.store.write(functools.partial(index_switch.put_shadow_vectors, model_id=tagged.model_id, rows=pairs))
            cursor = rows[-1][0]
            self._report(ctx, model_id)
            if self.after_batch is not None:
                self.after_batch(model_id)
            if time.monotonic() - started > self.slice_s and self._yield_to_other_jobs(model_id):
                return

    def _embedder(self, model_id: str) -> Any:
        try:
            return self.switch.registry.get(model_id)
        except Unavailable as exc:
            loading = self.switch.target.state in {"idle", "starting"}
            raise WaitForModel(
                f"index build of {model_id} waits for its model: {exc.message}",
                retry_after=5.0 if loading else 60.0,
            ) from exc

    def _fill_active_gaps(self, active_id: str, cursor: int) -> int:
        """Give chunks added during the build a vector of the model still answering queries."""
        try:
            embedder = self.switch.registry.get(active_id)
        except Unavailable:
            return cursor  # the old model is not loaded: those chunks are keyword-only until the switch
        with self.store.read() as conn:
            rows = index_switch.gaps_from(conn, active_id, cursor, self.batch)
        if not rows:
            return cursor
        tagged = embed_tagged(embedder, [text for _, text in rows])
        pairs = list(zip((cid for cid, _ in rows), tagged.vectors, strict=True))
        self.store.write(functools.partial(embedding_gaps.put_if_chunks_exist, model_id=tagged.model_id, rows=pairs))
        if self.after_batch is not None:
            self.after_batch(active_id)
        return rows[-1][0]

    def _try_switch(self, model_id: str) -> bool:
        result = self.store.write(
            lambda c: index_switch.switch_active(c, model_id, cleanup_delay_s=self.cleanup_delay_s)
        )
        if result is None:
            return False
        self.switch.switched(model_id, result.previous)
        self.notify_worker()
        return True

    def _report(self, ctx: JobCtx, model_id: str) -> None:
        with self.store.read() as conn:
            p = index_switch.progress(conn, model_id)
        self.switch.report_progress(p)
        ctx.progress("embedding", p.done, p.total, 0)

    def _yield_to_other_jobs(self, model_id: str) -> bool:
        def write(conn: Any) -> bool:
            if not index_switch.other_jobs_waiting(conn):
                return False
            index_switch.enqueue(conn, "build", model_id)
            return True

        if self.store.write(write):
            self.notify_worker()
            return True
        return False

    # -- cleanup --------------------------------------------------------------------------
    def _cleanup(self, ctx: JobCtx, model_id: str) -> None:
        with self.store.read() as conn:
            index = vector_repo.get_index(conn, model_id)
            active = vector_repo.active_model(conn)
        in_use = {self.switch.target.model_id, self.switch.building_id, active.model_id if active else None}
        if index is not None and (index.state != "retired" or model_id in in_use):
            log.info("index of %s is in use again; not removing it", model_id)
            return
        removed = 0
        while True:
            ctx.check()
            n = self.store.write(lambda c: index_switch.delete_vectors_batch(c, model_id))
            removed += n
            if n == 0:
                break
        self.store.write(lambda c: index_switch.drop_index(c, model_id))
        self.switch.retired(model_id)
        log.info("removed the retired index of %s (%d vectors)", model_id, removed)
        self.events.publish("index.retired", {"model_id": model_id, "vectors_removed": removed})
