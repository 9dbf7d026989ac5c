"""Sync: session (sign in/out), status, run now, dead letters, conflicts, share URLs."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.api.guards import json_body
from backend.api.params import QueryRowId, RowId
from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.sync import ConflictPage, DeadLetterPage, Requeued, ShareUrl, SyncRun, SyncStatus
from backend.services import Services

MAX_PAGE = 500


class SessionRequest(msgspec.Struct, forbid_unknown_fields=True):
    supabase_url: str
    anon_key: str
    access_token: str | None = None
    refresh_token: str | None = None
    email: str | None = None
    password: str | None = None


class ShareRequest(msgspec.Struct, forbid_unknown_fields=True):
    expires_in: int = 3600


@post(
    "/v1/sync/session",
    summary="Sign in to Supabase: {supabase_url, anon_key, access_token, refresh_token} or {..., email, password}",
    tags=["sync"],
    status_code=200,
    guards=[json_body],
    sync_to_thread=True,
    responses=errors(400, 415, 422, 503),
)
def create_session(services: NamedDependency[Services], data: JSONBody[SessionRequest]) -> SyncStatus:
    req = data
    return reply(services.sync.configure(
        req.supabase_url, req.anon_key, access_token=req.access_token, refresh_token=req.refresh_token,
        email=req.email, password=req.password,
    ), SyncStatus)  # fmt: skip


@delete(
    "/v1/sync/session", summary="Sign out (local data is kept)", tags=["sync"], status_code=200, sync_to_thread=True,
    responses=errors(),
)  # fmt: skip
def delete_session(services: NamedDependency[Services]) -> SyncStatus:
    return reply(services.sync.sign_out(), SyncStatus)


@get("/v1/sync/status", summary="Sync state: user, online, pending, dead letters, last run", tags=["sync"],
     sync_to_thread=True, responses=errors())  # fmt: skip
def sync_status(services: NamedDependency[Services]) -> SyncStatus:
    return reply(services.sync.sync_status(), SyncStatus)


@post("/v1/sync/run", summary="Run one sync now and return its report", tags=["sync"], status_code=200,
      sync_to_thread=True, responses=errors(409, 422, 503))  # fmt: skip
def run_sync(services: NamedDependency[Services]) -> SyncRun:
    return reply({"report": services.sync.run_once(), "status": services.sync.sync_status()}, SyncRun)


@get("/v1/sync/dead-letters", summary="Changes Supabase rejected (never dropped)", tags=["sync"], sync_to_thread=True,
     responses=errors(422))  # fmt: skip
def list_dead_letters(
    services: NamedDependency[Services],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    before: QueryRowId = None,
) -> DeadLetterPage:
    items = services.sync.dead_letters(limit, before)
    return reply({"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}, DeadLetterPage)


@post(
    "/v1/sync/dead-letters/{letter_id:int}/retry",
    summary="Queue a dead-lettered document for push again",
    tags=["sync"],
    status_code=202,
    sync_to_thread=True,
    responses=errors(404, 422),
)
def retry_dead_letter(services: NamedDependency[Services], letter_id: RowId) -> Requeued:
    return reply(services.sync.retry_dead_letter(letter_id), Requeued)


@get("/v1/sync/conflicts", summary="Concurrent edits kept as conflicted copies", tags=["sync"], sync_to_thread=True,
     responses=errors(422))  # fmt: skip
def list_conflicts(
    services: NamedDependency[Services],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    before: QueryRowId = None,
) -> ConflictPage:
    items = services.sync.conflicts(limit, before)
    return reply({"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}, ConflictPage)


@post(
    "/v1/documents/{doc_id:str}/share-url",
    summary="An expiring signed URL of the document's cloud copy {expires_in}",
    tags=["sync"],
    status_code=200,
    guards=[json_body],
    sync_to_thread=True,
    responses=errors(400, 404, 409, 415, 422, 503),
)
def share_url(services: NamedDependency[Services], doc_id: FromPath[str], data: JSONBody[ShareRequest]) -> ShareUrl:
    return reply(services.sync.share_url(doc_id, data.expires_in), ShareUrl)


ROUTES = [
    create_session,
    delete_session,
    sync_status,
    run_sync,
    list_dead_letters,
    retry_dead_letter,
    list_conflicts,
    share_url,
]
