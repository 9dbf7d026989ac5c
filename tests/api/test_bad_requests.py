"""Bad request bodies get a 4xx JSON error, change nothing, and the server keeps serving —
through the ASGI app and through a real uvicorn subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN
from tests.helpers.process import start_sidecar

LIMIT = 2048
JSON_ROUTES = ["/v1/folders", "/v1/documents"]


@pytest.fixture
async def small_client(data_dir: Path) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    settings = Settings.load({}, {"data_dir": data_dir, "max_body_bytes": LIMIT})
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        yield c


def _error(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "message", "detail"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code, body
    return dict(body)


CASES: list[tuple[str, bytes, str, int, str | None]] = [
    ("malformed JSON", b'{"path": "/tmp", ', "application/json", 400, None),
    ("not JSON at all", b"\xff\xfe\x00garbage", "application/json", 400, None),
    ("JSON of the wrong shape", b'["a", "list"]', "application/json", 422, "validation_failed"),
    ("wrong field type", b'{"path": 42}', "application/json", 422, "validation_failed"),
    ("unknown field", b'{"path": "/tmp", "surprise": 1}', "application/json", 422, "validation_failed"),
    ("oversized body", b'{"path": "' + b"x" * (LIMIT * 4) + b'"}', "application/json", 413, "payload_too_large"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize(("name", "body", "ctype", "status", "code"), CASES, ids=[c[0] for c in CASES])
async def test_bad_json_bodies(
    small_client: AsyncTestClient,  # type: ignore[type-arg]
    route: str,
    name: str,
    body: bytes,
    ctype: str,
    status: int,
    code: str | None,
) -> None:
    before = (await small_client.get("/v1/status")).json()["counts"]
    r = await small_client.post(route, content=body, headers={"Content-Type": ctype})
    _error(r, status, code)
    after = await small_client.get("/v1/status")
    assert after.status_code == 200, "the server keeps serving"
    assert after.json()["counts"] == before, "a refused request changes nothing"


@pytest.mark.anyio
async def test_wrong_content_type_is_415(small_client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        r = await small_client.post("/v1/folders", content=b'{"path": "/tmp"}', headers={"Content-Type": ctype})
        _error(r, 415, "unsupported_media_type")
    r = await small_client.post("/v1/documents", content=b"path=/tmp", headers={"Content-Type": "text/plain"})
    assert 400 <= r.status_code < 500
    _error(r, r.status_code)
    assert (await small_client.get("/v1/status")).json()["counts"]["documents"] == 0


def test_real_server_refuses_bad_bodies_and_keeps_serving(tmp_path: Path) -> None:
    sc = start_sidecar(tmp_path / "d", "--max-body-bytes", str(LIMIT))
    try:
        with sc.client() as c:
            big = b'{"path": "' + b"y" * (LIMIT * 50) + b'"}'
            for body, ctype, status in [
                (b'{"path": ', "application/json", 400),
                (b'{"path": "/tmp"}', "text/plain", 415),
                (big, "application/json", 413),
            ]:
                r = c.post("/v1/folders", content=body, headers={"Content-Type": ctype})
                _error(r, status)
            # a body larger than announced / chunked without a length is cut off at the limit too
            r = c.post(
                "/v1/folders", content=iter([big[:1000], big[1000:]]), headers={"Content-Type": "application/json"}
            )
            _error(r, 413)
            status = c.get("/v1/status")
            assert status.status_code == 200 and status.json()["counts"]["folders"] == 0
        assert httpx.get(f"{sc.base_url}/v1/health").json() == {"status": "ok"}
    finally:
        assert sc.stop() == 0
