"""The ASGI edge in front of the Litestar app: request ids, Host/Origin/token checks, CORS,
metrics and the access log.

It wraps the whole application (not individual routes), so no route — registered now or
added later — can be reached without the token, and unknown paths answer 401 rather than
revealing which routes exist.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from backend.logs import request_id_var
from backend.metrics import Metrics
from backend.security import host_allowed, origin_allowed, token_matches

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("docsidecar.http")

PUBLIC_PATHS = frozenset({"/v1/health"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
_CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Request-ID, Last-Event-ID"
_QUIET_ROUTES = frozenset({"/v1/health", "/v1/metrics"})


class Edge:
    """ASGI wrapper; ``litestar`` is the wrapped app (routes, OpenAPI schema)."""

    def __init__(
        self,
        app: Any,
        *,
        token: str,
        hosts: frozenset[str],
        origins: tuple[str, ...],
        metrics: Metrics,
    ) -> None:
        self.app: ASGIApp = app
        self._token = token
        self._hosts = hosts
        self._origins = origins
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = _headers(scope["headers"])
        presented = headers.get("x-request-id", "")
        request_id = presented if _REQUEST_ID.match(presented) else uuid.uuid4().hex
        ctx_token = request_id_var.set(request_id)
        started = time.perf_counter()
        origin = headers.get("origin")
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        if origin is not None and origin_allowed(origin, self._origins):
            extra += [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-expose-headers", b"X-Request-ID, Retry-After"),
                (b"vary", b"Origin"),
            ]
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            refusal = self._refusal(scope, headers, origin)
            if refusal is not None:
                await _send_json(send_with_headers, *refusal)
            elif self._is_preflight(scope, headers, origin):
                await _send_preflight(send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            elapsed = time.perf_counter() - started
            self._metrics.observe_request(route, scope["method"], status, elapsed)
            log.log(
                logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                "%s %s -> %d",
                scope["method"],
                scope["path"],
                status,
                extra={"route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)},
            )
            request_id_var.reset(ctx_token)

    def _refusal(
        self, scope: Scope, headers: dict[str, str], origin: str | None
    ) -> tuple[int, str, str, list[tuple[bytes, bytes]]] | None:
        if not host_allowed(headers.get("host"), self._hosts):
            return 403, "forbidden_host", "Host header is not this sidecar's loopback address", []
        if origin is not None and not origin_allowed(origin, self._origins):
            return 403, "forbidden_origin", f"origin {origin!r} is not allowed", []
        if self._is_preflight(scope, headers, origin) or scope["path"] in PUBLIC_PATHS:
            return None
        if not token_matches(headers.get("authorization"), self._token):
            return (
                401,
                "unauthorized",
                "missing or invalid bearer token",
                [(b"www-authenticate", b"Bearer")],
            )
        return None

    @staticmethod
    def _is_preflight(scope: Scope, headers: dict[str, str], origin: str | None) -> bool:
        return scope["method"] == "OPTIONS" and origin is not None and "access-control-request-method" in headers


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


async def _send_json(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": code, "message": message, "detail": None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_preflight(send: Send) -> None:
    headers: list[Any] = [
        (b"access-control-allow-methods", _CORS_ALLOW_METHODS.encode()),
        (b"access-control-allow-headers", _CORS_ALLOW_HEADERS.encode()),
        (b"access-control-max-age", b"600"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
