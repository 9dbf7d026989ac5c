"""The ingest pipeline for one document: source → hash → extract → chunk → embed → store.

Stages and the durable document status they leave behind::

    queued ─▶ extracted ─▶ chunked ─▶ embedded        (failed | unsupported | no_text + reason)

Only the last step writes chunks, and it writes them together with their FTS rows, their
vectors, the document row and the index generation in ONE transaction, so search never sees
a half-indexed document and a crash at any point leaves either the old or the new version.

Work avoided: a file whose sha256 equals the indexed content is not re-extracted (editors
and cloud-sync clients touch mtimes without changing bytes); chunk vectors are looked up by
chunk-text hash before embedding, so an edit re-embeds only the chunks whose text changed.
When the embedding model is not available the chunks are still stored (keyword search works)
and an ``embed_missing`` job fills the vectors in once the model is ready.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import apsw
import numpy as np
import numpy.typing as npt

from backend.errors import SidecarError, Unavailable
from backend.events import EventBus
from backend.ingest.blobs import BlobStore
from backend.ingest.chunker import Chunker
from backend.ingest.extract import ExtractedDocument, SourceGone, SourceUnreadable
from backend.ingest.index_tx import (
    WAITING_FOR_MODEL,
    ensure_embed_missing_job,
    refresh_vector_meta,
    remove_chunks,
    replace_chunks,
    restore_after_cancel,
)
from backend.store import Store, jobs
from backend.store import chunks as chunk_repo
from backend.store import documents as doc_repo
from backend.store.chunks import NewChunk
from backend.store.documents import Document

log = logging.getLogger("docsidecar.ingest")

HASH_CHUNK = 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
LOADING_STATES = frozenset({"idle", "starting"})
TOKENIZER_RETRY_S = 1.0
"""A document that cannot be chunked because the model files are missing goes back to the queue
for this long, costing no attempt; meanwhile the ingest gate holds every ingest job back
(``Chunker.unavailable``) until the files are back (``docsidecar models fetch``)."""


class JobCancelled(Exception):
    """The job was cancelled while it ran; nothing it did is committed."""


class JobInterrupted(Exception):
    """The worker is stopping (orderly shutdown): the job goes back to the queue unchanged and
    runs again at the next start; nothing it did is committed and no attempt is counted."""


def _never() -> bool:
    return False


class Transient(Unavailable):
    """A failure worth retrying later (file locked, model loading, disk busy)."""

    code = "transient"


class WaitForModel(Unavailable):
    """The job cannot run until the embedding model is ready (no attempt is counted)."""

    code = "waiting_for_model"

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotARegularFile(OSError):
    """The path is now a FIFO, device or socket: never opened for reading (it could block)."""


class Extractor(Protocol):
    def extract(self, path: Path, *, name: str | None = None) -> ExtractedDocument: ...


class EmbedderSource(Protocol):
    """Where the pipeline gets the ready embedder (raises ``Unavailable`` while it is not)."""

    @property
    def embedder(self) -> Any: ...

    @property
    def model_id(self) -> str: ...

    @property
    def state(self) -> str: ...


@dataclass
class JobContext:
    """What a running job can ask of its worker: cancellation and progress reporting."""

    job: jobs.Job
    cancelled: Callable[[], bool]
    progress: Callable[[str, int, int, int], None]  # stage, done, total, bytes
    stopping: Callable[[], bool] = _never

    def check(self) -> None:
        if self.stopping():
            raise JobInterrupted
        if self.cancelled():
            raise JobCancelled


def file_fingerprint(path: Path) -> tuple[str, int, int]:
    """(sha256, size, mtime_ns) of a regular file, read in 1 MiB pieces.

    Raises ``FileNotFoundError``/``IsADirectoryError`` when the file is gone,
    :class:`NotARegularFile` for FIFOs and devices, other ``OSError`` for I/O problems."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "rb", closefd=False) as fh:
            while data := fh.read(HASH_CHUNK):
                digest.update(data)
                size += len(data)
        return digest.hexdigest(), size, st.st_mtime_ns
    finally:
        os.close(fd)


def file_sha256(path: Path) -> tuple[str, int]:
    sha, size, _ = file_fingerprint(path)
    return sha, size


class IngestPipeline:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        extractor: Extractor,
        chunker: Chunker,
        embedding: EmbedderSource,
        events: EventBus,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.extractor = extractor
        self.chunker = chunker
        self.embedding = embedding
        self.events = events
        self.stats: Counter[str] = Counter()
        """Since start: documents indexed/unchanged, chunks embedded/reused (worker thread only)."""

    # -- entry point for "ingest" jobs ------------------------------------------------------
    def run(self, ctx: JobContext) -> None:
        doc_id = ctx.job.document_id
        if doc_id is None:
            return
        with self.store.read() as conn:
            doc = doc_repo.get(conn, doc_id)
        if doc is None:
            return  # deleted while queued
        if self.embedding.state in LOADING_STATES:
            raise WaitForModel("the embedding model is still loading", retry_after=1.0)
        try:
            self._ingest(ctx, doc)
        except JobCancelled:
            self.store.write(lambda c: restore_after_cancel(c, doc.id, doc.status))
            raise
        except JobInterrupted:
            self.store.write(lambda c: restore_after_cancel(c, doc.id, doc.status, interrupted=True))
            raise

    def _ingest(self, ctx: JobContext, doc: Document) -> None:
        source = self._source_path(doc)
        try:
            sha, size, mtime_ns = file_fingerprint(source)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            self._source_gone(doc)
            return
        except NotARegularFile:
            self._not_indexable(doc, ExtractedDocument(mime=doc.mime or "", status="unsupported",
                                                       reason="not a regular file"))  # fmt: skip
            return
        except OSError as exc:
            raise Transient(f"cannot read {source}: {exc.strerror or exc}") from exc
        ctx.progress("hashing", 0, 0, size)
        if self._unchanged(doc, sha, size, mtime_ns):
            return
        ctx.check()
        try:
            extracted = self._extract(doc, source)
        except SourceGone:
            self._source_gone(doc)
            return
        if extracted.sha256 and extracted.sha256 != sha:  # the file changed while we read it
            sha = extracted.sha256
            if self._unchanged(doc, sha, size, mtime_ns):
                return
        self.store.write(lambda c: doc_repo.update(c, doc.id, sync=False, sha256=sha, size=size, mtime_ns=mtime_ns))
        if not extracted.ok:
            self._not_indexable(doc, extracted)
            return
        title = extracted.title or doc.filename
        self.store.write(lambda c: doc_repo.set_status(c, doc.id, "extracted", None, title=title, mime=extracted.mime))
        ctx.check()
        try:
            new_chunks = self.chunker.chunk(extracted)
        except Unavailable as exc:  # the model's tokenizer is missing: wait for it, costing no attempt
            raise WaitForModel(
                f"cannot chunk without the tokenizer: {exc.message}", retry_after=TOKENIZER_RETRY_S
            ) from exc
        if not new_chunks:
            empty = ExtractedDocument(mime=extracted.mime, status="no_text", reason="no text to index")
            self._not_indexable(doc, empty)
            return
        self.store.write(lambda c: doc_repo.set_status(c, doc.id, "chunked", None))
        ctx.progress("embedding", 0, len(new_chunks), size)
        vectors, model_id, embedded = self._vectors_for(new_chunks, ctx, size)
        ctx.check()
        warnings = "; ".join(extracted.warnings) or None
        self.store.write(lambda c: self._commit(c, doc.id, new_chunks, vectors, model_id, sha, warnings))
        ctx.progress("done", len(new_chunks), len(new_chunks), size)
        reused = len(new_chunks) - embedded
        self.stats.update(documents_indexed=1, chunks_embedded=embedded, chunks_reused=reused)
        kind = "document.updated" if doc.indexed_sha256 else "document.added"
        self.events.publish(
            kind,
            {"document_id": doc.id, "scope": doc.scope, "chunks": len(new_chunks), "embedded": embedded,
             "reused": reused, "status": "embedded" if model_id else "chunked"},
        )  # fmt: skip

    def _unchanged(self, doc: Document, sha: str, size: int, mtime_ns: int) -> bool:
        """Same bytes as the indexed version: record the new size/mtime, skip the work."""
        if sha != doc.indexed_sha256 or doc.status not in doc_repo.INDEXED_STATUSES:
            return False

        def write(conn: apsw.Connection) -> None:
            doc_repo.update(conn, doc.id, sync=False, size=size, mtime_ns=mtime_ns)
            if mtime_ns != doc.mtime_ns:
                refresh_vector_meta(conn, doc.id)

        self.store.write(write)
        self.stats.update(documents_unchanged=1)
        log.info("unchanged content, nothing to do", extra={"document_id": doc.id})
        return True

    # -- stages -------------------------------------------------------------------------
    def _source_path(self, doc: Document) -> Path:
        if doc.blob_key:
            return self.blobs.path_of(doc.blob_key)
        if doc.path:
            return Path(doc.path)
        raise SidecarError(f"document {doc.id} has neither a stored copy nor a path")

    def _extract(self, doc: Document, source: Path) -> ExtractedDocument:
        try:
            return self.extractor.extract(source, name=doc.filename)
        except SourceUnreadable as exc:
            raise Transient(exc.message) from exc

    def _vectors_for(
        self, new_chunks: list[NewChunk], ctx: JobContext, size: int
    ) -> tuple[dict[str, npt.NDArray[np.float32]], str | None, int]:
        """Vectors by chunk hash, reused where stored and embedded where not, plus how many
        texts were embedded. ``({}, None, 0)`` when no model is available."""
        try:
            embedder = self.embedding.embedder
        except Unavailable:
            return {}, None, 0
        model_id = embedder.model_id
        with self.store.read() as conn:
            known = chunk_repo.vectors_by_sha(conn, model_id, (c.sha256 for c in new_chunks))
        vectors = {sha: np.frombuffer(blob, dtype=np.float32) for sha, blob in known.items()}
        todo: dict[str, str] = {}
        for c in new_chunks:
            if c.sha256 not in vectors:
                todo.setdefault(c.sha256, c.text)
        reused = len(new_chunks) - len(todo)

        def on_progress(done: int, _total: int) -> None:
            ctx.progress("embedding", reused + done, len(new_chunks), size)
            ctx.check()

        if todo:
            try:
                embedded = embedder.embed(list(todo.values()), on_progress=on_progress)
            except Unavailable:
                return {}, None, 0
            for sha, vec in zip(todo, embedded, strict=True):
                vectors[sha] = vec
        return vectors, model_id, len(todo)

    def _commit(
        self,
        conn: apsw.Connection,
        doc_id: str,
        new_chunks: list[NewChunk],
        vectors: dict[str, npt.NDArray[np.float32]],
        model_id: str | None,
        sha: str,
        warnings: str | None,
    ) -> None:
        """The one transaction that makes the new version searchable. ``status_reason`` of an
        indexed document carries the extraction warnings (e.g. invalid UTF-8 replaced)."""
        doc = doc_repo.get(conn, doc_id)
        if doc is None:
            return  # deleted while we worked
        replace_chunks(conn, doc, new_chunks, vectors, model_id)
        status, reason = ("embedded", warnings) if model_id else ("chunked", WAITING_FOR_MODEL)
        doc_repo.update(
            conn, doc_id, status=status, status_reason=reason, indexed_sha256=sha,
            chunk_count=len(new_chunks), version=doc.version + 1,
        )  # fmt: skip
        if model_id is None:
            ensure_embed_missing_job(conn)

    def _not_indexable(self, doc: Document, extracted: ExtractedDocument) -> None:
        def write(conn: apsw.Connection) -> None:
            current = doc_repo.get(conn, doc.id)
            if current is None:
                return
            if current.chunk_count:
                remove_chunks(conn, doc.id)
            doc_repo.set_status(
                conn, doc.id, extracted.status, extracted.reason, mime=extracted.mime or current.mime,
                chunk_count=0, indexed_sha256=None,
            )  # fmt: skip

        self.store.write(write)
        self.stats.update(**{f"documents_{extracted.status}": 1})
        self.events.publish(
            "document.failed" if extracted.status == "failed" else "document.skipped",
            {"document_id": doc.id, "status": extracted.status, "reason": extracted.reason},
        )

    def _source_gone(self, doc: Document) -> None:
        """The file vanished before we read it. A watched folder's document is left to the
        watcher (the file may have been moved, which keeps the document); others record why."""
        reason = "file not found (moved or deleted?)"

        def write(conn: apsw.Connection) -> None:
            current = doc_repo.get(conn, doc.id)
            if current is not None and not (current.source == "folder" and current.chunk_count):
                doc_repo.set_status(conn, doc.id, "failed", reason)

        self.store.write(write)
        self.events.publish("document.failed", {"document_id": doc.id, "status": "failed", "reason": reason})
