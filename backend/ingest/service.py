"""IngestService: the library API the HTTP handlers, the watcher and the CLI share.

Owns the blob store, the extraction child process, the chunker, the pipeline and the job
worker. Adding a document is one write transaction (document row + outbox row + job row), so
an acknowledged upload or path is never lost; the work itself happens on the worker thread.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import apsw

from backend.components import ComponentState, StatusCell
from backend.errors import Conflict, NotFound, TooManyRequests, Unavailable, ValidationFailed
from backend.events import EventBus
from backend.ingest.backfill import EmbedMissing
from backend.ingest.blobs import BlobStore
from backend.ingest.chunker import Chunker
from backend.ingest.index_tx import (
    delete_document,
    ensure_embed_missing_job,
    queue_ingest,
    restore_after_cancel,
    set_scope,
)
from backend.ingest.names import safe_filename
from backend.ingest.pipeline import LOADING_STATES, EmbedderSource, Extractor, IngestPipeline
from backend.ingest.worker import Handler, JobWorker, OutcomeObserver
from backend.osdeps.paths import is_system_path
from backend.store import Store, jobs
from backend.store import documents as doc_repo
from backend.store.documents import Document

log = logging.getLogger("docsidecar.ingest")

MAX_SCOPE_LEN = 200
MAX_TAGS = 64
MAX_TAG_LEN = 100


def check_scope(scope: str | None) -> str:
    value = (scope or "default").strip()
    if not value or len(value) > MAX_SCOPE_LEN or "\x00" in value:
        raise ValidationFailed(f"scope must be 1..{MAX_SCOPE_LEN} characters without NUL", detail={"field": "scope"})
    return value


def check_tags(tags: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    out = []
    for tag in tags or ():
        t = tag.strip()
        if not t or len(t) > MAX_TAG_LEN or "\x00" in t:
            raise ValidationFailed(
                f"each tag must be 1..{MAX_TAG_LEN} characters without NUL",
                detail={"field": "tags"},
            )
        out.append(t)
    if len(set(out)) > MAX_TAGS:
        raise ValidationFailed(f"at most {MAX_TAGS} tags", detail={"field": "tags"})
    return tuple(sorted(set(out)))


class IngestService:
    name = "ingest"

    def __init__(
        self,
        store: Store,
        events: EventBus,
        embedding: EmbedderSource,
        extractor: Extractor,
        chunker: Chunker,
        blobs: BlobStore,
        *,
        data_dir: Path,
        max_file_bytes: int,
        max_queued: int,
        retry_base_s: float = jobs.DEFAULT_RETRY_BASE_S,
        job_handlers: dict[str, Handler] | None = None,
        on_job_outcome: OutcomeObserver | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.embedding = embedding
        self.extractor = extractor
        self.blobs = blobs
        self.data_dir = data_dir
        self.max_file_bytes = max_file_bytes
        self.max_queued = max_queued
        self.pipeline = IngestPipeline(store, blobs, extractor, chunker, embedding, events)
        handlers: dict[str, Handler] = {
            "ingest": self.pipeline.run,
            "embed_missing": EmbedMissing(store, embedding, events).run,
        }
        self.worker = JobWorker(
            store,
            events,
            {**handlers, **(job_handlers or {})},  # + other packages' job kinds
            gates={"ingest": self._model_settled, "embed_missing": self._model_ready},
            retry_base_s=retry_base_s,
            on_outcome=on_job_outcome,  # metrics
        )
        self.status = StatusCell()

    def _model_settled(self) -> bool:
        """Ingest waits while the model loads (then runs with it, or keyword-only if it failed),
        and while the tokenizer chunking needs cannot be loaded (model files missing)."""
        return self.embedding.state not in LOADING_STATES and not self.pipeline.chunker.unavailable

    def _model_ready(self) -> bool:
        return self.embedding.state == "ready"

    def start(self) -> None:
        removed = self.blobs.clean_temp()
        if removed:
            log.info("removed %d partial upload(s) left by a crash", removed)
        orphans = self.store.write(self._drop_orphan_blobs)
        if orphans:
            log.info("removed %d stored upload(s) no document refers to (crash before registration)", orphans)
        self.worker.start()
        self.status.set(ComponentState.READY, {"paused": self.worker.paused})

    def _drop_orphan_blobs(self, conn: apsw.Connection) -> int:
        used = {str(r[0]) for r in conn.execute("SELECT DISTINCT blob_key FROM documents WHERE blob_key IS NOT NULL")}
        orphans = [k for k in self.blobs.stored_keys() if k not in used]
        for key in orphans:
            self.blobs.delete(key)
        return len(orphans)

    def stop(self) -> None:
        self.worker.stop()
        stop = getattr(self.extractor, "stop", None)
        if stop is not None:
            stop()
        self.status.set(ComponentState.STOPPED)

    # -- adding documents ------------------------------------------------------------------
    def queued_jobs(self) -> int:
        with self.store.read() as conn:
            return jobs.count_queued(conn)

    def folder_limit(self) -> int:
        """Queued jobs up to which watched folders may add files: ``max_queued`` minus a reserve
        of 10 % kept for what the user adds (uploads, paths, reindex), so a big folder never
        locks them out. A folder with more new files admits them in slices as the queue drains
        (:mod:`backend.watch.service`); the rest wait on disk, not in memory."""
        return max(1, self.max_queued - self.max_queued // 10)

    def folder_room(self) -> int:
        """How many more jobs watched folders may queue now."""
        return max(0, self.folder_limit() - self.queued_jobs())

    def _check_backpressure(self) -> None:
        """429 with ``Retry-After`` when the queue is at its limit: every path by which a user
        queues work (upload, local path, reindex) calls this first; watched folders are held
        to :meth:`folder_limit` instead (nobody to answer 429 to). Checked before the write, so
        concurrent requests can overshoot the limit by at most their number."""
        self.store.disk.refuse_if_full()  # 507 while the data dir's disk is full (backend/maintenance)
        queued = self.queued_jobs()
        if queued >= self.max_queued:
            raise TooManyRequests(
                f"the ingest queue holds {queued} jobs (limit {self.max_queued}); retry later",
                detail={"queued": queued, "limit": self.max_queued},
                headers={"Retry-After": "5"},
            )

    def add_upload(
        self, blob_key: str, size: int, filename: str, scope: str, tags: tuple[str, ...]
    ) -> tuple[Document, jobs.Job]:
        """Register an uploaded file (already in the blob store) and queue its ingest."""
        doc, job, _ = self.add_upload_once(blob_key, size, filename, scope, tags)
        return doc, job

    def add_upload_once(
        self, blob_key: str, size: int, filename: str, scope: str, tags: tuple[str, ...]
    ) -> tuple[Document, jobs.Job, bool]:
        """Like :meth:`add_upload`, but the same bytes uploaded again into the same scope return
        the existing document (third value ``True``), so a client retrying an upload whose
        answer it never got cannot create duplicates."""
        if size == 0:
            self._drop_blob_if_unused(blob_key)
            raise ValidationFailed("the uploaded file is empty", detail={"field": "file", "filename": filename})
        self._check_backpressure()
        name = safe_filename(filename or "upload")

        def write(conn: apsw.Connection) -> tuple[Document, jobs.Job, bool]:
            if not self.blobs.exists(blob_key):
                raise Unavailable("the stored upload was removed concurrently; upload the file again")
            row = conn.execute(
                "SELECT id FROM documents WHERE source = 'upload' AND blob_key = ? AND scope = ? "
                "ORDER BY created_at LIMIT 1",
                (blob_key, scope),
            ).fetchone()
            if row is not None:
                existing = doc_repo.get(conn, str(row[0]))
                assert existing is not None
                job = jobs.latest_for_document(conn, existing.id, "ingest")
                if job is None or job.state in {"failed", "cancelled"}:
                    job = jobs.enqueue(conn, "ingest", document_id=existing.id)
                return existing, job, True
            doc = doc_repo.insert(
                conn, doc_id=doc_repo.new_id(), scope=scope, source="upload", filename=name,
                size=size, sha256=blob_key, blob_key=blob_key, tags=tags,
            )  # fmt: skip
            return doc, jobs.enqueue(conn, "ingest", document_id=doc.id), False

        doc, job, duplicate = self.store.write(write)
        if duplicate:
            self.worker.notify()
            return doc, job, True
        self._added((doc, job))
        return doc, job, False

    def add_path(self, raw_path: str, scope: str, tags: tuple[str, ...]) -> tuple[Document, jobs.Job]:
        """Index a local file in place (referenced, not copied)."""
        path = self.check_local_file(raw_path)
        self._check_backpressure()

        def write(conn: apsw.Connection) -> tuple[Document, jobs.Job]:
            existing = doc_repo.by_path(conn, str(path))
            if existing is not None:
                if existing.source == "folder":
                    raise Conflict(
                        "this file is already indexed through a watched folder",
                        detail={"document_id": existing.id},
                    )
                set_scope(conn, existing.id, scope)
                doc_repo.set_tags(conn, existing.id, tags)
                job = jobs.active_for_document(conn, existing.id, "ingest", ("queued",))
                current = doc_repo.get(conn, existing.id)
                assert current is not None
                return current, job or jobs.enqueue(conn, "ingest", document_id=existing.id)
            st = path.stat()
            doc = doc_repo.insert(
                conn, doc_id=doc_repo.new_id(), scope=scope, source="path", filename=path.name,
                path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns, tags=tags,
            )  # fmt: skip
            return doc, jobs.enqueue(conn, "ingest", document_id=doc.id)

        return self._added(self.store.write(write))

    def _added(self, result: tuple[Document, jobs.Job]) -> tuple[Document, jobs.Job]:
        doc, job = result
        self.worker.notify()
        self.events.publish("job.queued", {"job_id": job.id, "kind": job.kind, "document_id": doc.id})
        return doc, job

    def check_local_file(self, raw_path: str) -> Path:
        """Resolve a path from a request and refuse what must not be indexed.

        Must be absolute; symlinks are resolved; the target must be an existing regular file
        (no devices, FIFOs or directories), within the size limit, and outside the data dir
        (the sidecar never indexes its own database, token or copies).
        """
        if not raw_path or "\x00" in raw_path:
            raise ValidationFailed("path must be a non-empty string without NUL bytes", detail={"field": "path"})
        candidate = Path(raw_path).expanduser()
        if not candidate.is_absolute():
            raise ValidationFailed("path must be absolute", detail={"field": "path", "path": raw_path})
        try:
            resolved = candidate.resolve(strict=True)
            st = resolved.stat()
        except FileNotFoundError as exc:
            raise NotFound(f"no such file: {raw_path}", detail={"path": raw_path}) from exc
        except OSError as exc:
            raise ValidationFailed(f"cannot access {raw_path}: {exc.strerror}", detail={"path": raw_path}) from exc
        if not stat.S_ISREG(st.st_mode):
            raise ValidationFailed("path is not a regular file", detail={"path": raw_path})
        data_dir = self.data_dir.resolve()
        if resolved == data_dir or data_dir in resolved.parents:
            raise ValidationFailed("files inside the sidecar's data dir cannot be indexed", detail={"path": raw_path})
        if is_system_path(resolved):
            raise ValidationFailed(
                "files of the operating system's virtual file systems cannot be indexed",
                detail={"path": raw_path, "resolved": str(resolved)},
            )
        if st.st_size > self.max_file_bytes:
            raise ValidationFailed(
                f"file is {st.st_size} bytes, over the limit of {self.max_file_bytes}",
                detail={"path": raw_path, "size": st.st_size, "limit": self.max_file_bytes},
            )
        if not os.access(resolved, os.R_OK):
            raise ValidationFailed("file is not readable", detail={"path": raw_path})
        return resolved

    # -- other operations --------------------------------------------------------------------
    def delete(self, doc_id: str) -> Document:
        def write(conn: apsw.Connection) -> Document | None:
            current = doc_repo.get(conn, doc_id)
            if current is not None and current.source == "folder" and current.folder_id is not None:
                raise Conflict(
                    "this document mirrors a file in a watched folder; delete the file or add an exclude "
                    "glob to the folder instead",
                    detail={"document_id": doc_id, "folder_id": current.folder_id, "path": current.path},
                )
            return delete_document(conn, doc_id)

        doc = self.store.write(write)
        if doc is None:
            raise NotFound(f"no document {doc_id}", detail={"document_id": doc_id})
        if doc.blob_key:
            self._drop_blob_if_unused(doc.blob_key)
        self.events.publish("document.removed", {"document_id": doc_id, "reason": "deleted"})
        return doc

    def discard_upload(self, key: str) -> None:
        """Remove a stored upload that was refused (unless a document uses the same bytes)."""
        self._drop_blob_if_unused(key)

    def _drop_blob_if_unused(self, key: str) -> None:
        """Runs on the writer thread, so it is serialised with ``add_upload_once``'s check that
        the blob exists: a concurrent upload of the same bytes either sees its blob or a 503."""

        def write(conn: apsw.Connection) -> None:
            if conn.execute("SELECT 1 FROM documents WHERE blob_key = ? LIMIT 1", (key,)).fetchone() is None:
                self.blobs.delete(key)

        self.store.write(write)

    def reindex(self, doc_id: str) -> jobs.Job:
        with self.store.read() as conn:
            if doc_repo.get(conn, doc_id) is None:
                raise NotFound(f"no document {doc_id}", detail={"document_id": doc_id})
        self._check_backpressure()

        def write(conn: apsw.Connection) -> jobs.Job:
            if doc_repo.get(conn, doc_id) is None:
                raise NotFound(f"no document {doc_id}", detail={"document_id": doc_id})
            conn.execute("UPDATE documents SET indexed_sha256 = NULL WHERE id = ?", (doc_id,))
            return queue_ingest(conn, doc_id)

        job = self.store.write(write)
        self.worker.notify()
        return job

    def cancel_job(self, job_id: int) -> jobs.Job:
        def write(conn: apsw.Connection) -> jobs.Job | None:
            before = jobs.get(conn, job_id)
            job = jobs.cancel(conn, job_id)
            if before is not None and before.state == "queued" and job is not None and job.document_id:
                current = doc_repo.get(conn, job.document_id)
                if current is not None and job.kind == "ingest":
                    restore_after_cancel(conn, current.id, current.status)
            return job

        job = self.store.write(write)
        if job is None:
            raise NotFound(f"no job {job_id}", detail={"job_id": job_id})
        if job.state == "running":
            self.worker.cancel_running(job_id)
        elif job.state != "cancelled":
            raise Conflict(f"job {job_id} is already {job.state}", detail={"state": job.state})
        else:
            self.events.publish("job.cancelled", {"job_id": job_id, "document_id": job.document_id})
        return job

    def queue_state(self) -> dict[str, Any]:
        current = self.worker.current_job
        with self.store.read() as conn:
            counts = jobs.counts_by_state(conn)
            current = jobs.get(conn, current.id) if current else None  # with its stored progress
        return {
            "paused": self.worker.paused,
            "held_for": self.worker.held_for,  # "disk space" while the data dir's disk is full
            "queued": counts.get("queued", 0),
            "running": current.to_dict() if current else None,
            "limit": self.max_queued,
            "stats": dict(self.pipeline.stats),
        }


__all__ = ["IngestService", "check_scope", "check_tags", "ensure_embed_missing_job"]
