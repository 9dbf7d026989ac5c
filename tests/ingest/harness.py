"""Running the real app in-process for ingest tests, and waiting for its queue.

``running_app`` builds the real :class:`Services` (real SQLite, real ONNX model, real
extraction child process) behind the real Litestar app. ``patch`` may wrap parts before start:
tests use it to count what the real embedder is asked to embed, or to inject a transient
extraction failure — nothing is replaced by a fake.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.ingest.extract import ExtractedDocument, SourceUnreadable
from backend.services import Services
from backend.settings import Settings
from tests.conftest import TEST_PORT, TEST_TOKEN

FAST = {"ingest_retry_base_s": 0.05, "watch_quiet_s": 0.2, "embed_threads": 1}


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings.load({}, {"data_dir": data_dir, **FAST, **overrides})


@asynccontextmanager
async def running_app(
    settings: Settings, patch: Callable[[Services], None] | None = None
) -> AsyncIterator[tuple[AsyncTestClient, Services]]:  # type: ignore[type-arg]
    services = Services(settings)
    if patch is not None:
        patch(services)
    app = create_app(settings, services, port=TEST_PORT, token=TEST_TOKEN)
    async with AsyncTestClient(app, base_url=f"http://127.0.0.1:{TEST_PORT}", raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        yield c, services


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def wait_job(client: AsyncTestClient, job_id: int, timeout: float = 60.0) -> dict[str, Any]:  # type: ignore[type-arg]
    job: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal job
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
        return job["state"] in {"done", "failed", "cancelled"}

    await wait_for(finished, timeout, f"job {job_id}")
    return job


async def wait_idle(services: Services, timeout: float = 90.0) -> None:
    """No job queued or running (watch events already turned into jobs are included)."""

    async def idle() -> bool:
        with services.store.read() as conn:
            row = conn.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()
        return int(row[0]) == 0 and services.ingest.worker.current_job is None

    await wait_for(idle, timeout, "an idle ingest queue")


async def upload(
    client: AsyncTestClient,  # type: ignore[type-arg]
    name: str,
    data: bytes,
    **fields: str,
) -> Any:
    return await client.post("/v1/documents", files={"file": (name, data)}, data=fields or None)


# -- instrumentation of real parts -----------------------------------------------------------
class CountingEmbedding:
    """Wraps the real EmbeddingService; records every text the real embedder is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def state(self) -> str:
        return str(self.inner.state)

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    @property
    def embedder(self) -> Any:
        return _CountingEmbedder(self.inner.embedder, self.texts)


class _CountingEmbedder:
    def __init__(self, inner: Any, sink: list[str]) -> None:
        self.inner = inner
        self.sink = sink
        self.model_id = inner.model_id

    def embed(self, texts: Sequence[str], **kwargs: Any) -> Any:
        self.sink.extend(texts)
        return self.inner.embed(texts, **kwargs)


class FlakyExtractor:
    """The real extraction worker, except that files whose name contains ``marker`` fail with
    ``SourceUnreadable`` (what a file locked by another program gives) ``failures`` times."""

    def __init__(self, inner: Any, marker: str, failures: int) -> None:
        self.inner = inner
        self.marker = marker
        self.remaining = failures
        self.calls: list[tuple[str, float]] = []

    def extract(self, path: Path, *, name: str | None = None) -> ExtractedDocument:
        label = name or path.name
        self.calls.append((label, time.time()))
        if self.marker in label and self.remaining > 0:
            self.remaining -= 1
            raise SourceUnreadable("cannot open file: the file is locked by another process")
        result: ExtractedDocument = self.inner.extract(path, name=name)
        return result

    def stop(self) -> None:
        self.inner.stop()
