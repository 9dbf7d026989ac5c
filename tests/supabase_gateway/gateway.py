"""The Supabase stand-in: one HTTP server routing to Auth, PostgREST, Storage and TUS emulations
on a real PostgreSQL database, with deterministic fault injection in front.

Usage::

    gw = Gateway(GatewayConfig(database_uri=..., admin_uri=...))
    gw.start()
    user_id = gw.create_user("a@example.com", "secret")
    ... httpx / supabase-py against gw.url with apikey gw.anon_key ...
    gw.stop()
"""

from __future__ import annotations

import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .auth import AuthService
from .db import ConnectionPool
from .errors import ApiError, auth_error, gateway_error, postgrest_error, storage_error
from .faults import Decision, Fault, FaultInjector, FaultPlan
from .http import DropConnection, HttpServer, Request, Response
from .rest import RestService
from .storage import StorageService
from .tokens import Clock, TokenError, Tokens
from .tus import TusService

DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


@dataclass(frozen=True)
class GatewayConfig:
    database_uri: str  # connects as "authenticator" (API requests)
    admin_uri: str  # connects as a superuser (auth tables, bucket lookups)
    jwt_secret: str = DEFAULT_JWT_SECRET
    access_token_ttl_s: int = 3600
    refresh_reuse_interval_s: float = 10.0
    max_file_size: int = 50 * 1024 * 1024
    tus_chunk_size: int = 6 * 1024 * 1024
    pool_size: int = 8
    max_rows: int = 1000


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int | None  # None when the connection was dropped
    fault: Fault


@dataclass
class Gateway:
    config: GatewayConfig
    faults: FaultInjector = field(default_factory=FaultInjector)
    clock: Clock = field(default_factory=Clock)
    log: list[LoggedRequest] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens = Tokens(self.config.jwt_secret, self.clock)
        self._log_lock = threading.Lock()
        self._server: HttpServer | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._pool = ConnectionPool(self.config.database_uri, self.config.pool_size)
        self._admin_pool = ConnectionPool(self.config.admin_uri, 4)
        self._auth: AuthService | None = None
        self._rest: RestService | None = None
        self._storage: StorageService | None = None
        self._tus: TusService | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="supabase-gw-")
        self._pool.start()
        self._admin_pool.start()
        self._server = HttpServer(self._app)
        self._server.start()
        files = Path(self._tmp.name)
        self._auth = AuthService(
            self._admin_pool,
            self._tokens,
            self.clock,
            f"{self.url}/auth/v1",
            self.config.access_token_ttl_s,
            self.config.refresh_reuse_interval_s,
        )
        self._rest = RestService(self._pool, self._tokens, self.config.max_rows)
        self._storage = StorageService(self._pool, self._admin_pool, self._tokens, files, self.config.max_file_size)
        self._tus = TusService(self._storage, self.url, self.config.tus_chunk_size)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._pool.stop()
        self._admin_pool.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- facts and helpers for tests ----------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("gateway is not started")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def anon_key(self) -> str:
        return self._tokens.api_key("anon")

    @property
    def service_role_key(self) -> str:
        return self._tokens.api_key("service_role")

    @property
    def auth(self) -> AuthService:
        if self._auth is None:
            raise RuntimeError("gateway is not started")
        return self._auth

    def create_user(self, email: str, password: str) -> str:
        """Admin helper: a confirmed email/password user; returns the user id."""
        return self.auth.create_user(email, password)

    def sign_in(self, user_id: str) -> dict[str, Any]:
        """Admin helper: a fresh session (access + refresh token) for ``user_id``."""
        return self.auth.issue_session(user_id)

    def set_faults(self, plan: FaultPlan) -> None:
        self.faults.set_plan(plan)

    def requests(self, path_prefix: str = "") -> list[LoggedRequest]:
        with self._log_lock:
            return [r for r in self.log if r.path.startswith(path_prefix)]

    # -- request pipeline ---------------------------------------------------------------------
    def _app(self, request: Request) -> Response:
        decision = self.faults.decide(request.method, request.path)
        if decision.delay_s:
            time.sleep(decision.delay_s)
        if decision.fault is Fault.DROP:
            self._record(request, None, decision.fault)
            raise DropConnection
        if decision.fault in (Fault.SERVER_ERROR, Fault.RATE_LIMIT):
            response = self._render(self._injected_error(request.path, decision))
        else:
            try:
                response = self._route(request)
            except ApiError as err:
                response = self._render(err)
            except Exception:  # a gateway bug: answer 500 and keep it for the test to see
                with self._log_lock:
                    self.internal_errors.append(traceback.format_exc())
                response = self._render(gateway_error(500, "internal gateway error"))
        if decision.fault is Fault.LOST_RESPONSE:
            self._record(request, None, decision.fault)
            raise DropConnection
        self._record(request, response.status, decision.fault)
        return response

    def _record(self, request: Request, status: int | None, fault: Fault) -> None:
        with self._log_lock:
            self.log.append(LoggedRequest(request.method, request.path, status, fault))

    @staticmethod
    def _render(err: ApiError) -> Response:
        return Response(err.status, err.encoded(), list(err.headers))

    @staticmethod
    def _injected_error(path: str, decision: Decision) -> ApiError:
        if decision.fault is Fault.RATE_LIMIT:
            retry = (("Retry-After", str(decision.retry_after_s)),)
            if path.startswith("/auth/"):
                err = auth_error(429, "over_request_rate_limit", "Request rate limit reached")
            elif path.startswith("/storage/"):
                err = storage_error(429, "SlowDown", "Please reduce your request rate", http_status=429)
            else:
                err = gateway_error(429, "Too Many Requests")
            return ApiError(429, err.body, err.headers + retry)
        status = decision.status
        if path.startswith("/rest/"):
            return postgrest_error(
                status,
                "PGRST001" if status == 503 else "XX000",
                "Database client error. Retrying the connection.",
            )
        if path.startswith("/storage/"):
            return storage_error(500, "InternalError", "Internal server error", http_status=status)
        if path.startswith("/auth/"):
            return auth_error(status, "unexpected_failure", "Unexpected failure")
        return gateway_error(status, "An invalid response was received from the upstream server")

    def _check_api_key(self, request: Request) -> None:
        key = request.header("apikey") or request.query_value("apikey")
        if not key:
            raise gateway_error(401, "No API key found in request")
        try:
            claims = self._tokens.decode(key)
        except TokenError as exc:
            raise gateway_error(401, "Invalid API key") from exc
        if claims.get("role") not in ("anon", "service_role"):
            raise gateway_error(401, "Invalid API key")

    def _route(self, request: Request) -> Response:
        path = request.path
        if request.method == "OPTIONS":
            return Response(204, b"", [("Access-Control-Allow-Origin", "*")], None)
        if path.startswith("/auth/v1/"):
            self._check_api_key(request)
            return self.auth.handle(request)
        if path.startswith("/rest/v1/"):
            self._check_api_key(request)
            assert self._rest is not None
            return self._rest.handle(request)
        if path.startswith("/storage/v1/object/"):
            assert self._storage is not None
            return self._storage.handle(request)
        if path.startswith("/storage/v1/upload/resumable"):
            assert self._tus is not None
            return self._tus.handle(request)
        raise ApiError(404, {"message": "no Route matched with those values"})
