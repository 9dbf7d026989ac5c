"""WatchService: watched folders kept in step with the index.

Threads (all named, all joined in ``stop()``): watchdog's observer and emitter threads, whose
callbacks only put events on a queue, and ``watch-dispatch``, which coalesces events per
folder, reconciles dirty paths, runs the start-up / folder-added reconcile and the periodic
rescan. When the OS refuses more watches (Linux ``fs.inotify.max_user_watches``), a folder
falls back to periodic scanning and its status says so.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import apsw
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from backend.components import ComponentState, StatusCell
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.events import EventBus
from backend.ingest.pipeline import delete_document, file_sha256
from backend.ingest.service import IngestService
from backend.store import Store, jobs
from backend.store import documents as doc_repo
from backend.store import folders as folder_repo
from backend.store.folders import Folder
from backend.watch.coalesce import Pending
from backend.watch.reconcile import Indexed, Plan, match_moves, plan
from backend.watch.scan import DEFAULT_INCLUDE, FileInfo, Rules, stat_candidate, walk

T = TypeVar("T")


def _for_each(items: Sequence[T], fn: Callable[[apsw.Connection, T], object]) -> Callable[[apsw.Connection], None]:
    """A write function applying ``fn`` to every item in one transaction."""

    def write(conn: apsw.Connection) -> None:
        for item in items:
            fn(conn, item)

    return write


log = logging.getLogger("docsidecar.watch")

WRITE_BATCH = 500


@dataclass
class _Watched:
    folder: Folder
    rules: Rules
    watch: ObservedWatch | None
    mode: str  # "watching" | "polling"
    pending: Pending
    last_scan: float = 0.0
    error: str | None = None


class _Enqueue(FileSystemEventHandler):
    """watchdog callback: record the event, nothing else."""

    def __init__(self, folder_id: int, sink: queue.SimpleQueue[tuple[Any, ...]]) -> None:
        self.folder_id = folder_id
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in {"opened", "closed_no_write"}:
            return
        now = time.monotonic()
        self.sink.put(("event", self.folder_id, str(event.src_path), event.is_directory, now))
        dest = getattr(event, "dest_path", "")
        if dest:
            self.sink.put(("event", self.folder_id, str(dest), event.is_directory, now))


class WatchService:
    name = "watcher"

    def __init__(
        self,
        store: Store,
        ingest: IngestService,
        events: EventBus,
        *,
        data_dir: Path,
        quiet_s: float = 1.0,
        max_wait_s: float = 10.0,
        rescan_interval_s: float = 1800.0,
        polling_interval_s: float = 300.0,
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.events = events
        self.data_dir = data_dir
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self.rescan_interval_s = rescan_interval_s
        self.polling_interval_s = polling_interval_s
        self.status = StatusCell()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._watched: dict[int, _Watched] = {}
        self._lock = threading.Lock()
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._observer = Observer()
        self._observer.name = "watch-observer"
        self._observer.start()
        with self.store.read() as conn:
            folders = folder_repo.list_folders(conn)
        for folder in folders:
            self._attach(folder)
            self._inbox.put(("scan", folder.id))
        self._thread = threading.Thread(target=self._main, name="watch-dispatch")
        self._thread.start()
        self._refresh_status()

    def stop(self) -> None:
        self._inbox.put(("stop",))
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
            self._observer = None
        self.status.set(ComponentState.STOPPED)

    # -- folder management (API) --------------------------------------------------------------
    def add_folder(
        self, raw_path: str, scope: str, recursive: bool, include: tuple[str, ...] | None, exclude: tuple[str, ...]
    ) -> Folder:
        path = self._check_folder(raw_path)
        include = tuple(include) if include else DEFAULT_INCLUDE

        def write(conn: apsw.Connection) -> Folder:
            if folder_repo.by_path(conn, str(path)) is not None:
                raise Conflict("this folder is already watched", detail={"path": str(path)})
            for other in folder_repo.list_folders(conn):
                o = Path(other.path)
                if o in path.parents or path in o.parents:
                    raise Conflict(f"overlaps the watched folder {other.path}", detail={"folder_id": other.id})
            return folder_repo.insert(conn, str(path), scope, recursive, include, exclude)

        folder = self.store.write(write)
        self._attach(folder)
        self._inbox.put(("scan", folder.id))
        self.events.publish("folder.added", {"folder_id": folder.id, "path": folder.path})
        self._refresh_status()
        return folder

    def remove_folder(self, folder_id: int, keep_documents: bool = False) -> None:
        with self.store.read() as conn:
            folder = folder_repo.get(conn, folder_id)
        if folder is None:
            raise NotFound(f"no folder {folder_id}", detail={"folder_id": folder_id})
        self._detach(folder_id)
        with self.store.read() as conn:
            doc_ids = [v[0] for v in folder_repo.documents_in(conn, folder_id).values()]
        if not keep_documents:
            for start in range(0, len(doc_ids), WRITE_BATCH):
                part = doc_ids[start : start + WRITE_BATCH]
                self.store.write(_for_each(part, delete_document))
        self.store.write(lambda c: folder_repo.delete(c, folder_id))
        self.events.publish(
            "folder.removed", {"folder_id": folder_id, "documents_removed": 0 if keep_documents else len(doc_ids)}
        )
        self._refresh_status()

    def folder_states(self) -> dict[int, dict[str, Any]]:
        with self._lock:
            return {
                fid: {"mode": w.mode, "error": w.error, "pending": len(w.pending.files) + len(w.pending.dirs)}
                for fid, w in self._watched.items()
            }

    def rescan(self, folder_id: int) -> None:
        self._inbox.put(("scan", folder_id))

    def _check_folder(self, raw_path: str) -> Path:
        if not raw_path or "\x00" in raw_path:
            raise ValidationFailed("path must be a non-empty string", detail={"field": "path"})
        candidate = Path(raw_path).expanduser()
        if not candidate.is_absolute():
            raise ValidationFailed("path must be absolute", detail={"path": raw_path})
        try:
            path = candidate.resolve(strict=True)
        except OSError as exc:
            raise NotFound(f"no such folder: {raw_path}", detail={"path": raw_path}) from exc
        if not path.is_dir():
            raise ValidationFailed("path is not a directory", detail={"path": raw_path})
        data_dir = self.data_dir.resolve()
        if path == data_dir or data_dir in path.parents:
            raise ValidationFailed("the sidecar's data dir cannot be watched", detail={"path": raw_path})
        return path

    # -- observer attachment ------------------------------------------------------------------
    def _attach(self, folder: Folder) -> None:
        rules = Rules(Path(folder.path), folder.recursive, folder.include, folder.exclude, (self.data_dir.resolve(),))
        watch, mode, error = None, "watching", None
        try:
            assert self._observer is not None
            watch = self._observer.schedule(_Enqueue(folder.id, self._inbox), folder.path, recursive=folder.recursive)
        except OSError as exc:
            mode = "polling"
            error = (
                f"cannot watch ({exc.strerror or exc}); scanning every {self.polling_interval_s:.0f} s instead"
                " — on Linux raise fs.inotify.max_user_watches"
            )
            log.warning("folder %s: %s", folder.path, error)
        with self._lock:
            self._watched[folder.id] = _Watched(folder, rules, watch, mode, Pending(), error=error)

    def _detach(self, folder_id: int) -> None:
        with self._lock:
            watched = self._watched.pop(folder_id, None)
        if watched is not None and watched.watch is not None and self._observer is not None:
            self._observer.unschedule(watched.watch)

    def _refresh_status(self) -> None:
        states = self.folder_states()
        degraded = any(s["mode"] != "watching" for s in states.values())
        self.status.set(
            ComponentState.DEGRADED if degraded else ComponentState.READY,
            {"folders": len(states), "polling": sum(s["mode"] == "polling" for s in states.values())},
        )

    # -- the dispatch thread --------------------------------------------------------------
    def _main(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._next_timeout())
            except queue.Empty:
                item = None
            if item is not None and item[0] == "stop":
                return
            if item is not None:
                self._accept(item)
            self._run_due()

    def _next_timeout(self) -> float:
        now = time.monotonic()
        timeout = 5.0
        with self._lock:
            for w in self._watched.values():
                due = w.pending.due_in(now, self.quiet_s, self.max_wait_s)
                if due is not None:
                    timeout = min(timeout, due)
        return max(0.01, timeout)

    def _accept(self, item: tuple[Any, ...]) -> None:
        if item[0] == "scan":
            with self._lock:
                watched = self._watched.get(item[1])
            if watched is not None:
                self._safely(self._full_reconcile, watched)
        elif item[0] == "event":
            _, folder_id, path, is_dir, at = item
            with self._lock:
                watched = self._watched.get(folder_id)
                if watched is not None:
                    watched.pending.add(path, is_dir=is_dir, at=at)

    def _run_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            items = list(self._watched.values())
        for w in items:
            if w.pending and w.pending.ready(now, self.quiet_s, self.max_wait_s):
                files, dirs = w.pending.take()
                self._safely(self._partial_reconcile, w, files, dirs)
            interval = self.polling_interval_s if w.mode == "polling" else self.rescan_interval_s
            if now - w.last_scan >= interval:
                self._safely(self._full_reconcile, w)

    def _safely(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.exception("reconcile failed")
            self.events.publish("error", {"source": "watcher", "message": f"{type(exc).__name__}: {exc}"})

    # -- reconciling --------------------------------------------------------------------------
    def _full_reconcile(self, w: _Watched) -> None:
        w.last_scan = time.monotonic()
        scanned = dict(walk(w.rules))
        with self.store.read() as conn:
            indexed = self._indexed(conn, w.folder.id)
        self._apply(w, indexed, scanned)
        self.store.write(lambda c: folder_repo.mark_scanned(c, w.folder.id))

    def _partial_reconcile(self, w: _Watched, files: set[str], dirs: set[str]) -> None:
        scanned: dict[str, FileInfo] = {}
        for path in files:
            info = stat_candidate(w.rules, Path(path))
            if info is not None:
                scanned[path] = info
        for d in dirs:
            if Path(d).is_dir():
                scanned.update(walk(w.rules, Path(d)))
        with self.store.read() as conn:
            everything = self._indexed(conn, w.folder.id)
        prefixes = tuple(d.rstrip("/\\") + sep for d in dirs for sep in ("/", "\\"))
        indexed = {p: row for p, row in everything.items() if p in files or p.startswith(prefixes)}
        # a file that moved within the folder appears as (old path gone, new path present);
        # widen the indexed side with same-size documents so the move is detected
        sizes = {info.size for path, info in scanned.items() if path not in everything}
        for p, row in everything.items():
            if row.size in sizes and p not in indexed and not Path(p).exists():
                indexed[p] = row
        self._apply(w, indexed, scanned)

    @staticmethod
    def _indexed(conn: apsw.Connection, folder_id: int) -> dict[str, Indexed]:
        return {path: Indexed(*row) for path, row in folder_repo.documents_in(conn, folder_id).items()}

    def _apply(self, w: _Watched, indexed: dict[str, Indexed], scanned: dict[str, FileInfo]) -> None:
        result = plan(indexed, scanned)
        sizes = {p: info.size for p, info in scanned.items()}
        result = match_moves(result, indexed, sizes, _hash_or_none)
        if not result:
            return
        self._write_plan(w.folder, result, scanned)
        self.ingest.worker.notify()
        log.info("folder %s reconciled", w.folder.path, extra=result.summary())
        self.events.publish("folder.reconciled", {"folder_id": w.folder.id, **result.summary()})

    def _write_plan(self, folder: Folder, result: Plan, scanned: dict[str, FileInfo]) -> None:
        for doc_id, new_path in result.moves:
            self.store.write(_for_each([(doc_id, new_path)], _move))
            self.events.publish("document.moved", {"document_id": doc_id, "path": new_path})
        for start in range(0, len(result.removed), WRITE_BATCH):
            part = result.removed[start : start + WRITE_BATCH]
            self.store.write(_for_each(part, delete_document))
            for d in part:
                self.events.publish("document.removed", {"document_id": d, "reason": "file deleted"})
        for start in range(0, len(result.changed), WRITE_BATCH):
            part = result.changed[start : start + WRITE_BATCH]
            self.store.write(_for_each(part, _queue_ingest))
        for start in range(0, len(result.add), WRITE_BATCH):
            part = result.add[start : start + WRITE_BATCH]
            self.store.write(_for_each(part, lambda c, p: _add_file(c, folder, p, scanned[p])))


def _move(conn: apsw.Connection, move: tuple[str, str]) -> None:
    doc_id, new_path = move
    doc_repo.update(conn, doc_id, path=new_path, filename=Path(new_path).name)


def _hash_or_none(path: str) -> str | None:
    try:
        return file_sha256(Path(path))[0]
    except OSError:
        return None


def _queue_ingest(conn: apsw.Connection, doc_id: str) -> None:
    if jobs.active_for_document(conn, doc_id, "ingest") is None:
        jobs.enqueue(conn, "ingest", document_id=doc_id)


def _add_file(conn: apsw.Connection, folder: Folder, path: str, info: FileInfo) -> None:
    existing = doc_repo.by_path(conn, path)
    if existing is not None:  # indexed by path before the folder was added: adopt it
        doc_repo.update(conn, existing.id, source="folder", folder_id=folder.id, scope=folder.scope)
        _queue_ingest(conn, existing.id)
        return
    doc = doc_repo.insert(
        conn, doc_id=doc_repo.new_id(), scope=folder.scope, source="folder", folder_id=folder.id,
        filename=Path(path).name, path=path, size=info.size, mtime_ns=info.mtime_ns,
    )  # fmt: skip
    jobs.enqueue(conn, "ingest", document_id=doc.id)
