"""The transport every Supabase call goes through: one httpx client per project, the
classification + retries of :mod:`sync.supabase.retry`, and one refresh-and-resend on an
expired token.

Nothing here connects at construction: the httpx client opens connections on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import msgspec

from sync.errors import SupabaseError
from sync.supabase.retry import Retrier, RetryPolicy, classify, transport_error

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
API_VERSION_HEADER = ("X-Supabase-Api-Version", "2024-01-01")
MAX_REFRESHES = 2
"""Refresh-and-resend rounds per request: a fresh token refused again means skew between Auth
and the API (or a revoked session), not something more refreshes fix."""


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def refresh(self, failed_token: str | None) -> str: ...


@dataclass
class CallStats:
    """Counters for status and benchmarks (time spent waiting on HTTP, retries, refreshes)."""

    requests: int = 0
    retries: int = 0
    http_seconds: float = 0.0
    bytes_sent: int = 0


def decode_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    ctype = response.headers.get("content-type", "")
    if "json" not in ctype:
        return response.text[:2000] if ctype.startswith("text/") else None
    try:
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return response.text[:2000]


class SupabaseHttp:
    def __init__(
        self,
        supabase_url: str,
        anon_key: str,
        policy: RetryPolicy,
        *,
        tokens: TokenSource | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.base_url = supabase_url.rstrip("/")
        self.anon_key = anon_key
        self.policy = policy
        self.tokens = tokens
        self._sleep = sleep or time.sleep
        self._clock = clock or time.perf_counter
        self.stats = CallStats()
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"apikey": anon_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def retrier(self) -> Retrier:
        return Retrier(self.policy, self._sleep)

    # -- one request ------------------------------------------------------------------------
    def send_once(
        self,
        service: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One attempt: raises a classified :class:`SupabaseError` on any failure."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        body = content
        if json_body is not None:
            body = msgspec.json.encode(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        started = self._clock()
        self.stats.requests += 1
        self.stats.bytes_sent += len(body or b"")
        try:
            response = self.client.request(method, path, content=body, headers=hdrs, params=params)
        except httpx.TransportError as exc:
            raise transport_error(service, exc) from exc
        finally:
            self.stats.http_seconds += self._clock() - started
        error = classify(service, response.status_code, _error_body(response), response.headers)
        if error is not None:
            raise error
        return response

    # -- with retries and token refresh -------------------------------------------------------
    def send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        auth: bool = True,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Transient failures are retried by the policy; an expired token is refreshed and the
        request resent (at most ``MAX_REFRESHES`` times); everything else raises."""
        refreshes = 0
        while True:
            token = self.token() if auth else None
            retrier = self.retrier()
            try:
                call = functools.partial(
                    self.send_once, service, method, path, token=token, json_body=json_body, content=content,
                    headers=headers, params=params,
                )  # fmt: skip
                return retrier.call(call)
            except SupabaseError as exc:
                if exc.kind == "auth_expired" and auth and refreshes < MAX_REFRESHES and self.tokens is not None:
                    self.tokens.refresh(token)
                    refreshes += 1
                    continue
                raise
            finally:
                self.stats.retries += retrier.retries

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def token(self) -> str:
        if self.tokens is None:
            raise SupabaseError("permanent", "no session for an authenticated request", service="client")
        return self.tokens.access_token()


def _error_body(response: httpx.Response) -> Any:
    if response.status_code < 300:
        return None
    return decode_body(response)
