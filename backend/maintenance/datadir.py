"""Checks of the data dir before anything uses it (``serve``, ``doctor``, ``move-data``).

* **Read-only**: the sidecar must write its database, WAL and logs there. A read-only file
  system, a directory owned by someone else or a read-only database file is refused at start
  with :class:`DataDirReadOnly` (``{"event":"error","error":"data_dir_read_only",…}``, exit 2)
  instead of failing later on the first write. A *full* disk is not refused: the sidecar starts,
  search works, and ``/v1/status`` reports ``disk_full``.
* **Moved**: after ``docsidecar move-data NEW`` the old directory keeps only ``MOVED.json``;
  starting on it is refused with :class:`DataDirMoved`, whose ``detail.moved_to`` names the new
  directory (for the desktop app to pass as ``DOCSIDECAR_DATA_DIR``).
* **Move incomplete**: the new directory carries ``.move-incomplete`` until the move has
  switched over; starting on it is refused with :class:`MoveIncomplete`.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

from backend.errors import Unavailable

MOVED_FILE = "MOVED.json"
INCOMPLETE_FILE = ".move-incomplete"
DB_FILES = ("docsidecar.db", "docsidecar.db-wal", "docsidecar.db-shm")
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class DataDirReadOnly(Unavailable):
    """The data dir (or the database in it) cannot be written."""

    code = "data_dir_read_only"


class DataDirMoved(Unavailable):
    """The data dir was moved with ``docsidecar move-data``; ``detail.moved_to`` is the new one."""

    code = "data_dir_moved"


class MoveIncomplete(Unavailable):
    """This directory is the target of a ``move-data`` that has not finished."""

    code = "data_dir_move_incomplete"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_not_moved(data_dir: Path) -> None:
    moved = read_json(data_dir / MOVED_FILE)
    if moved is not None and moved.get("moved_to"):
        target = str(moved["moved_to"])
        raise DataDirMoved(
            f"the data dir {data_dir} was moved to {target}; start docsidecar with --data-dir {target} "
            "(DOCSIDECAR_DATA_DIR)",
            detail={"moved_to": target, "moved_at": moved.get("moved_at")},
        )
    marker = data_dir / INCOMPLETE_FILE
    if marker.exists():
        raise MoveIncomplete(
            f"{data_dir} is the target of an unfinished 'docsidecar move-data'; run the same move-data "
            "command again to finish it (the old data dir stays authoritative until it does)",
            detail={"marker": str(marker)},
        )


def check_writable(data_dir: Path) -> None:
    """Raise :class:`DataDirReadOnly` unless a file can be created in ``data_dir`` and the
    database files in it can be opened for writing. Creates nothing that stays behind."""
    probe = data_dir / f".write-probe-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno in READ_ONLY_ERRNOS:
            raise read_only_error(data_dir, data_dir, exc) from exc
        if exc.errno != errno.ENOSPC:  # a full disk is reported by /v1/status, not refused
            raise
    else:
        os.close(fd)
        os.unlink(probe)
    for name in DB_FILES:
        path = data_dir / name
        if not path.exists():
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            if exc.errno in READ_ONLY_ERRNOS:
                raise read_only_error(data_dir, path, exc) from exc
            raise
        os.close(fd)


def read_only_error(data_dir: Path, path: Path, exc: OSError) -> DataDirReadOnly:
    return DataDirReadOnly(
        f"cannot write to {path} ({exc.strerror}): docsidecar keeps its database, uploads and logs in the "
        f"data dir {data_dir} and needs write access there. Make it writable, or start with another "
        "--data-dir (DOCSIDECAR_DATA_DIR)",
        detail={"path": str(path), "errno": errno.errorcode.get(exc.errno or 0, str(exc.errno))},
    )


def preflight(data_dir: Path) -> None:
    """Everything ``serve`` checks before taking the data dir into use."""
    check_not_moved(data_dir)
    check_writable(data_dir)
