"""The one place errors become HTTP responses: ``{"error", "message", "detail"}`` always."""

from __future__ import annotations

import logging
from typing import Any

import apsw
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from backend.errors import SidecarError, Unavailable, ValidationFailed
from backend.logs import request_id_var
from backend.maintenance.diskspace import DiskFull, is_disk_full

log = logging.getLogger("docsidecar.errors")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    507: "disk_full",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    503: "unavailable",
}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def sidecar_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, SidecarError)
    if exc.status >= 500:
        log.warning("%s: %s", exc.code, exc.message)
    return _json(exc.status, exc.to_body(), exc.headers)


def http_exception(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # Litestar reports a body/parameter that parsed but has a wrong type or value as 400;
        # backend.errors.ValidationFailed (raised by our own checks) is 422: use one status.
        status = ValidationFailed.status if status == 400 else status
        code = "validation_failed" if status == ValidationFailed.status else _CODES.get(status, "bad_request")
        message = "request validation failed" if not exc.detail or exc.detail == "Bad Request" else exc.detail
    else:
        code = _CODES.get(status, "internal_error" if status >= 500 else "bad_request")
        message = exc.detail
    if status >= 500:
        log.error("HTTP %d: %s", status, message)
        message = f"internal error (request id {request_id_var.get()})"
    return _json(status, {"error": code, "message": message, "detail": exc.extra or None}, exc.headers)


def unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error", exc_info=exc)
    body = {
        "error": "internal_error",
        "message": f"internal error; see the sidecar log for request id {request_id_var.get()}",
        "detail": None,
    }
    return _json(500, body)


class IndexDamaged(Unavailable):
    """SQLite reports a damaged database or index; ``docsidecar doctor`` checks and rebuilds."""

    code = "index_damaged"


_DAMAGE_HINTS = ("fts5", "vtable constructor failed", "malformed")


def storage_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A write that failed for lack of space (SQLite's SQLITE_FULL, ENOSPC) is the 507 the
    client can show and retry later; it changed nothing. A damaged index is a 503 that says
    how to repair it. Other I/O errors stay 500s."""
    if isinstance(exc, apsw.CorruptError) or (
        isinstance(exc, apsw.SQLError) and any(h in str(exc).lower() for h in _DAMAGE_HINTS)
    ):
        log.error("database damage reported: %s", exc)
        damaged = IndexDamaged(
            f"the database reports damage ({exc}); run 'docsidecar doctor' (or POST /v1/doctor) to check it "
            "and rebuild the search indexes from the stored documents",
            detail={"cause": str(exc)},
        )
        return sidecar_error(request, damaged)
    if not is_disk_full(exc):
        return unexpected(request, exc)
    err = DiskFull(
        "the disk holding the data dir is full: nothing was stored; free some space and retry",
        detail={"cause": str(exc)},
    )
    return sidecar_error(request, err)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SidecarError: sidecar_error,
    HTTPException: http_exception,
    OSError: storage_error,
    apsw.FullError: storage_error,
    apsw.CorruptError: storage_error,
    apsw.SQLError: storage_error,
    Exception: unexpected,
}
