"""With no Supabase configured the sidecar never touches the network.

Every way this process could open a network connection or resolve a name is trapped
(``socket.connect``/``connect_ex`` on non-Unix sockets, ``create_connection``,
``getaddrinfo``); the real app then starts, indexes a document, answers the sync endpoints and
idles with its background threads running (sync worker included). Nothing may hit a trap.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN

pytestmark = pytest.mark.anyio


@pytest.fixture
def network_trap(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(kind: str, sock: socket.socket | None, address: Any) -> None:
        if sock is not None and sock.family == socket.AF_UNIX:
            return
        calls.append(f"{kind} {address!r}")
        raise OSError(f"network access during a no-sync test: {kind} {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        guard("connect", self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard("connect_ex", self, address)
        return real_connect_ex(self, address)

    def create_connection(address: Any, *a: Any, **k: Any) -> socket.socket:
        guard("create_connection", None, address)
        raise AssertionError("unreachable")

    def getaddrinfo(host: Any, *a: Any, **k: Any) -> Any:
        guard("getaddrinfo", None, host)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_the_trap_catches_httpx(network_trap: list[str]) -> None:
    import httpx

    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:9/")
    assert network_trap


@pytest.fixture
async def app(tmp_path: Path, network_trap: list[str]) -> AsyncIterator[Any]:
    settings = Settings.load(
        {}, {"data_dir": tmp_path / "data", "sync_connectivity_poll_s": 0.05, "sync_interval_s": 0.1}
    )
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        c.services = services  # type: ignore[attr-defined]
        yield c


async def test_no_session_no_network(app: Any, network_trap: list[str]) -> None:
    r = await app.post("/v1/documents", files={"file": ("n.txt", b"Offline notes about rivers and mountains.")})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    for _ in range(400):
        if (await app.get(f"/v1/jobs/{job_id}")).json()["state"] == "done":
            break
        await asyncio.sleep(0.05)
    doc_id = r.json()["document"]["id"]
    assert (await app.post("/v1/sync/run")).status_code == 409
    assert (await app.post(f"/v1/documents/{doc_id}/share-url", json={"expires_in": 60})).status_code == 409
    status = (await app.get("/v1/sync/status")).json()
    assert status["enabled"] is False and status["pending"] == 1
    assert (await app.get("/v1/status")).json()["components"]["sync"]["state"] == "disabled"
    await asyncio.sleep(1.5)  # the sync worker polls ~every second; several of its cycles pass here
    search = await app.post("/v1/search", json={"query": "rivers", "mode": "hybrid"})
    assert search.status_code == 200 and search.json()["hits"]
    assert any(t.name == "sync-worker" for t in threading.enumerate())  # running, yet silent
    assert network_trap == []
