"""Supabase as the engine's :class:`sync.protocol.Remote`: one project, one signed-in user."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from sync.protocol import InChunk
from sync.session import Session, SessionManager, SessionStore
from sync.supabase.auth import AuthClient
from sync.supabase.http import SupabaseHttp
from sync.supabase.rest import MAX_PAGE, Match, RestClient, WireChunk
from sync.supabase.retry import RetryPolicy
from sync.supabase.storage import TUS_CHUNK, Sink, StorageClient


class BlobWriterLike(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> tuple[str, int]: ...

    def abort(self) -> None: ...


def to_in_chunk(c: WireChunk) -> InChunk:
    emb = None if c.embedding is None else np.asarray(c.embedding, dtype=np.float32)
    return InChunk(c.ordinal, c.text, c.char_start, c.char_end, c.page, list(c.heading_path), c.model_id, emb)


class SupabaseRemote:
    def __init__(
        self,
        http: SupabaseHttp,
        manager: SessionManager,
        blob_writer: Callable[[], BlobWriterLike],
        *,
        tus_chunk: int = TUS_CHUNK,
    ) -> None:
        self.http = http
        self.manager = manager
        self.auth = AuthClient(http)
        self.rest = RestClient(http)
        self.storage = StorageClient(http, tus_chunk=tus_chunk)
        self._blob_writer = blob_writer

    @property
    def user_id(self) -> str:
        return self.manager.user_id

    def close(self) -> None:
        self.http.close()

    # -- Remote protocol ----------------------------------------------------------------------
    def push(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.rest.push(changes)

    def pull(self, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None, bool]:
        page = self.rest.pull(cursor, limit)
        return page.changes, page.next_cursor, page.has_more

    def pull_chunks(self, versions: Sequence[Mapping[str, Any]]) -> dict[str, list[InChunk]]:
        """All chunks of these document versions (every requested id gets an entry)."""
        out: dict[str, list[InChunk]] = {str(v["id"]): [] for v in versions}
        wanted = [
            {"id": str(v["id"]), "hlc": int(v["hlc"]), "origin_device": str(v["origin_device"])} for v in versions
        ]
        for start in range(0, len(wanted), MAX_PAGE):
            part = wanted[start : start + MAX_PAGE]
            cursor: str | None = None
            while True:
                page = self.rest.pull_chunks(part, cursor, MAX_PAGE)
                for c in page.chunks:
                    out.setdefault(c.document_id, []).append(to_in_chunk(c))
                if not page.has_more:
                    break
                cursor = page.next_cursor
        return out

    def upload(self, key: str, path: Path, size: int, mime: str) -> bool:
        return self.storage.upload(key, path, size, mime)

    def download(self, key: str) -> tuple[str, int]:
        """Stream the object into the local blob store (a fresh temp file per attempt)."""
        holder: list[BlobWriterLike] = []

        def open_sink() -> tuple[Sink, Callable[[], None]]:
            for old in holder:
                old.abort()
            holder.clear()
            writer = self._blob_writer()
            holder.append(writer)
            return writer, writer.abort

        try:
            self.storage.download(key, open_sink)
            return holder[-1].commit()
        finally:
            for w in holder:
                w.abort()

    # -- beyond the engine --------------------------------------------------------------------
    def sign(self, key: str, expires_in: int) -> str:
        return self.storage.sign(key, expires_in)

    def match_chunks(
        self, embedding: Sequence[float], count: int = 10, scope: str | None = None, min_similarity: float | None = None
    ) -> list[Match]:
        return self.rest.match_chunks(embedding, count, scope, min_similarity)


def open_remote(
    session: Session,
    store: SessionStore,
    policy: RetryPolicy,
    blob_writer: Callable[[], BlobWriterLike],
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] | None = None,
    on_change: Callable[[Session], None] | None = None,
    tus_chunk: int = TUS_CHUNK,
) -> SupabaseRemote:
    """Clients for ``session`` (no connection is opened until the first call)."""
    http = SupabaseHttp(session.supabase_url, session.anon_key, policy, transport=transport, sleep=sleep)
    manager = SessionManager(store, session, AuthClient(http), on_change=on_change)
    http.tokens = manager
    return SupabaseRemote(http, manager, blob_writer, tus_chunk=tus_chunk)
