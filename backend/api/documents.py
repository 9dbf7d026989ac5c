"""Documents: add (upload or local path), list, read, content, chunks, delete, reindex."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import File

from backend.api.params import Offset, QueryRowId
from backend.api.schemas import reply
from backend.api.schemas.errors import errors
from backend.api.schemas.library import ChunkPage, Deleted, DocumentAdded, DocumentOut, DocumentPage, DocumentReindex
from backend.api.uploads import parse_upload
from backend.errors import BadRequest, NotFound, PayloadTooLarge, SidecarError, ValidationFailed
from backend.ingest.service import check_scope, check_tags
from backend.services import Services
from backend.store import chunks as chunk_repo
from backend.store import documents as doc_repo

MAX_PAGE = 500


class PathRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    scope: str | None = None
    tags: list[str] = []


def _decode(raw: bytes, type_: type[Any]) -> Any:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(f"invalid request body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc


@post(
    "/v1/documents",
    status_code=202,
    summary="Add a document: multipart upload (file, scope, tags) or JSON {path, scope, tags}",
    tags=["documents"],
    request_max_body_size=None,
    responses={200: ResponseSpec(DocumentAdded, description="Duplicate upload: the existing document, nothing added",
                                 generate_examples=False),
               **errors(400, 404, 409, 413, 415, 422, 429)},
)  # fmt: skip
async def add_document(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[DocumentAdded]:
    """202 with the document and its ingest job; 200 with ``"duplicate": true`` when the same
    bytes were already uploaded into the same scope (a retried upload), nothing added."""
    settings = services.settings
    ctype = request.headers.get("content-type", "")
    length = request.headers.get("content-length")
    if ctype.split(";")[0].strip().lower() == "application/json":
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            raise PayloadTooLarge(f"request body over {settings.max_body_bytes} bytes")
        body = bytearray()
        async for part in request.stream():
            body.extend(part)
            if len(body) > settings.max_body_bytes:
                raise PayloadTooLarge(f"request body over {settings.max_body_bytes} bytes")
        req = _decode(bytes(body), PathRequest)
        doc, job = await _in_thread(services.ingest.add_path, req.path, check_scope(req.scope), check_tags(req.tags))
        return Response(reply({"document": doc.to_dict(), "job_id": job.id}, DocumentAdded), status_code=202)
    if length is not None and length.isdigit() and int(length) > settings.max_upload_bytes + 1024 * 1024:
        raise PayloadTooLarge(
            f"upload over the limit of {settings.max_upload_bytes} bytes",
            detail={"limit": settings.max_upload_bytes},
        )
    upload = await parse_upload(request.stream(), ctype, services.ingest.blobs, settings.max_upload_bytes)
    try:
        scope_field = upload.fields.get("scope")
        scope = check_scope(scope_field[0] if scope_field else None)
        tags = check_tags([t for raw in upload.fields.get("tags", []) for t in raw.split(",") if t.strip()])
        doc, job, duplicate = await _in_thread(
            services.ingest.add_upload_once, upload.blob_key, upload.size, upload.filename, scope, tags
        )
    except SidecarError:
        await _in_thread(services.ingest.discard_upload, upload.blob_key)
        raise
    added = reply({"document": doc.to_dict(), "job_id": job.id, "duplicate": duplicate}, DocumentAdded)
    return Response(added, status_code=200 if duplicate else 202)


async def _in_thread(fn: Any, *args: Any) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(lambda: fn(*args))


@get(
    "/v1/documents",
    summary="List documents (newest first, cursor-paginated)",
    tags=["documents"],
    sync_to_thread=True,
    responses=errors(422),
)
def list_documents(
    services: NamedDependency[Services],
    doc_scope: Annotated[str | None, QueryParameter(name="scope")] = None,
    tag: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    folder_id: QueryRowId = None,
    source: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
    cursor: FromQuery[str | None] = None,
) -> DocumentPage:
    if status is not None and status not in doc_repo.STATUSES:
        raise ValidationFailed(f"unknown status {status!r}", detail={"allowed": list(doc_repo.STATUSES)})
    if source is not None and source not in doc_repo.SOURCES:
        raise ValidationFailed(f"unknown source {source!r}", detail={"allowed": list(doc_repo.SOURCES)})
    query = doc_repo.ListQuery(doc_scope, tag, status, folder_id, source, limit, cursor)
    with services.store.read() as conn:
        try:
            docs, next_cursor = doc_repo.list_documents(conn, query)
        except ValueError as exc:
            raise ValidationFailed(str(exc), detail={"field": "cursor"}) from exc
    return reply({"items": [d.to_dict() for d in docs], "next_cursor": next_cursor}, DocumentPage)


def _get_doc(services: Services, doc_id: FromPath[str]) -> doc_repo.Document:
    with services.store.read() as conn:
        doc = doc_repo.get(conn, doc_id)
    if doc is None:
        raise NotFound(f"no document {doc_id}", detail={"document_id": doc_id})
    return doc


@get(
    "/v1/documents/{doc_id:str}", summary="One document", tags=["documents"], sync_to_thread=True,
    responses=errors(404),
)  # fmt: skip
def get_document(services: NamedDependency[Services], doc_id: FromPath[str]) -> DocumentOut:
    return reply(_get_doc(services, doc_id).to_dict(), DocumentOut)


@get(
    "/v1/documents/{doc_id:str}/content",
    summary="The document's original bytes",
    tags=["documents"],
    sync_to_thread=True,
    responses={200: ResponseSpec(bytes, media_type="*/*", description="The file, in its own media type",
                                 generate_examples=False), **errors(404, 503)},
)  # fmt: skip
def get_content(services: NamedDependency[Services], doc_id: FromPath[str]) -> File:
    doc = _get_doc(services, doc_id)
    if not doc.path and not doc.blob_key and doc.source == "remote":
        doc = services.sync.fetch_original(doc_id) or doc  # synced with sync_download=on_demand
    path = services.ingest.blobs.path_of(doc.blob_key) if doc.blob_key else Path(doc.path or "")
    if (not doc.path and not doc.blob_key) or not path.is_file():
        raise NotFound(
            "the document's file is no longer available",
            detail={"document_id": doc_id, "path": doc.path},
        )
    return File(
        path=path,
        filename=doc.filename,
        media_type=doc.mime or "application/octet-stream",
        content_disposition_type="attachment",
    )


@get(
    "/v1/documents/{doc_id:str}/chunks",
    summary="The document's chunks in order",
    tags=["documents"],
    sync_to_thread=True,
    responses=errors(404, 422),
)
def get_chunks(
    services: NamedDependency[Services],
    doc_id: FromPath[str],
    offset: Offset = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
) -> ChunkPage:
    doc = _get_doc(services, doc_id)
    with services.store.read() as conn:
        items = chunk_repo.list_chunks(conn, doc_id, offset=offset, limit=limit)
    nxt = offset + len(items) if offset + len(items) < doc.chunk_count else None
    return reply({"document_id": doc_id, "total": doc.chunk_count, "items": items, "next_offset": nxt}, ChunkPage)


@delete(
    "/v1/documents/{doc_id:str}",
    summary="Delete a document and its chunks/vectors",
    tags=["documents"],
    status_code=200,
    sync_to_thread=True,
    responses=errors(404, 409),
)
def delete_document(services: NamedDependency[Services], doc_id: FromPath[str]) -> Deleted:
    doc = services.ingest.delete(doc_id)
    return Deleted(deleted=doc.id)


@post(
    "/v1/documents/{doc_id:str}/reindex",
    summary="Re-extract and re-index a document",
    tags=["documents"],
    status_code=202,
    sync_to_thread=True,
    responses=errors(404),
)
def reindex_document(services: NamedDependency[Services], doc_id: FromPath[str]) -> DocumentReindex:
    job = services.ingest.reindex(doc_id)
    return DocumentReindex(document_id=doc_id, job_id=job.id)


ROUTES = [
    add_document,
    list_documents,
    get_document,
    get_content,
    get_chunks,
    delete_document,
    reindex_document,
]
