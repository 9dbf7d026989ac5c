"""Route guards shared by handlers."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.errors import UnsupportedMediaType


def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a body that is not declared as JSON (415) before anything parses it."""
    if connection.scope.get("method") not in {"POST", "PUT", "PATCH"}:
        return
    ctype = connection.headers.get("content-type", "")
    length = connection.headers.get("content-length")
    if not ctype and length in (None, "0"):
        return  # no body at all
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the request body as application/json", detail={"content_type": ctype or None})
