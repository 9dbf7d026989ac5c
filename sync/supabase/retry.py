"""The one retry policy: classify every Supabase failure once, retry only what is transient.

Classes (``SupabaseError.kind``):

==============  ==============================================================  ================
kind            when                                                            what happens
==============  ==============================================================  ================
transient       network errors, 408, 429, 5xx, PostgREST PGRST000-003,          backoff + jitter
                Storage SlowDown/ResourceLocked/DatabaseTimeout, Auth 429/5xx    (Retry-After wins)
auth_expired    PostgREST 401 PGRST301/302/303, Storage "exp" claim / InvalidJWT  refresh once, resend
signed_out      Auth refresh_token_already_used / _not_found, session_not_found  stop; sign in again
                / session_expired
exists          Storage KeyAlreadyExists / Duplicate (content-addressed keys:    treated as success
                the object is already there)
not_found       Storage NoSuchKey / 404                                          caller decides
permanent       22xxx, 23xxx, 42501, PGRST1xx/2xx, other 4xx, Storage errors     dead letter, never
                with a real code (InvalidKey, EntityTooLarge, AccessDenied...)   retried
==============  ==============================================================  ================

Storage answers HTTP 400 for nearly every error and puts the real status in the body's
``statusCode``, so Storage errors are classified by the body, not the HTTP status.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from sync.errors import ErrorKind, SupabaseError

T = TypeVar("T")

SIGNED_OUT_CODES = frozenset(
    {"refresh_token_already_used", "refresh_token_not_found", "session_not_found", "session_expired", "user_not_found"}
)
_STORAGE_EXISTS = frozenset({"KeyAlreadyExists", "ResourceAlreadyExists", "Duplicate"})
_STORAGE_TRANSIENT = frozenset({"SlowDown", "ResourceLocked", "DatabaseTimeout", "InternalError", "DatabaseError"})
_STORAGE_TRANSIENT_STATUS = frozenset({"408", "423", "429", "500", "502", "503", "504", "544"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-request retries; a run that still fails leaves its work queued for the next run."""

    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0
    """Longest server-requested ``Retry-After`` honoured (a longer one fails the request)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_initial_s < 0 or self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("invalid retry policy")


# -- classification (pure) ------------------------------------------------------------------
def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _text(body: Any, *keys: str) -> str | None:
    if isinstance(body, Mapping):
        for key in keys:
            value = body.get(key)
            if value is not None and value != "":
                return str(value)
    return None


def classify(service: str, status: int, body: Any, headers: Mapping[str, str] | None = None) -> SupabaseError | None:
    """The error for a response (``None`` for 2xx). ``service``: rest, storage, tus or auth."""
    if 200 <= status < 300:
        return None
    headers = headers or {}
    retry_after = parse_retry_after(headers.get("retry-after"))
    message = _text(body, "message", "msg", "error_description", "error") or f"HTTP {status}"
    if service in ("storage", "tus"):
        kind, code = _storage_kind(service, status, body, message)
    elif service == "auth":
        kind, code = _auth_kind(status, body, headers)
    else:
        kind, code = _rest_kind(status, body)
    return SupabaseError(
        kind, message, service=service, http_status=status, remote_code=code, retry_after=retry_after, body=body
    )


def _rest_kind(status: int, body: Any) -> tuple[ErrorKind, str | None]:
    code = _text(body, "code")
    if status == 401 and code in ("PGRST301", "PGRST302", "PGRST303"):
        return "auth_expired", code
    if code in ("PGRST000", "PGRST001", "PGRST002", "PGRST003"):
        return "transient", code
    if status in (408, 429) or status >= 500:
        return "transient", code
    return "permanent", code


def _storage_kind(service: str, status: int, body: Any, message: str) -> tuple[ErrorKind, str | None]:
    code = _text(body, "code", "error")
    real = _text(body, "statusCode") or str(status)
    if status in (408, 429) or status >= 500 or real in _STORAGE_TRANSIENT_STATUS or code in _STORAGE_TRANSIENT:
        return "transient", code
    if code in _STORAGE_EXISTS:
        return "exists", code
    if real == "404" or code in ("NoSuchKey", "NotFound", "NoSuchUpload"):
        return "not_found", code
    lowered = message.lower()
    if code == "InvalidJWT" or ("exp" in lowered and "claim" in lowered) or "jwt expired" in lowered:
        return "auth_expired", code
    if service == "tus" and status == 410:
        return "not_found", code
    return "permanent", code


def _auth_kind(status: int, body: Any, headers: Mapping[str, str]) -> tuple[ErrorKind, str | None]:
    code = headers.get("x-sb-error-code") or _text(body, "error_code")
    raw = _text(body, "code")
    if code is None and raw is not None and not raw.isdigit():
        code = raw
    if code in SIGNED_OUT_CODES:
        return "signed_out", code
    if status == 429 or code == "over_request_rate_limit" or status >= 500:
        return "transient", code
    if code in ("bad_jwt", "no_authorization"):
        return "auth_expired", code
    return "permanent", code


def transport_error(service: str, exc: httpx.TransportError) -> SupabaseError:
    """Connection refused, reset, timed out or closed without an answer: always transient
    (the request may or may not have been applied; every write we send is idempotent)."""
    return SupabaseError("transient", f"{type(exc).__name__}: {exc}", service=service)


# -- retrying -------------------------------------------------------------------------------
def backoff_delay(policy: RetryPolicy, failures: int, retry_after: float | None = None) -> float:
    """Delay before retry number ``failures`` (1-based): exponential with jitter, capped; a
    server ``Retry-After`` (bounded by the policy) wins when longer. For loops that cannot use
    :class:`Retrier` (TUS resumes from the server's offset instead of resending)."""
    exp = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** max(0, failures - 1))
    jittered = min(policy.backoff_max_s, exp + random.uniform(0, policy.backoff_initial_s))
    return float(max(jittered, min(retry_after or 0.0, policy.retry_after_max_s)))


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SupabaseError) and exc.kind == "transient"


class Retrier:
    """Runs a call with the policy: transient errors back off (exponential, jittered; a server
    ``Retry-After`` is honoured when longer), everything else propagates at once."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(
            multiplier=policy.backoff_initial_s, max=policy.backoff_max_s, jitter=policy.backoff_initial_s
        )
        self.retries = 0

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        server = exc.retry_after if isinstance(exc, SupabaseError) and exc.retry_after else 0.0
        return float(max(self._backoff(state), min(server, self.policy.retry_after_max_s)))

    def _count(self, _: RetryCallState) -> None:
        self.retries += 1

    def call(self, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            before_sleep=self._count,
            reraise=True,
        )
        return retrying(fn)
