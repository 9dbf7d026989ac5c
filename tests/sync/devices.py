"""Two (or more) local sidecars for sync tests: real ``Services`` instances (store, model,
ingest pipeline, sync) in their own data dirs, driven through their library APIs."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from backend.services import Services
from backend.settings import Settings
from backend.store import documents as doc_repo
from backend.store import vectors as vector_repo
from tests.supabase_gateway import Gateway

FAST_SYNC = {
    "sync_auto": False,
    "sync_backoff_initial_s": 0.005,
    "sync_backoff_max_s": 0.05,
    "sync_retry_attempts": 10,
    "sync_connectivity_poll_s": 3600.0,
}


class SwitchTransport(httpx.BaseTransport):
    """The device's network: off (connection refused, as on a plane) or on; optionally runs a
    hook before the n-th request (token expiry in the middle of a batch)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.online = True
        self.requests = 0
        self._hooks: list[tuple[int, Callable[[httpx.Request], None]]] = []

    def at_request(self, n: int, hook: Callable[[httpx.Request], None]) -> None:
        """Run ``hook`` just before the n-th request from now (1 = the next one)."""
        with self._lock:
            self._hooks.append((self.requests + n, hook))

    def clear_hooks(self) -> None:
        with self._lock:
            self._hooks.clear()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests += 1
            due = [h for at, h in self._hooks if at == self.requests]
            self._hooks = [(at, h) for at, h in self._hooks if at > self.requests]
            online = self.online
        for hook in due:
            hook(request)
        if not online:
            raise httpx.ConnectError("network is unreachable (device offline)", request=request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class Device:
    root: Path
    name: str
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    transport: SwitchTransport = field(default_factory=SwitchTransport)
    services: Services | None = None

    def start(self) -> Device:
        settings = Settings.load({}, {"data_dir": self.root / self.name, **FAST_SYNC, **self.settings_overrides})
        self.services = Services(settings, sync_transport=self.transport)
        self.services.start()
        assert self.services.embedding.wait_ready(60), self.services.embedding.summary()
        # warm up what the first ingest would otherwise start lazily (extraction child, tokenizer)
        self.services.ingest.extractor.start()  # type: ignore[attr-defined]
        _ = self.services.ingest.pipeline.chunker.tokenizer
        return self

    def stop(self) -> None:
        if self.services is not None:
            self.services.stop()
            self.services = None

    @property
    def sv(self) -> Services:
        assert self.services is not None
        return self.services

    # -- session ------------------------------------------------------------------------------
    def sign_in(self, gw: Gateway, email: str, password: str) -> dict[str, Any]:
        return self.sv.sync.configure(gw.url, gw.anon_key, email=email, password=password)

    # -- local operations (the same library calls the HTTP API makes) ---------------------------
    def add(self, text: str, filename: str = "note.txt", scope: str = "default") -> str:
        key, size = self.sv.ingest.blobs.put_file(io.BytesIO(text.encode("utf-8")), 10_000_000)
        doc, _ = self.sv.ingest.add_upload(key, size, filename, scope, ())
        return doc.id

    def edit(self, doc_id: str, text: str) -> None:
        """New content for a document (what re-uploading a new version of the file does)."""
        key, size = self.sv.ingest.blobs.put_file(io.BytesIO(text.encode("utf-8")), 10_000_000)
        self.sv.store.write(lambda c: doc_repo.update(c, doc_id, sync=False, blob_key=key, sha256=key, size=size))
        self.sv.ingest.reindex(doc_id)

    def rename(self, doc_id: str, filename: str) -> None:
        self.sv.store.write(lambda c: doc_repo.update(c, doc_id, filename=filename, title=filename))

    def delete(self, doc_id: str) -> None:
        self.sv.ingest.delete(doc_id)

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sv.store.read() as c:
                busy = c.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
            if busy == 0 and self.sv.ingest.worker.current_job is None:
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.name}: ingest did not finish")

    def sync(self) -> dict[str, Any]:
        return self.sv.sync.run_once()

    def wipe(self) -> None:
        """Back to an empty index with no sync state (as a fresh data dir, minus the model load
        and the extraction process start): signs out and deletes every document."""
        self.wait_idle()
        self.sv.sync.sign_out()
        self.transport.online = True
        self.transport.clear_hooks()

        def clear(c: Any) -> None:
            vector_repo.delete_chunks(c, [int(r[0]) for r in c.execute("SELECT id FROM chunks")])
            for table in ("documents", "outbox", "jobs", "sync_documents", "sync_dead_letters", "sync_conflicts"):
                c.execute(f"DELETE FROM {table}")
            c.execute(
                "DELETE FROM kv WHERE key IN ('sync.cursor', 'sync.user_id', 'sync.last_success', 'sync.last_error')"
            )

        self.sv.store.write(clear)
        assert self.live_ids() == [] and self.outbox_count() == 0

    # -- observations -------------------------------------------------------------------------
    def live_ids(self) -> list[str]:
        with self.sv.store.read() as c:
            return [str(r[0]) for r in c.execute("SELECT id FROM documents ORDER BY created_at, id")]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Documents as the index holds them: metadata, chunk texts and vectors."""
        out: dict[str, dict[str, Any]] = {}
        with self.sv.store.read() as c:
            for doc_id, filename, title, scope, sha, mime, size, status in c.execute(
                "SELECT id, filename, title, scope, indexed_sha256, mime, size, status FROM documents"
            ):
                out[str(doc_id)] = {
                    "filename": filename, "title": title or None, "scope": scope, "sha256": sha,
                    "mime": mime or "application/octet-stream", "size": size or 0, "status": status,
                    "chunks": [], "vectors": [],
                }  # fmt: skip
            for doc_id, ordinal, text, start, end, heading, vec in c.execute(
                "SELECT c.document_id, c.ordinal, c.text, c.char_start, c.char_end, c.heading_path, e.vector "
                "FROM chunks c LEFT JOIN embeddings e ON e.chunk_id = c.id ORDER BY c.document_id, c.ordinal"
            ):
                out[str(doc_id)]["chunks"].append((ordinal, text, start, end, heading))
                out[str(doc_id)]["vectors"].append(None if vec is None else np.frombuffer(vec, dtype="<f4").copy())
        return out

    def outbox_count(self) -> int:
        with self.sv.store.read() as c:
            return int(c.execute("SELECT count(*) FROM outbox").fetchone()[0])


def start_devices(factory: Callable[..., Device], *names: str, **settings: Any) -> list[Device]:
    """Start several devices at once (each start loads a model and an extraction process)."""
    out: dict[str, Device] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            out[name] = factory(name, **settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"start-{n}") for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [out[n] for n in names]


def cloud_snapshot(
    gw_admin_query: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], user_id: str
) -> dict[str, dict[str, Any]]:
    """The user's current, non-deleted documents and chunks in the cloud (read as the DB owner)."""
    docs: dict[str, dict[str, Any]] = {}
    for doc_id, filename, title, scope, sha, mime, size in gw_admin_query(
        "select id::text, filename, title, scope, sha256, mime, size from public.documents "
        "where user_id = %s and not deleted",
        (user_id,),
    ):
        docs[doc_id] = {"filename": filename, "title": title or None, "scope": scope, "sha256": sha, "mime": mime,
                        "size": size, "chunks": [], "vectors": []}  # fmt: skip
    for doc_id, ordinal, text, start, end, heading, vec in gw_admin_query(
        "select c.document_id::text, c.ordinal, c.text, c.char_start, c.char_end, array_to_string(c.heading_path, ' > '), "
        "c.embedding::real[] from public.chunks c join public.documents d on d.id = c.document_id "
        "and d.hlc = c.doc_hlc and d.origin_device = c.doc_device "
        "where c.user_id = %s and not d.deleted order by c.document_id, c.ordinal",
        (user_id,),
    ):
        docs[doc_id]["chunks"].append((ordinal, text, start, end, heading))
        docs[doc_id]["vectors"].append(None if vec is None else np.asarray(vec, dtype=np.float32))
    return docs
