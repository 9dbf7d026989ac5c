"""Errors the sidecar reports to its callers, as values the UI can show.

Hierarchy (each class fixes an HTTP status and a stable machine-readable ``code``)::

    SidecarError                    500 internal_error
    ├── BadRequest                  400 bad_request
    │   └── ValidationFailed        422 validation_failed
    ├── Unauthorized                401 unauthorized
    ├── Forbidden                   403 forbidden
    ├── NotFound                    404 not_found
    ├── Conflict                    409 conflict
    ├── PayloadTooLarge             413 payload_too_large
    ├── UnsupportedMediaType        415 unsupported_media_type
    ├── TooManyRequests             429 too_many_requests
    └── Unavailable                 503 unavailable  (component starting, failed or stopped)

Subsystems subclass these and override ``code`` so the JSON body names the precise cause,
e.g. ``class ModelMissing(Unavailable): code = "model_missing"``. The mapping to an HTTP
response lives in one place, :mod:`backend.api.errors`; everything else raises.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SidecarError(Exception):
    """Base of every error the sidecar reports; carries status, code, message and detail."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        """The JSON body every non-2xx response carries."""
        return {"error": self.code, "message": self.message, "detail": self.detail}


class BadRequest(SidecarError):
    """The request is malformed or asks for something impossible."""

    status = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    """The request parsed but a field has an invalid value."""

    status = 422
    code = "validation_failed"


class Unauthorized(SidecarError):
    """Missing or wrong bearer token."""

    status = 401
    code = "unauthorized"


class Forbidden(SidecarError):
    """Refused regardless of credentials (wrong Host header, disallowed Origin, path outside
    the allowed roots)."""

    status = 403
    code = "forbidden"


class NotFound(SidecarError):
    """The addressed resource does not exist."""

    status = 404
    code = "not_found"


class Conflict(SidecarError):
    """The request conflicts with the current state (duplicate, wrong state transition)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(SidecarError):
    """The request body or uploaded file exceeds the configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(SidecarError):
    """The request body has a content type the route does not accept."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(SidecarError):
    """Backpressure: a queue is over its limit; retry after ``Retry-After`` seconds."""

    status = 429
    code = "too_many_requests"


class Unavailable(SidecarError):
    """A component needed for this request is starting, failed or stopped."""

    status = 503
    code = "unavailable"
