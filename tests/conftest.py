"""Shared fixtures: settings in a temp data dir, the app behind an ASGI client, and a real
sidecar subprocess speaking HTTP on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import Services
from backend.settings import Settings
from tests.helpers.process import SidecarProcess, start_sidecar

# Property tests must not depend on timing: the suite runs in two workers on a shared machine,
# so no per-example deadline and no "generation too slow" health check (seen failing under -n 2).
hypothesis_settings.register_profile(
    "docsidecar", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.load_profile("docsidecar")

TEST_PORT = 48213
TEST_TOKEN = "test-token-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings.load({}, {"data_dir": data_dir})


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The real app (services started through its lifespan) with the token set."""
    services = Services(settings)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        c.edge = app  # type: ignore[attr-defined]
        c.services = services  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[SidecarProcess]:
    """A real `python -m backend serve` subprocess in a temp data dir."""
    proc = start_sidecar(tmp_path / "sidecar-data")
    try:
        yield proc
    finally:
        proc.stop()


def ci() -> bool:
    return bool(os.environ.get("CI"))
