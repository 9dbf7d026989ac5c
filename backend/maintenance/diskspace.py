"""Disk space of the data dir: recognising "disk full", holding back work, noticing recovery.

A full disk shows up as ``apsw.FullError`` (SQLite's ``SQLITE_FULL``) from the writer or as an
``OSError`` with ``ENOSPC``/``EDQUOT`` from file writes (uploaded copies, logs). Nothing is
corrupted by it — the failed transaction rolls back — but every write fails until space is
freed. :class:`DiskGuard` is the component that knows this:

* the store's writer reports every failed write to it (:meth:`DiskGuard.report`);
* the job worker asks :meth:`DiskGuard.writable` before claiming a job: while the disk is full
  (or below ``min_free_bytes``) jobs stay queued, costing no attempt, instead of failing one
  after the other; it re-reads the free space at most every ``check_every_s``;
* "full" ends by itself once the free space is back above the level it failed at plus
  :data:`RESUME_MARGIN_BYTES` (and above ``min_free_bytes``), so work resumes without a restart;
* it keeps a small reserve file (``.disk-reserve``, :data:`RESERVE_BYTES`) in the data dir and
  deletes it at the first failure, so the bookkeeping that follows (the job going back to the
  queue, the document saying why) still finds room; it is recreated once space is back;
* ``/v1/status`` shows it as the ``disk`` component: ``ready``, or ``degraded`` with the error
  ``disk_full`` (a write failed) or ``disk_low`` (below ``min_free_bytes``), the free bytes and
  the last failure.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from backend.components import ComponentState, StatusCell
from backend.errors import SidecarError
from backend.maintenance.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("docsidecar.disk")

RESUME_MARGIN_BYTES = 4 * 1024 * 1024
RESERVE_FILE = ".disk-reserve"
RESERVE_BYTES = 1024 * 1024
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class DiskFull(SidecarError):
    """The disk holding the data dir is full: the write was refused and nothing changed."""

    status = 507
    code = "disk_full"


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means "no space left"."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, apsw.FullError | DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def free_bytes(path: Path) -> int:
    """Bytes available to this user on the file system holding ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return int(shutil.disk_usage(probe).free)


@dataclass(frozen=True, slots=True)
class _Failure:
    at: float
    message: str
    free_at_failure: int


class DiskGuard:
    """The ``disk`` component: whether writes to the data dir can succeed (see the module doc)."""

    name = "disk"

    def __init__(
        self,
        path: Path,
        min_free_bytes: int = 0,
        *,
        clock: Clock = SYSTEM_CLOCK,
        check_every_s: float = 1.0,
        on_change: Callable[[str, dict[str, Any]], object] | None = None,
    ) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes
        self.clock = clock
        self.check_every_s = check_every_s
        self.on_change = on_change
        self.status = StatusCell()
        self._lock = threading.Lock()
        self._failure: _Failure | None = None
        self._low = False
        self._free: int | None = None
        self._checked_at = float("-inf")
        self._published: str | None = None
        self.failures = 0

    # -- component ---------------------------------------------------------------------------
    def start(self) -> None:
        self.check()
        self._make_reserve()

    def stop(self) -> None:
        self.status.set(ComponentState.STOPPED)

    # -- reporting -----------------------------------------------------------------------------
    def report(self, exc: BaseException) -> bool:
        """Record a failed write; returns whether it was a full disk (other errors are ignored)."""
        if not is_disk_full(exc):
            return False
        free = self._read_free()
        with self._lock:
            first = self._failure is None
            self._failure = _Failure(self.clock.time(), str(exc) or type(exc).__name__, free)
            self._free = free
            self._checked_at = self.clock.monotonic()
            self.failures += 1
        if first:
            log.error("disk full under %s (%d bytes free): writes fail until space is freed", self.path, free)
            self._drop_reserve()
        self._publish()
        return True

    def writable(self) -> bool:
        """False while the disk is full or below ``min_free_bytes`` (re-checked at most every
        ``check_every_s``); cheap enough to call before every job."""
        with self._lock:
            blocked = self._failure is not None or self._low
            due = self.clock.monotonic() - self._checked_at >= self.check_every_s
        if due and (blocked or self.min_free_bytes):
            self.check()
        with self._lock:
            return self._failure is None and not self._low

    def full(self) -> bool:
        """Whether a write failed for lack of space and the space has not come back (new work is
        refused then; a merely low disk still accepts it, the jobs wait)."""
        self.writable()
        with self._lock:
            return self._failure is not None

    def refuse_if_full(self) -> None:
        """Raise :class:`DiskFull` (507) while :meth:`full`."""
        if self.full():
            raise DiskFull(
                f"the disk holding {self.path} is full: nothing new is accepted until space is freed",
                detail=self.summary(),
                headers={"Retry-After": "30"},
            )

    def check(self) -> dict[str, Any]:
        """Read the free space now, end a "full" state that has recovered; returns :meth:`summary`."""
        free = self._read_free()
        recovered = False
        with self._lock:
            self._free = free
            self._checked_at = self.clock.monotonic()
            if self._failure is not None:
                need = max(self.min_free_bytes, self._failure.free_at_failure + RESUME_MARGIN_BYTES)
                if free >= need:
                    self._failure = None
                    recovered = True
            self._low = bool(self.min_free_bytes) and free < self.min_free_bytes
        if recovered:
            log.warning("disk space is back under %s (%d bytes free): resuming writes", self.path, free)
            self._make_reserve()
        self._publish()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            failure, low, free = self._failure, self._low, self._free
        state = "full" if failure else "low" if low else "ok"
        return {
            "state": state,
            "path": str(self.path),
            "free_bytes": free,
            "min_free_bytes": self.min_free_bytes,
            "full_since": failure.at if failure else None,
            "last_error": failure.message if failure else None,
            "failures": self.failures,
        }

    # -- internals -----------------------------------------------------------------------------
    def _make_reserve(self) -> None:
        """Set aside RESERVE_BYTES (really allocated) unless the disk is short of space already."""
        reserve = self.path / RESERVE_FILE
        try:
            if reserve.exists() or not self.path.is_dir() or self._read_free() < RESERVE_BYTES + RESUME_MARGIN_BYTES:
                return
            fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, RESERVE_BYTES)
                else:  # pragma: no cover - macOS/Windows: zeros are allocated too
                    os.write(fd, b"\0" * RESERVE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.debug("no disk reserve: %s", exc)
            with contextlib.suppress(OSError):
                reserve.unlink()

    def _drop_reserve(self) -> None:
        try:
            (self.path / RESERVE_FILE).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot release the disk reserve: %s", exc)
            return
        log.warning("released the %d-byte disk reserve for bookkeeping writes", RESERVE_BYTES)

    def _read_free(self) -> int:
        try:
            return free_bytes(self.path)
        except OSError:
            return 0

    def _publish(self) -> None:
        summary = self.summary()
        if summary["state"] == "ok":
            self.status.set(ComponentState.READY, summary)
        else:
            if summary["state"] == "full":
                err = DiskFull(
                    f"the disk holding {self.path} is full ({summary['free_bytes']} bytes free): writes fail and "
                    "ingest waits until space is freed; it resumes by itself",
                    detail=summary,
                )
            else:
                err = DiskLow(
                    f"less than {self.min_free_bytes} bytes free on the disk holding {self.path} "
                    f"({summary['free_bytes']} free): ingest waits until space is freed",
                    detail=summary,
                )
            self.status.fail(err, ComponentState.DEGRADED)
        with self._lock:
            changed, self._published = self._published != summary["state"], summary["state"]
        if changed and self.on_change is not None:
            self.on_change("disk." + summary["state"], summary)


class DiskLow(DiskFull):
    """Free space is below ``min_free_bytes``: work that writes waits before the disk fills up."""

    code = "disk_low"
