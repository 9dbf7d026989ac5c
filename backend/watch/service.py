"""WatchService: watched folders kept in step with the index.

Threads (all named, all joined in ``stop()``): watchdog's observer and emitter threads, whose
callbacks only put events on a queue, and ``watch-dispatch``, which attaches folders, coalesces
events per folder, reconciles dirty paths, runs the start-up / folder-added reconcile and the
periodic rescan.

Watch budget (see :mod:`backend.osdeps.watch_limits`): on Linux every directory costs one
inotify watch. A folder is only watched natively when its directory count fits the budget
(``watch_max_dirs``, default half the user's inotify limit); otherwise, or when the OS refuses
a watch, the folder falls back to a full scan every ``poll_interval_s`` and its status says so.
Every watched folder is also rescanned every ``rescan_interval_s``, which catches events the
OS dropped (inotify queue overflow, directories created after the budget was used up).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from backend.components import ComponentState, StatusCell
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.events import EventBus
from backend.ingest.index_tx import delete_document
from backend.ingest.service import IngestService
from backend.osdeps.paths import is_filesystem_root, is_system_path
from backend.osdeps.watch_limits import default_watch_budget, needs_per_directory_watches
from backend.store import Store
from backend.store import folders as folder_repo
from backend.store.folders import Folder
from backend.watch.apply import admit, batched, hash_or_none, write_plan
from backend.watch.coalesce import Pending
from backend.watch.reconcile import Indexed, match_moves, plan
from backend.watch.scan import DEFAULT_INCLUDE, FileInfo, Rules, count_dirs, stat_candidate, walk

log = logging.getLogger("docsidecar.watch")

# Directory "modified" events carry nothing (each file change has its own event) and would
# make every new file rescan its whole directory; open/close-without-write are our own reads.
EVENT_FILTER = [FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileMovedEvent, FileDeletedEvent,
                FileClosedEvent, DirCreatedEvent, DirMovedEvent, DirDeletedEvent]  # fmt: skip
DEFERRED_POLL_S = 1.0
"""How often a folder with deferred files checks for room in the ingest queue."""


@dataclass
class _Watched:
    folder: Folder
    rules: Rules
    watch: ObservedWatch | None
    mode: str  # "starting" | "watching" | "polling"
    pending: Pending
    dirs: int = 0
    last_scan: float = 0.0
    error: str | None = None
    deferred: int = 0  # files left out for want of room in the ingest queue


class _Enqueue(FileSystemEventHandler):
    """watchdog callback: record the event, nothing else."""

    def __init__(self, folder_id: int, sink: queue.SimpleQueue[tuple[Any, ...]]) -> None:
        self.folder_id = folder_id
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in {"opened", "closed_no_write"} or (event.is_directory and event.event_type == "modified"):
            return
        now = time.monotonic()
        self.sink.put(("event", self.folder_id, os.fsdecode(event.src_path), event.is_directory, now))
        dest = getattr(event, "dest_path", "")
        if dest:
            self.sink.put(("event", self.folder_id, os.fsdecode(dest), event.is_directory, now))


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
        max_watch_dirs: int = 0,
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.events = events
        self.data_dir = data_dir
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self.rescan_interval_s = rescan_interval_s
        self.polling_interval_s = polling_interval_s
        self.max_watch_dirs = max_watch_dirs or default_watch_budget()
        self.status = StatusCell()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._watched: dict[int, _Watched] = {}
        self._lock = threading.Lock()  # guards _watched
        self._work = threading.Lock()  # held while a folder is reconciled or removed
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
            self._register(folder)
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
        self._register(folder)
        self.events.publish("folder.added", {"folder_id": folder.id, "path": folder.path})
        self._refresh_status()
        return folder

    def remove_folder(self, folder_id: int, keep_documents: bool = False) -> None:
        with self.store.read() as conn:
            folder = folder_repo.get(conn, folder_id)
        if folder is None:
            raise NotFound(f"no folder {folder_id}", detail={"folder_id": folder_id})
        with self._work:  # no reconcile of this folder can add documents after this point
            self._detach(folder_id)
            with self.store.read() as conn:
                doc_ids = [v[0] for v in folder_repo.documents_in(conn, folder_id).values()]
            if not keep_documents:
                batched(self.store, doc_ids, delete_document)
            self.store.write(lambda c: folder_repo.delete(c, folder_id))
        self.events.publish(
            "folder.removed", {"folder_id": folder_id, "documents_removed": 0 if keep_documents else len(doc_ids)}
        )
        self._refresh_status()

    def folder_states(self) -> dict[int, dict[str, Any]]:
        with self._lock:
            return {
                fid: {"mode": w.mode, "error": w.error, "directories": w.dirs,
                      "pending": len(w.pending.files) + len(w.pending.dirs), "deferred": w.deferred}
                for fid, w in self._watched.items()
            }  # fmt: skip

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
        if is_filesystem_root(path) or is_system_path(path):
            raise ValidationFailed(
                "a file system root or an operating system directory (/proc, /sys, /dev) cannot be watched; "
                "pick the folder that holds your documents",
                detail={"path": raw_path, "resolved": str(path)},
            )
        data_dir = self.data_dir.resolve()
        if path == data_dir or data_dir in path.parents:
            raise ValidationFailed("the sidecar's data dir cannot be watched", detail={"path": raw_path})
        if path in data_dir.parents:
            log.info("folder %s contains the data dir, which is skipped", path)
        return path

    # -- observer attachment (dispatch thread) -------------------------------------------------
    def _register(self, folder: Folder) -> None:
        rules = Rules(Path(folder.path), folder.recursive, folder.include, folder.exclude, (self.data_dir.resolve(),))
        with self._lock:
            self._watched[folder.id] = _Watched(folder, rules, None, "starting", Pending(), last_scan=time.monotonic())
        self._inbox.put(("attach", folder.id))

    def _attach(self, w: _Watched) -> None:
        """Watch natively if the directory count fits the budget, else poll; then reconcile."""
        with self._lock:
            used = sum(o.dirs for o in self._watched.values() if o.mode == "watching")
        dirs = count_dirs(w.rules, self.max_watch_dirs - used) if needs_per_directory_watches() else 1
        mode, watch, error = "polling", None, None
        if used + dirs > self.max_watch_dirs:
            error = (
                f"more directories than the watch budget leaves ({self.max_watch_dirs - used} of "
                f"{self.max_watch_dirs}); scanning every {self.polling_interval_s:g} s instead — raise "
                "watch_max_dirs or, on Linux, fs.inotify.max_user_watches"
            )
        else:
            try:
                assert self._observer is not None
                handler = _Enqueue(w.folder.id, self._inbox)
                watch = self._observer.schedule(
                    handler, w.folder.path, recursive=w.folder.recursive, event_filter=EVENT_FILTER
                )
                mode = "watching"
            except OSError as exc:
                error = (
                    f"cannot watch ({exc.strerror or exc}); scanning every {self.polling_interval_s:g} s instead"
                    " — on Linux raise fs.inotify.max_user_watches"
                )
        if error:
            log.warning("folder %s: %s", w.folder.path, error)
        with self._lock:
            if self._watched.get(w.folder.id) is not w:  # removed meanwhile
                if watch is not None and self._observer is not None:
                    self._observer.unschedule(watch)
                return
            w.watch, w.mode, w.error, w.dirs = watch, mode, error, dirs
        self._refresh_status()
        self._safely(self._full_reconcile, w)

    def _detach(self, folder_id: int) -> None:
        with self._lock:
            watched = self._watched.pop(folder_id, None)
        if watched is not None and watched.watch is not None and self._observer is not None:
            self._observer.unschedule(watched.watch)

    def _refresh_status(self) -> None:
        states = self.folder_states()
        polling = sum(s["mode"] == "polling" for s in states.values())
        self.status.set(
            ComponentState.DEGRADED if polling else ComponentState.READY,
            {"folders": len(states), "polling": polling, "watch_budget": self.max_watch_dirs,
             "deferred": sum(s["deferred"] for s in states.values())},
        )  # fmt: skip

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
                interval = self.polling_interval_s if w.mode == "polling" else self.rescan_interval_s
                timeout = min(timeout, max(0.0, w.last_scan + interval - now))
                if w.deferred:
                    timeout = min(timeout, DEFERRED_POLL_S)
        return max(0.01, timeout)

    def _accept(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            watched = self._watched.get(item[1])
        if watched is None:
            return
        if item[0] == "attach":
            self._attach(watched)
        elif item[0] == "scan":
            self._safely(self._full_reconcile, watched)
        elif item[0] == "event":
            _, _, path, is_dir, at = item
            with self._lock:
                watched.pending.add(path, is_dir=is_dir, at=at)

    def _run_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            items = [w for w in self._watched.values() if w.mode != "starting"]
        for w in items:
            if w.pending and w.pending.ready(now, self.quiet_s, self.max_wait_s):
                with self._lock:
                    overflowed = w.pending.overflowed
                    files, dirs = w.pending.take()
                if overflowed:  # too many dirty paths to keep: compare the whole folder
                    self._safely(self._full_reconcile, w)
                else:
                    self._safely(self._partial_reconcile, w, files, dirs)
            interval = self.polling_interval_s if w.mode == "polling" else self.rescan_interval_s
            if now - w.last_scan >= interval or (w.deferred and self._room_for_slice(w.deferred)):
                self._safely(self._full_reconcile, w)

    def _room_for_slice(self, deferred: int) -> bool:
        """A folder with deferred files is reconciled again once the queue has room for all of
        them or for half the folder limit (not at every freed slot: each pass walks the folder)."""
        return self.ingest.folder_room() >= min(deferred, max(1, self.ingest.folder_limit() // 2))

    def _safely(self, fn: Any, *args: Any) -> None:
        try:
            with self._work:
                with self._lock:
                    if args and isinstance(args[0], _Watched) and self._watched.get(args[0].folder.id) is not args[0]:
                        return  # the folder was removed
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
        self._apply(w, indexed, scanned, full=True)
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
        self._apply(w, indexed, scanned, full=False)

    @staticmethod
    def _indexed(conn: apsw.Connection, folder_id: int) -> dict[str, Indexed]:
        return {path: Indexed(*row) for path, row in folder_repo.documents_in(conn, folder_id).items()}

    def _apply(self, w: _Watched, indexed: dict[str, Indexed], scanned: dict[str, FileInfo], *, full: bool) -> None:
        result = plan(indexed, scanned)
        sizes = {p: info.size for p, info in scanned.items()}
        result = match_moves(result, indexed, sizes, hash_or_none)
        # backpressure: new jobs only up to the folder limit; a partial reconcile's leftovers
        # are found by the full reconcile that ``deferred`` triggers once there is room
        deferred = admit(result, self.ingest.folder_room())
        before = w.deferred
        with self._lock:
            w.deferred = deferred if full else max(w.deferred, deferred)
        if w.deferred != before:
            self._refresh_status()
        if not result:
            return
        write_plan(self.store, self.events, w.folder, result, scanned)
        self.ingest.worker.notify()
        summary = {**result.summary(), "deferred": deferred}
        log.info("folder %s reconciled", w.folder.path, extra=summary)
        self.events.publish("folder.reconciled", {"folder_id": w.folder.id, **summary})
