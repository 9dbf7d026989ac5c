"""Schemathesis hooks of the API fuzz test (loaded through ``SCHEMATHESIS_HOOKS``).

``error_body_shape``: every answer with status >= 400 is JSON ``{"error", "message", "detail"}``
with a non-empty string code and a string message — the contract the desktop app relies on
(README, "API at a glance").
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

ERROR_KEYS = {"error", "message", "detail"}


@schemathesis.check
def error_body_shape(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if not str(ctype).startswith("application/json"):
        raise AssertionError(f"{response.status_code} answered with content-type {ctype!r}, not JSON")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.content[:200]!r}") from exc
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        raise AssertionError(f"{response.status_code} body is not {{error, message, detail}}: {body!r}"[:500])
    if not isinstance(body["error"], str) or not body["error"] or not isinstance(body["message"], str):
        raise AssertionError(f"{response.status_code} body has no string error code and message: {body!r}"[:500])
