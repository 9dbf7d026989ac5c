"""Sync: session (sign in/out), status, run now, dead letters, conflicts, share URLs."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.api.guards import json_body
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
)
def create_session(services: NamedDependency[Services], data: JSONBody[SessionRequest]) -> dict[str, Any]:
    req = data
    return services.sync.configure(
        req.supabase_url, req.anon_key, access_token=req.access_token, refresh_token=req.refresh_token,
        email=req.email, password=req.password,
    )  # fmt: skip


@delete(
    "/v1/sync/session", summary="Sign out (local data is kept)", tags=["sync"], status_code=200, sync_to_thread=True
)
def delete_session(services: NamedDependency[Services]) -> dict[str, Any]:
    return services.sync.sign_out()


@get("/v1/sync/status", summary="Sync state: user, online, pending, dead letters, last run", tags=["sync"],
     sync_to_thread=True)  # fmt: skip
def sync_status(services: NamedDependency[Services]) -> dict[str, Any]:
    return services.sync.sync_status()


@post("/v1/sync/run", summary="Run one sync now and return its report", tags=["sync"], status_code=200,
      sync_to_thread=True)  # fmt: skip
def run_sync(services: NamedDependency[Services]) -> dict[str, Any]:
    return {"report": services.sync.run_once(), "status": services.sync.sync_status()}


@get("/v1/sync/dead-letters", summary="Changes Supabase rejected (never dropped)", tags=["sync"], sync_to_thread=True)
def list_dead_letters(
    services: NamedDependency[Services],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    before: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> dict[str, Any]:
    items = services.sync.dead_letters(limit, before)
    return {"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}


@post(
    "/v1/sync/dead-letters/{letter_id:int}/retry",
    summary="Queue a dead-lettered document for push again",
    tags=["sync"],
    status_code=202,
    sync_to_thread=True,
)
def retry_dead_letter(services: NamedDependency[Services], letter_id: FromPath[int]) -> dict[str, Any]:
    return services.sync.retry_dead_letter(letter_id)


@get("/v1/sync/conflicts", summary="Concurrent edits kept as conflicted copies", tags=["sync"], sync_to_thread=True)
def list_conflicts(
    services: NamedDependency[Services],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    before: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> dict[str, Any]:
    items = services.sync.conflicts(limit, before)
    return {"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}


@post(
    "/v1/documents/{doc_id:str}/share-url",
    summary="An expiring signed URL of the document's cloud copy {expires_in}",
    tags=["sync"],
    status_code=200,
    guards=[json_body],
    sync_to_thread=True,
)
def share_url(
    services: NamedDependency[Services], doc_id: FromPath[str], data: JSONBody[ShareRequest]
) -> dict[str, Any]:
    return services.sync.share_url(doc_id, data.expires_in)


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
