"""Applying a reconcile :class:`~backend.watch.reconcile.Plan` to the store.

Moves first (a path freed by a move may be re-used by an added file), then removals, then
re-ingest of changed files, then new documents; each kind in transactions of at most
``WRITE_BATCH`` rows so a 10k-file folder never holds the writer for long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import apsw

from backend.events import EventBus
from backend.ingest.index_tx import delete_document, queue_ingest, refresh_vector_meta, set_scope
from backend.ingest.pipeline import file_sha256
from backend.store import Store, jobs
from backend.store import documents as doc_repo
from backend.store.folders import Folder
from backend.watch.reconcile import Plan
from backend.watch.scan import FileInfo

T = TypeVar("T")
WRITE_BATCH = 500


def for_each(items: Sequence[T], fn: Callable[[apsw.Connection, T], object]) -> Callable[[apsw.Connection], None]:
    """A write function applying ``fn`` to every item in one transaction."""

    def write(conn: apsw.Connection) -> None:
        for item in items:
            fn(conn, item)

    return write


def batched(store: Store, items: Sequence[T], fn: Callable[[apsw.Connection, T], object]) -> None:
    for start in range(0, len(items), WRITE_BATCH):
        store.write(for_each(items[start : start + WRITE_BATCH], fn))


def hash_or_none(path: str) -> str | None:
    try:
        return file_sha256(Path(path))[0]
    except OSError:
        return None


def admit(result: Plan, room: int | None) -> int:
    """Keep at most ``room`` queue-adding items of ``result`` (changed files first, then new
    ones in path order); returns how many were left out. They stay on disk only — nothing of
    them is kept in memory — and the next reconcile of the folder finds them again."""
    if room is None:
        return 0
    room = max(0, room)
    deferred = max(0, len(result.changed) - room)
    result.changed = result.changed[:room]
    room -= len(result.changed)
    deferred += max(0, len(result.add) - room)
    result.add = result.add[:room]
    return deferred


def write_plan(store: Store, events: EventBus, folder: Folder, result: Plan, scanned: dict[str, FileInfo]) -> None:
    def move(conn: apsw.Connection, item: tuple[str, str]) -> None:
        doc_id, new_path = item
        taken = doc_repo.by_path(conn, new_path)
        if taken is not None and taken.id != doc_id:
            # another document (indexed by path) already names the destination: keep that one
            delete_document(conn, doc_id)
            add_file(conn, folder, new_path, scanned[new_path])
            return
        before = doc_repo.get(conn, doc_id)
        info = scanned[new_path]
        doc_repo.update(conn, doc_id, path=new_path, filename=Path(new_path).name, mtime_ns=info.mtime_ns)
        if before is not None and before.mtime_ns != info.mtime_ns:
            refresh_vector_meta(conn, doc_id)
        current = doc_repo.get(conn, doc_id)
        if current is not None and current.status not in doc_repo.INDEXED_STATUSES:
            queue_ingest(conn, doc_id)  # e.g. its ingest found the old path gone

    for doc_id, new_path in result.moves:
        store.write(for_each([(doc_id, new_path)], move))
        events.publish("document.moved", {"document_id": doc_id, "path": new_path})
    for start in range(0, len(result.removed), WRITE_BATCH):
        part = result.removed[start : start + WRITE_BATCH]
        store.write(for_each(part, delete_document))
        for d in part:
            events.publish("document.removed", {"document_id": d, "reason": "file deleted"})
    batched(store, result.changed, queue_ingest)
    batched(store, result.add, lambda c, p: add_file(c, folder, p, scanned[p]))


def add_file(conn: apsw.Connection, folder: Folder, path: str, info: FileInfo) -> None:
    existing = doc_repo.by_path(conn, path)
    if existing is not None:  # indexed by path before the folder was added: adopt it
        doc_repo.update(conn, existing.id, source="folder", folder_id=folder.id)
        set_scope(conn, existing.id, folder.scope)
        queue_ingest(conn, existing.id)
        return
    doc = doc_repo.insert(
        conn, doc_id=doc_repo.new_id(), scope=folder.scope, source="folder", folder_id=folder.id,
        filename=Path(path).name, path=path, size=info.size, mtime_ns=info.mtime_ns,
    )  # fmt: skip
    jobs.enqueue(conn, "ingest", document_id=doc.id)
