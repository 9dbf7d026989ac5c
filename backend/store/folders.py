"""Watched folders repository."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import apsw


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    path: str
    scope: str
    recursive: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    created_at: float
    scanned_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "scope": self.scope,
            "recursive": self.recursive,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "created_at": self.created_at,
            "scanned_at": self.scanned_at,
        }


_COLUMNS = "id, path, scope, recursive, include_globs, exclude_globs, created_at, scanned_at"


def _folder(r: tuple[Any, ...]) -> Folder:
    return Folder(
        int(r[0]), str(r[1]), str(r[2]), bool(r[3]), tuple(json.loads(r[4])), tuple(json.loads(r[5])), float(r[6]), r[7]
    )


def insert(
    conn: apsw.Connection, path: str, scope: str, recursive: bool, include: tuple[str, ...], exclude: tuple[str, ...]
) -> Folder:
    conn.execute(
        "INSERT INTO folders(path, scope, recursive, include_globs, exclude_globs, created_at) VALUES (?,?,?,?,?,?)",
        (path, scope, int(recursive), json.dumps(list(include)), json.dumps(list(exclude)), time.time()),
    )
    folder = get(conn, int(conn.last_insert_rowid()))
    assert folder is not None
    return folder


def get(conn: apsw.Connection, folder_id: int) -> Folder | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM folders WHERE id = ?", (folder_id,)).fetchone()  # noqa: S608
    return _folder(row) if row else None


def by_path(conn: apsw.Connection, path: str) -> Folder | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM folders WHERE path = ?", (path,)).fetchone()  # noqa: S608
    return _folder(row) if row else None


def list_folders(conn: apsw.Connection) -> list[Folder]:
    return [_folder(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM folders ORDER BY id")]  # noqa: S608


def mark_scanned(conn: apsw.Connection, folder_id: int) -> None:
    conn.execute("UPDATE folders SET scanned_at = ? WHERE id = ?", (time.time(), folder_id))


def delete(conn: apsw.Connection, folder_id: int) -> None:
    conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))


def documents_in(conn: apsw.Connection, folder_id: int) -> dict[str, tuple[str, int | None, int | None, str | None]]:
    """path → (document id, size, mtime_ns, sha256) for the folder's documents."""
    return {
        str(r[0]): (str(r[1]), r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT path, id, size, mtime_ns, sha256 FROM documents WHERE folder_id = ?", (folder_id,)
        )
    }
