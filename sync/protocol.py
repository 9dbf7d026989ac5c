"""What the sync engine works with: change records and the two sides it moves them between.

``LocalSync`` is the SQLite side (implemented by :mod:`sync.local`), ``Remote`` the Supabase
side (implemented by :class:`sync.supabase.remote.SupabaseRemote`). The engine
(:mod:`sync.engine`) only talks to these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sync.versions import Version, chunk_uuid, chunks_change_id, document_change_id

FloatVec = npt.NDArray[np.float32]

SETTLED_STATUSES = frozenset({"embedded", "synced", "failed", "unsupported", "no_text"})
"""Local document statuses that are final for a version: anything else is still being indexed
and is pushed once the ingest pipeline finished with it."""


@dataclass(frozen=True, slots=True)
class OutChunk:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: list[str]
    model_id: str
    embedding: FloatVec | None

    def to_json(self, doc_id: str, v: Version) -> dict[str, Any]:
        return {
            "id": chunk_uuid(doc_id, v, self.ordinal),
            "ordinal": self.ordinal,
            "text": self.text,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "page": self.page,
            "heading_path": self.heading_path,
            "model_id": self.model_id,
            "embedding": None if self.embedding is None else self.embedding.tolist(),
        }


@dataclass(frozen=True, slots=True)
class OutVersion:
    """One local document state, frozen as a version to push (files, then chunks, then row)."""

    document_id: str
    seq: int
    """Newest outbox seq this version covers; rows up to it are settled by the push result."""
    version: Version
    base: Version | None
    deleted: bool
    fields: dict[str, Any] = field(default_factory=dict)
    """scope, title, filename, mime, size, sha256 (empty for a tombstone)."""
    source: Path | None = None
    """Local file holding the bytes of ``fields['sha256']`` (None: no file here)."""
    from_path: bool = False
    """``source`` is a user file indexed in place (may change under us: verify while copying)."""
    known_key: str | None = None
    """The object already known to be in Storage for this document."""
    chunks: list[OutChunk] = field(default_factory=list)

    def document_json(self, storage_key: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.document_id, "hlc": self.version.hlc,
                               "origin_device": self.version.device, "deleted": self.deleted}  # fmt: skip
        if not self.deleted:
            doc.update(self.fields)
            doc["storage_key"] = storage_key
        return doc

    def document_change(self, storage_key: str | None) -> dict[str, Any]:
        return {
            "change_id": document_change_id(self.document_id, self.version),
            "kind": "document",
            "base_hlc": self.base.hlc if self.base else None,
            "base_device": self.base.device if self.base else None,
            "document": self.document_json(storage_key),
        }

    def chunk_changes(self, per_change: int) -> list[dict[str, Any]]:
        out = []
        for part, start in enumerate(range(0, len(self.chunks), per_change)):
            out.append(
                {
                    "change_id": chunks_change_id(self.document_id, self.version, part),
                    "kind": "chunks",
                    "document_id": self.document_id,
                    "doc_hlc": self.version.hlc,
                    "doc_device": self.version.device,
                    "chunks": [
                        c.to_json(self.document_id, self.version) for c in self.chunks[start : start + per_change]
                    ],
                }
            )
        return out


@dataclass(frozen=True, slots=True)
class InChunk:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: list[str]
    model_id: str
    embedding: FloatVec | None
    token_count: int = 0


@dataclass(frozen=True, slots=True)
class Prepared:
    """Outcome of preparing one pending document."""

    state: str  # "ready" | "deferred" (still indexing) | "dropped" (never left this device)
    version: OutVersion | None = None


class Remote(Protocol):
    @property
    def user_id(self) -> str: ...

    def push(self, changes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def pull(self, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None, bool]: ...

    def pull_chunks(self, versions: Sequence[Mapping[str, Any]]) -> dict[str, list[InChunk]]: ...

    def upload(self, key: str, path: Path, size: int, mime: str) -> bool: ...

    def download(self, key: str) -> tuple[str, int]:
        """Store the object in the local blob store; returns (sha256, size)."""
        ...


@dataclass
class ApplyResult:
    """What applying pulled versions did (``incomplete``: a row needed chunks it did not get)."""

    applied: int = 0
    skipped: int = 0
    incomplete: bool = False
    removed_blobs: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class LocalSync(Protocol):
    def bind_account(self, user_id: str) -> None: ...

    def pending_documents(self, exclude: set[str], limit: int) -> list[str]: ...

    def prepare(self, document_id: str, user_id: str) -> Prepared: ...

    def stage_file(self, v: OutVersion) -> tuple[Path, int, Callable[[], None]] | None: ...

    def dead_letter(self, v: OutVersion, stage: str, code: str, message: str, detail: dict[str, Any]) -> None: ...

    def push_done(
        self,
        v: OutVersion,
        current: Mapping[str, Any],
        copy_of: Mapping[str, Any] | None,
        copy_blob: tuple[str, int] | None,
    ) -> str | None: ...

    def push_lost(
        self,
        v: OutVersion,
        current: Mapping[str, Any],
        chunks: list[InChunk] | None,
        blob_key: str | None,
        make_copy: bool,
    ) -> tuple[bool, str | None]: ...

    def cursor(self) -> str | None: ...

    def needs_content(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]: ...

    def blob_size(self, sha256: str) -> int | None: ...

    def apply_pulled(
        self,
        rows: Sequence[Mapping[str, Any]],
        chunks: Mapping[str, list[InChunk]],
        blobs: Mapping[str, tuple[str, int]],
        next_cursor: str | None,
    ) -> ApplyResult: ...
