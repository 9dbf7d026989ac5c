"""Event bus and the SSE stream generator: delivery across threads, resume, resync, close."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from backend.api.system import _stream
from backend.events import EventBus

pytestmark = pytest.mark.anyio


async def _take(gen, n: int):  # type: ignore[no-untyped-def]
    out = []
    async for msg in gen:
        out.append(msg)
        if len(out) == n:
            break
    return out


async def test_events_published_from_threads_reach_the_stream() -> None:
    bus = EventBus()
    gen = _stream(bus, bus.last_id)
    hello = await gen.__anext__()
    assert hello.event == "hello"

    def publish() -> None:
        for i in range(3):
            bus.publish("job.progress", {"job_id": 7, "done": i, "total": 3})

    t = threading.Thread(target=publish)
    t.start()
    msgs = await asyncio.wait_for(_take(gen, 3), 5)
    t.join()
    assert [m.event for m in msgs] == ["job.progress"] * 3
    assert [json.loads(m.data)["done"] for m in msgs] == [0, 1, 2]
    assert [int(m.id) for m in msgs] == [1, 2, 3]
    await gen.aclose()
    assert bus.subscriber_count == 0


async def test_reconnect_with_last_event_id_gets_missed_events() -> None:
    bus = EventBus()
    for i in range(5):
        bus.publish("doc.added", {"n": i})
    gen = _stream(bus, 2)
    await gen.__anext__()
    msgs = await asyncio.wait_for(_take(gen, 3), 5)
    assert [json.loads(m.data)["n"] for m in msgs] == [2, 3, 4]
    await gen.aclose()


async def test_client_behind_the_buffer_is_told_to_resync() -> None:
    bus = EventBus(capacity=4)
    for i in range(10):
        bus.publish("doc.added", {"n": i})
    gen = _stream(bus, 1)
    await gen.__anext__()
    first = await asyncio.wait_for(gen.__anext__(), 5)
    assert first.event == "resync"
    rest = await asyncio.wait_for(_take(gen, 4), 5)
    assert [json.loads(m.data)["n"] for m in rest] == [6, 7, 8, 9]
    await gen.aclose()


async def test_close_ends_open_streams() -> None:
    bus = EventBus()
    gen = _stream(bus, 0)
    await gen.__anext__()

    async def drain() -> int:
        return len([m async for m in gen])

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.05)
    bus.close()
    assert await asyncio.wait_for(task, 5) == 0
