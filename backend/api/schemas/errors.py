"""The error body every non-2xx answer carries, and the OpenAPI responses that declare it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ErrorBody(msgspec.Struct):
    """``{"error": code, "message": text, "detail": object|null}`` (see ``backend/errors.py``)."""

    error: str
    """Stable machine-readable code, e.g. ``not_found``, ``validation_failed``, ``model_missing``."""
    message: str
    """Human-readable explanation the UI can show."""
    detail: Any
    """Structured context (field names, limits, ids) or null."""


_WHY = {
    400: "Malformed request (unparsable JSON or multipart body)",
    401: "Missing or wrong bearer token",
    403: "Host header or Origin not allowed",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "Body or upload over the configured limit",
    415: "Body in a media type this route does not accept",
    422: "A field or parameter has an invalid value",
    429: "The ingest queue is over its limit; retry after Retry-After seconds",
    503: "A component this request needs is starting, failed or not configured",
}

EDGE = (401, 403)
"""Every route except /v1/health can answer these (the security edge runs before any route)."""


def errors(*statuses: int, edge: bool = True) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the error statuses a handler can answer, all with :class:`ErrorBody`."""
    codes = sorted({*statuses, *(EDGE if edge else ())})
    return {
        code: ResponseSpec(ErrorBody, description=_WHY.get(code, HTTPStatus(code).phrase), generate_examples=False)
        for code in codes
    }
