"""Watched folders and index coverage."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from backend.api.guards import json_body
from backend.api.params import RowId
from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.library import Coverage, FolderDeleted, FolderList, FolderOut, RescanQueued
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
    responses=errors(400, 404, 409, 415, 422),
)
def add_folder(services: NamedDependency[Services], data: JSONBody[FolderRequest]) -> FolderOut:
    folder = services.watcher.add_folder(
        data.path, check_scope(data.scope), data.recursive,
        _check_globs(data.include, "include"), _check_globs(data.exclude, "exclude") or (),
    )  # fmt: skip
    return reply(folder.to_dict(), FolderOut)


@get(
    "/v1/folders",
    summary="Watched folders with their watch mode",
    tags=["folders"],
    sync_to_thread=True,
    responses=errors(),
)
def list_folders(services: NamedDependency[Services]) -> FolderList:
    with services.store.read() as conn:
        folders = folder_repo.list_folders(conn)
    states = services.watcher.folder_states()
    items = [{**f.to_dict(), **states.get(f.id, {"mode": "stopped", "error": None, "pending": 0})} for f in folders]
    return reply({"items": items}, FolderList)


@delete(
    "/v1/folders/{folder_id:int}",
    summary="Stop watching a folder (and remove its documents unless keep_documents)",
    tags=["folders"],
    status_code=200,
    sync_to_thread=True,
    responses=errors(404, 422),
)
def remove_folder(
    services: NamedDependency[Services], folder_id: RowId, keep_documents: FromQuery[bool] = False
) -> FolderDeleted:
    services.watcher.remove_folder(folder_id, keep_documents)
    return FolderDeleted(deleted=folder_id)


@post(
    "/v1/folders/{folder_id:int}/rescan",
    summary="Compare the folder with the index now",
    tags=["folders"],
    status_code=202,
    sync_to_thread=True,
    responses=errors(404, 422),
)
def rescan_folder(services: NamedDependency[Services], folder_id: RowId) -> RescanQueued:
    with services.store.read() as conn:
        if folder_repo.get(conn, folder_id) is None:
            raise NotFound(f"no folder {folder_id}", detail={"folder_id": folder_id})
    services.watcher.rescan(folder_id)
    return RescanQueued(folder_id=folder_id, rescan="queued")


@get(
    "/v1/coverage",
    summary="Per folder and scope: how many files are indexed, pending, skipped, failed and why",
    tags=["folders"],
    sync_to_thread=True,
    responses=errors(),
)
def get_coverage(services: NamedDependency[Services]) -> Coverage:
    with services.store.read() as conn:
        return reply(coverage(conn), Coverage)


ROUTES = [add_folder, list_folders, remove_folder, rescan_folder, get_coverage]
