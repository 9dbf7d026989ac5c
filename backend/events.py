"""In-process event bus feeding ``GET /v1/events`` (Server-Sent Events).

Publishers (worker threads, the watcher, sync) call :meth:`EventBus.publish` from any thread.
Events go into a bounded ring buffer with increasing ids; subscribers (SSE streams on the
event loop) are woken and read everything after the last id they sent. A client reconnecting
with ``Last-Event-ID`` therefore gets what it missed, and one that fell further behind than
the buffer gets a ``resync`` event telling it to re-read state through the API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]
    ts: float = field(default_factory=time.time)


class Subscription:
    """One subscriber's wake-up signal, bound to the event loop it was created on."""

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop) -> None:
        self._bus = bus
        self.loop = loop
        self.wakeup = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait for new events or bus closure; False on timeout."""
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout)
        except TimeoutError:
            return False
        self.wakeup.clear()
        return True

    def close(self) -> None:
        self._bus._unsubscribe(self)


class EventBus:
    """Thread-safe publish, async subscribe, bounded memory."""

    def __init__(self, capacity: int = 4096) -> None:
        self._lock = threading.Lock()
        self._buffer: deque[Event] = deque(maxlen=capacity)
        self._next_id = 1
        self._subscribers: set[Subscription] = set()
        self._closed = False

    def publish(self, type_: str, data: dict[str, Any] | None = None) -> Event:
        with self._lock:
            event = Event(self._next_id, type_, data or {})
            self._next_id += 1
            self._buffer.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            _wake(sub)
        return event

    def since(self, last_id: int) -> tuple[list[Event], bool]:
        """Events after ``last_id``, and whether some were already dropped from the buffer."""
        with self._lock:
            if not self._buffer:
                return [], last_id >= self._next_id
            oldest = self._buffer[0].id
            lagged = last_id + 1 < oldest or last_id >= self._next_id
            if last_id >= self._next_id:
                last_id = self._next_id - 1
            return [e for e in self._buffer if e.id > last_id], lagged

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next_id - 1

    def subscribe(self) -> Subscription:
        sub = Subscription(self, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """End every open stream (used at shutdown)."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for sub in subscribers:
            _wake(sub)


def _wake(sub: Subscription) -> None:
    try:
        sub.loop.call_soon_threadsafe(sub.wakeup.set)
    except RuntimeError:  # the subscriber's loop is closed; it will never read again
        sub.close()
