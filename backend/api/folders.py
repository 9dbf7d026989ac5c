"""Watched folders and index coverage."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from backend.api.guards import json_body
from backend.errors import NotFound
from backend.ingest.coverage import coverage
from backend.ingest.service import check_scope
from backend.services import Services
from backend.store import folders as folder_repo


class FolderRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    scope: str | None = None
    recursive: bool = True
    include: list[str] | None = None
    exclude: list[str] = []


def _check_globs(globs: list[str] | None, field: str) -> tuple[str, ...] | None:
    from backend.errors import ValidationFailed

    if globs is None:
        return None
    for g in globs:
        if not g or len(g) > 200 or "\x00" in g:
            raise ValidationFailed(f"invalid glob in {field}", detail={"field": field})
    if len(globs) > 100:
        raise ValidationFailed(f"at most 100 globs in {field}", detail={"field": field})
    return tuple(globs)


@post(
    "/v1/folders",
    summary="Watch a folder (recursive, include/exclude globs)",
    tags=["folders"],
    status_code=201,
    guards=[json_body],
    sync_to_thread=True,
)
def add_folder(services: NamedDependency[Services], data: JSONBody[FolderRequest]) -> dict[str, Any]:
    folder = services.watcher.add_folder(
        data.path, check_scope(data.scope), data.recursive,
        _check_globs(data.include, "include"), _check_globs(data.exclude, "exclude") or (),
    )  # fmt: skip
    return folder.to_dict()


@get(
    "/v1/folders",
    summary="Watched folders with their watch mode",
    tags=["folders"],
    sync_to_thread=True,
)
def list_folders(services: NamedDependency[Services]) -> dict[str, Any]:
    with services.store.read() as conn:
        folders = folder_repo.list_folders(conn)
    states = services.watcher.folder_states()
    return {
        "items": [
            {**f.to_dict(), **states.get(f.id, {"mode": "stopped", "error": None, "pending": 0})} for f in folders
        ]
    }


@delete(
    "/v1/folders/{folder_id:int}",
    summary="Stop watching a folder (and remove its documents unless keep_documents)",
    tags=["folders"],
    status_code=200,
    sync_to_thread=True,
)
def remove_folder(
    services: NamedDependency[Services], folder_id: FromPath[int], keep_documents: FromQuery[bool] = False
) -> dict[str, Any]:
    services.watcher.remove_folder(folder_id, keep_documents)
    return {"deleted": folder_id}


@post(
    "/v1/folders/{folder_id:int}/rescan",
    summary="Compare the folder with the index now",
    tags=["folders"],
    status_code=202,
    sync_to_thread=True,
)
def rescan_folder(services: NamedDependency[Services], folder_id: FromPath[int]) -> dict[str, Any]:
    with services.store.read() as conn:
        if folder_repo.get(conn, folder_id) is None:
            raise NotFound(f"no folder {folder_id}", detail={"folder_id": folder_id})
    services.watcher.rescan(folder_id)
    return {"folder_id": folder_id, "rescan": "queued"}


@get(
    "/v1/coverage",
    summary="Per folder and scope: how many files are indexed, pending, skipped, failed and why",
    tags=["folders"],
    sync_to_thread=True,
)
def get_coverage(services: NamedDependency[Services]) -> dict[str, Any]:
    with services.store.read() as conn:
        return coverage(conn)


ROUTES = [add_folder, list_folders, remove_folder, rescan_folder, get_coverage]
