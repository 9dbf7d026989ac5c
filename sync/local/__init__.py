"""The SQLite side of sync (:class:`sync.protocol.LocalSync`) over the sidecar's store.

Every write goes through the store's single writer (one transaction per call); reads use a
reader snapshot. Remote changes are written without outbox rows; conflicted copies and
re-queued dead letters get outbox rows like any local change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import apsw

from backend.errors import NotFound
from backend.ingest.blobs import BlobStore
from backend.osdeps.paths import ensure_private_dir
from backend.store import Store, kv, outbox
from backend.store import documents as doc_repo
from sync.local import incoming, outgoing, state
from sync.local.incoming import ApplyResult
from sync.local.outgoing import Device
from sync.protocol import InChunk, OutVersion, Prepared

TokenCounter = Callable[[Sequence[str]], list[int]]
HASH_CHUNK = 1024 * 1024


class SqliteSync:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        model_id: str,
        staging_dir: Path,
        count_tokens: TokenCounter | None = None,
        on_ingest_queued: Callable[[], None] | None = None,
        max_file_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.model_id = model_id
        self.staging_dir = staging_dir
        self._count_tokens = count_tokens
        self._on_ingest_queued = on_ingest_queued
        self.max_file_bytes = max_file_bytes
        self._device: Device | None = None
        self.tokenize_seconds = 0.0
        """Time spent counting tokens of pulled chunks (benchmarks report it apart from SQLite)."""

    # -- identity ---------------------------------------------------------------------------
    @property
    def device(self) -> Device:
        if self._device is None:
            device_id, name = self.store.write(state.ensure_device)
            self._device = Device(device_id, name)
        return self._device

    @property
    def device_id(self) -> str:
        return self.device.id

    def bind_account(self, user_id: str) -> None:
        _ = self.device
        self.store.write(lambda c: state.bind_account(c, user_id))

    # -- push -------------------------------------------------------------------------------
    def pending_documents(self, exclude: set[str], limit: int) -> list[str]:
        with self.store.read() as conn:
            return outgoing.pending_documents(conn, exclude, limit)

    def prepare(self, document_id: str, user_id: str) -> Prepared:
        device = self.device
        return self.store.write(lambda c: outgoing.prepare(c, document_id, device, self.model_id, self.blobs))

    def stage_file(self, v: OutVersion) -> tuple[Path, int, Callable[[], None]] | None:
        """The file to upload for ``v``. A user file indexed in place is copied aside while
        hashed (it may change while we read it); None when its bytes are not ``v``'s any more."""
        assert v.source is not None
        if not v.from_path:
            try:
                return v.source, v.source.stat().st_size, lambda: None
            except FileNotFoundError:
                return None
        ensure_private_dir(self.staging_dir)
        tmp = self.staging_dir / f"stage-{secrets.token_hex(8)}"
        digest, size = hashlib.sha256(), 0
        try:
            with v.source.open("rb") as src, tmp.open("wb") as dst:
                while data := src.read(HASH_CHUNK):
                    digest.update(data)
                    size += len(data)
                    dst.write(data)
        except OSError:
            tmp.unlink(missing_ok=True)
            return None
        if digest.hexdigest() != v.fields.get("sha256"):
            tmp.unlink(missing_ok=True)
            return None
        return tmp, size, lambda: tmp.unlink(missing_ok=True)

    def dead_letter(self, v: OutVersion, stage: str, code: str, message: str, detail: dict[str, Any]) -> None:
        self.store.write(lambda c: outgoing.dead_letter(c, v, stage, code, message, detail))

    def push_done(
        self,
        v: OutVersion,
        current: Mapping[str, Any],
        copy_of: Mapping[str, Any] | None,
        copy_blob: tuple[str, int] | None,
    ) -> str | None:
        device = self.device
        copy_id = self.store.write(lambda c: outgoing.push_done(c, device, v, current, copy_of, copy_blob))
        if copy_id is not None and self._on_ingest_queued is not None:
            self._on_ingest_queued()
        return copy_id

    def push_lost(
        self,
        v: OutVersion,
        current: Mapping[str, Any],
        chunks: list[InChunk] | None,
        blob_key: str | None,
        make_copy: bool,
    ) -> tuple[bool, str | None]:
        device = self.device
        counted = self._with_tokens({str(current["id"]): chunks}) if chunks else {}
        chunk_list = counted.get(str(current["id"]), chunks)
        return self.store.write(
            lambda c: outgoing.push_lost(c, device, v, current, chunk_list, blob_key, make_copy, self.model_id)
        )

    # -- pull -------------------------------------------------------------------------------
    def cursor(self) -> str | None:
        with self.store.read() as conn:
            return kv.get(conn, state.CURSOR)

    def needs_content(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        with self.store.read() as conn:
            return incoming.needs_content(conn, rows)

    def blob_size(self, sha256: str) -> int | None:
        try:
            return self.blobs.path_of(sha256).stat().st_size
        except (FileNotFoundError, ValueError):
            return None

    def _with_tokens(self, chunks: Mapping[str, list[InChunk] | None]) -> dict[str, list[InChunk]]:
        flat = [c for cs in chunks.values() if cs for c in cs]
        if self._count_tokens is None or not flat:
            return {k: list(v or []) for k, v in chunks.items()}
        t0 = time.perf_counter()
        counts = iter(self._count_tokens([c.text for c in flat]))
        self.tokenize_seconds += time.perf_counter() - t0
        return {k: [dataclasses.replace(c, token_count=next(counts)) for c in (v or [])] for k, v in chunks.items()}

    def apply_pulled(
        self,
        rows: Sequence[Mapping[str, Any]],
        chunks: Mapping[str, list[InChunk]],
        blobs: Mapping[str, tuple[str, int]],
        next_cursor: str | None,
    ) -> ApplyResult:
        counted = self._with_tokens(chunks) if chunks else {}
        result: ApplyResult = self.store.write(
            lambda c: incoming.apply_pulled(c, rows, counted, blobs, self.model_id, next_cursor)
        )
        for key in result.removed_blobs:
            with self.store.read() as conn:
                used = incoming.blob_in_use(conn, key)
            if not used:
                self.blobs.delete(key)
        return result

    # -- blobs ------------------------------------------------------------------------------
    def blob_writer(self) -> Any:
        return self.blobs.writer(self.max_file_bytes)

    # -- bookkeeping for the service and the API ----------------------------------------------
    def record_outcome(self, ok: bool, detail: dict[str, Any]) -> None:
        key = state.LAST_SUCCESS if ok else state.LAST_ERROR
        value = json.dumps({"at": time.time(), **detail}, default=str)
        self.store.write(lambda c: kv.put(c, key, value))

    def summary(self) -> dict[str, Any]:
        with self.store.read() as conn:
            counts = state.counts(conn)
            last_ok = kv.get(conn, state.LAST_SUCCESS)
            last_error = kv.get(conn, state.LAST_ERROR)
            device_id = kv.get(conn, state.DEVICE_ID)
        return {
            **counts,
            "device_id": device_id,
            "last_success": json.loads(last_ok) if last_ok else None,
            "last_error": json.loads(last_error) if last_error else None,
        }

    def dead_letters(self, limit: int, before: int | None) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return state.dead_letters(conn, limit, before)

    def conflicts(self, limit: int, before: int | None) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return state.conflicts(conn, limit, before)

    def retry_dead_letter(self, letter_id: int) -> dict[str, Any]:
        """Queue the dead-lettered document again (a new version, new change ids)."""

        def write(conn: apsw.Connection) -> dict[str, Any]:
            row = conn.execute("SELECT entity_id, op FROM sync_dead_letters WHERE id = ?", (letter_id,)).fetchone()
            if row is None:
                raise NotFound(f"no dead letter {letter_id}", detail={"id": letter_id})
            doc_id = str(row[0])
            conn.execute("DELETE FROM sync_dead_letters WHERE id = ?", (letter_id,))
            doc = doc_repo.get(conn, doc_id)
            if doc is not None:
                outbox.record(conn, "document", doc_id, "upsert", doc.sync_payload())
            else:
                outbox.record(conn, "document", doc_id, "delete", {"id": doc_id})
            return {"id": letter_id, "document_id": doc_id, "requeued": True}

        return self.store.write(write)

    def share_target(self, doc_id: str) -> tuple[bool, str | None, bool]:
        """(document exists, storage key of its synced file, local changes pending)."""
        with self.store.read() as conn:
            doc = doc_repo.get(conn, doc_id)
            sd = state.get_doc(conn, doc_id)
            pending = state.has_pending(conn, doc_id)
        if doc is None:
            return False, None, pending
        key = sd.storage_key if sd is not None and sd.base is not None and not sd.base_deleted else None
        return True, key, pending

    def attach_blob(self, doc_id: str, sha256: str) -> doc_repo.Document | None:
        """A downloaded original file for a synced document (on-demand download)."""

        def write(conn: apsw.Connection) -> doc_repo.Document | None:
            conn.execute(
                "UPDATE documents SET blob_key = ? WHERE id = ? AND sha256 = ? AND blob_key IS NULL AND path IS NULL",
                (sha256, doc_id, sha256),
            )
            return doc_repo.get(conn, doc_id)

        return self.store.write(write)


__all__ = ["Device", "SqliteSync"]
