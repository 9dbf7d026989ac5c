"""Run extraction in a child process with a hard wall-clock timeout.

One long-lived child (``multiprocessing`` *spawn* context, so it works the same on Windows,
macOS and Linux and under PyInstaller) serves requests over a pipe; starting a Python process
per file would cost more than extracting most files. On timeout the child is killed (SIGKILL /
TerminateProcess), reaped, and a new one is spawned on the next request; the file is reported
``failed`` with reason ``timed out``. A child that crashes (segfault in a native library, OOM
kill) is reported the same way. The child exits by itself when the parent goes away (its pipe
reaches EOF), and is recycled after ``max_tasks_per_child`` files to bound native-memory growth.

PyInstaller: the frozen entry point must call ``multiprocessing.freeze_support()`` first thing
in ``main()``, and ``backend/__main__.py`` must keep its ``if __name__ == "__main__"`` guard,
because a spawned child re-imports the main module.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from backend.ingest.extract.dispatch import extract_file
from backend.ingest.extract.document import MIME_PDF, ExtractedDocument, not_ok
from backend.ingest.extract.errors import ExtractorUnavailable, SourceGone, SourceUnreadable
from backend.ingest.limits import ExtractLimits

Extractor = Callable[..., ExtractedDocument]
"""``extractor(path, limits, name=...)``, e.g. :func:`extract_file`."""
_PROCESS_NAME = "docsidecar-extract"


def _child_main(conn: Connection, limits: ExtractLimits, extractor: Extractor) -> None:
    """Child loop: reply to each path with ("ok", doc) | ("gone"|"unreadable", message)."""
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, name = request
        try:
            reply: tuple[str, object] = ("ok", extractor(Path(path), limits, name=name))
        except SourceGone as exc:
            reply = ("gone", exc.message)
        except SourceUnreadable as exc:
            reply = ("unreadable", exc.message)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _mime_hint(path: Path, name: str | None) -> str:
    suffix = Path(name).suffix if name else path.suffix
    return MIME_PDF if suffix.lower() == ".pdf" else "application/octet-stream"


class ExtractionWorker:
    """Serialised ``extract(path)`` calls executed in one child process with a timeout.

    ``start()`` spawns the child, ``stop()`` ends it and joins; ``extract`` restarts it when
    needed. Calls are serialised by an instance lock; use several workers for parallelism.
    ``extractor`` must be a module-level function (it is pickled into the child).
    """

    def __init__(
        self,
        limits: ExtractLimits | None = None,
        *,
        max_tasks_per_child: int = 500,
        start_timeout: float = 60.0,
        extractor: Extractor = extract_file,
    ) -> None:
        self.limits = limits or ExtractLimits()
        self.max_tasks_per_child = max_tasks_per_child
        self.start_timeout = start_timeout
        self._extractor = extractor
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._tasks = 0

    @property
    def pid(self) -> int | None:
        """PID of the current child, if one is running."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        with self._lock:
            self._ensure_child()

    def stop(self) -> None:
        with self._lock:
            self._stop_child(graceful=True)

    def extract(self, path: Path, *, name: str | None = None, timeout: float | None = None) -> ExtractedDocument:
        """Extract ``path`` in the child; ``timeout`` defaults to ``limits.timeout_seconds``.

        ``name`` is the original file name (type hint), as for :func:`extract_file`. Raises
        :class:`SourceGone` / :class:`SourceUnreadable` like ``extract_file``.
        """
        limit = self.limits.timeout_seconds if timeout is None else timeout
        with self._lock:
            conn = self._ensure_child()
            try:
                conn.send((str(path), name))
                ready = conn.poll(limit)
            except (BrokenPipeError, EOFError, OSError):
                ready = False
            if not ready:
                alive = self._process is not None and self._process.is_alive()
                self._stop_child(graceful=False)
                if alive:
                    return not_ok(_mime_hint(path, name), "failed", f"extraction timed out after {limit:g} s")
                return not_ok(_mime_hint(path, name), "failed", "extractor process died")
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                if self._process is not None:
                    self._process.join(1.0)  # reap it, so the exit code (e.g. -11: SIGSEGV) is known
                code = self._process.exitcode if self._process is not None else None
                self._stop_child(graceful=False)
                return not_ok(
                    _mime_hint(path, name),
                    "failed",
                    f"extractor process crashed (exit code {code})",
                )
            self._tasks += 1
            if self._tasks >= self.max_tasks_per_child:
                self._stop_child(graceful=True)
        if kind == "gone":
            raise SourceGone(str(payload), detail={"path": str(path)})
        if kind == "unreadable":
            raise SourceUnreadable(str(payload), detail={"path": str(path)})
        assert isinstance(payload, ExtractedDocument)
        return payload

    # -- child lifecycle (called with the lock held) ----------------------------------------
    def _ensure_child(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._stop_child(graceful=False)
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_child_main,
            args=(child, self.limits, self._extractor),
            name=_PROCESS_NAME,
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn, self._tasks = process, parent, 0
        if not parent.poll(self.start_timeout):
            self._stop_child(graceful=False)
            raise ExtractorUnavailable("extraction worker process did not start")
        parent.recv()
        return parent

    def _stop_child(self, *, graceful: bool) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if conn is not None:
            if graceful:
                with contextlib.suppress(BrokenPipeError, OSError):
                    conn.send(None)
            conn.close()
        if process is not None:
            process.join(timeout=5.0 if graceful else 0)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
