"""Security edge: token on every route, Host and Origin checks, CORS, request ids, errors."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import TEST_PORT, TEST_TOKEN

pytestmark = pytest.mark.anyio

PUBLIC = {("GET", "/v1/health")}


def _concrete(path: str) -> str:
    def fill(match: re.Match[str]) -> str:
        kind = match.group(2) or "str"
        return {"int": "1", "uuid": "00000000-0000-4000-8000-000000000000"}.get(kind, "x")

    return re.sub(r"\{(\w+)(?::(\w+))?\}", fill, path)


def registered_routes(client: AsyncTestClient) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    app = client.edge.app  # type: ignore[attr-defined]
    assert isinstance(app, Litestar)
    routes = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", ())):
            if method not in {"HEAD", "OPTIONS"}:
                routes.append((method, _concrete(route.path)))
    return routes


async def test_every_route_but_health_requires_the_token(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    routes = registered_routes(client)
    assert ("GET", "/v1/status") in routes and ("GET", "/v1/health") in routes
    for method, path in routes:
        for auth in (None, "Bearer wrong", f"Basic {TEST_TOKEN}", "Bearer"):
            headers = {"Authorization": auth} if auth else {}
            if auth is None:
                client.headers.pop("Authorization", None)
            r = await client.request(method, path, headers=headers)
            if (method, path) in PUBLIC:
                assert r.status_code == 200, (method, path)
                continue
            assert r.status_code == 401, (method, path, auth, r.status_code)
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
    client.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    assert (await client.get("/v1/status")).status_code == 200


async def test_unknown_paths_do_not_reveal_routes_without_token(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    client.headers.pop("Authorization")
    r = await client.get("/v1/does-not-exist")
    assert r.status_code == 401
    client.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    r = await client.get("/v1/does-not-exist")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "message": "Not Found", "detail": None}


async def test_method_not_allowed_is_json(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    r = await client.delete("/v1/status")
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        f"evil.example:{TEST_PORT}",
        "127.0.0.1",
        f"127.0.0.1:{TEST_PORT + 1}",
        f"localhost.evil.example:{TEST_PORT}",
        "",
    ],
)
async def test_foreign_host_header_is_refused_even_with_token(client: AsyncTestClient, host: str) -> None:  # type: ignore[type-arg]
    for path in ("/v1/health", "/v1/status"):
        r = await client.get(path, headers={"Host": host})
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden_host"


@pytest.mark.parametrize("host", [f"127.0.0.1:{TEST_PORT}", f"localhost:{TEST_PORT}"])
async def test_loopback_host_forms_accepted(client: AsyncTestClient, host: str) -> None:  # type: ignore[type-arg]
    assert (await client.get("/v1/status", headers={"Host": host})).status_code == 200


async def test_disallowed_origin_refused_and_gets_no_cors_headers(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for origin in ("https://evil.example", "http://localhost:3000", "null"):
        r = await client.get("/v1/status", headers={"Origin": origin})
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden_origin"
        assert "access-control-allow-origin" not in r.headers
        pre = await client.options("/v1/status", headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
        assert pre.status_code == 403
        assert "access-control-allow-origin" not in pre.headers


async def test_allowed_origin_gets_cors_and_preflight(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    origin = "app://docsidecar"
    client.headers.pop("Authorization")
    pre = await client.options(
        "/v1/status",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert pre.status_code == 204, "preflight carries no token and must still succeed"
    assert pre.headers["access-control-allow-origin"] == origin
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    r = await client.get("/v1/status", headers={"Origin": origin})
    assert r.status_code == 401, "CORS does not replace the token"
    assert r.headers["access-control-allow-origin"] == origin
    r = await client.get("/v1/status", headers={"Origin": origin, "Authorization": f"Bearer {TEST_TOKEN}"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == origin


async def test_request_id_echoed_or_generated(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    r = await client.get("/v1/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r1, r2 = await client.get("/v1/health"), await client.get("/v1/health")
    assert re.fullmatch(r"[0-9a-f]{32}", r1.headers["x-request-id"])
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]
    bad = await client.get("/v1/health", headers={"X-Request-ID": "x" * 500})
    assert bad.headers["x-request-id"] != "x" * 500
    err = await client.get("/v1/nope", headers={"X-Request-ID": "err-1"})
    assert err.headers["x-request-id"] == "err-1"


async def test_status_reports_components_and_counts(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    body = (await client.get("/v1/status")).json()
    assert body["schema_version"] >= 1
    assert body["port"] == TEST_PORT
    assert body["components"]["store"]["state"] == "ready"
    assert body["counts"]["documents"] == 0
    assert set(body) >= {"version", "pid", "data_dir", "uptime_s", "counts", "components"}


async def test_openapi_schema_served(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    r = await client.get("/v1/openapi/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    assert "/v1/status" in schema["paths"]


async def test_metrics_count_requests_by_route(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await client.get("/v1/status")
    await client.get("/v1/status")
    text = (await client.get("/v1/metrics")).text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("docsidecar_http_requests_total{") and 'route="/v1/status"' in ln and 'status="200"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2


async def test_metrics_latency_histograms_by_route_and_status(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await client.get("/v1/status")
    await client.get("/v1/status", headers={"Authorization": "Bearer wrong"})
    text = (await client.get("/v1/metrics")).text
    assert "# TYPE docsidecar_http_request_duration_seconds histogram" in text

    def sample(name: str, *labels: str) -> float:
        lines = [ln for ln in text.splitlines() if ln.startswith(name + "{") and all(lb in ln for lb in labels)]
        assert lines, (name, labels)
        return float(lines[0].rsplit(" ", 1)[1])

    ok = ('route="/v1/status"', 'status="200"', 'method="GET"')
    assert sample("docsidecar_http_request_duration_seconds_count", *ok) >= 1
    assert sample("docsidecar_http_request_duration_seconds_bucket", *ok, 'le="+Inf"') >= 1
    assert sample("docsidecar_http_request_duration_seconds_sum", *ok) > 0
    # a refused request is measured under its own status (the edge answered it)
    assert sample("docsidecar_http_request_duration_seconds_count", 'status="401"') >= 1
