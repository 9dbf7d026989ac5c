"""An exclusive, process-lifetime lock on the data dir (one sidecar per data dir).

POSIX uses ``fcntl.flock``; Windows uses ``msvcrt.locking`` on the first byte (untested here).
The OS drops the lock when the process dies, even on ``kill -9``, so a stale lock file never
blocks a restart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


class LockHeld(Exception):
    """Another process holds the lock."""


class InstanceLock:
    """Hold ``<data_dir>/docsidecar.lock`` exclusively while the sidecar runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock without waiting; raise :class:`LockHeld` if another process has it."""
        fh = open(self.path, "a+b")  # noqa: SIM115 - held open for the process lifetime
        try:
            _lock(fh)
        except OSError as exc:
            fh.close()
            raise LockHeld(str(self.path)) from exc
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            _unlock(self._fh)
            self._fh.close()
            self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None


if os.name == "nt":  # pragma: no cover - untested here
    import msvcrt

    def _lock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

else:
    import fcntl

    def _lock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
