"""Knowing when to exit: parent death, stdin EOF and termination signals.

Windows has no SIGTERM for child processes, so watching the parent pid and stdin EOF is the
portable exit path; signals are an extra on POSIX.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable

import psutil


class ParentWatch:
    """Tells whether the parent process given by pid is still the same, running process.

    The parent's creation time is recorded at construction so a recycled pid is not mistaken
    for the parent. On POSIX, when the parent is our real parent, re-parenting (``getppid``
    changing) is also taken as death.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._created = _create_time(pid)
        self._was_real_parent = os.name == "posix" and os.getppid() == pid

    def alive(self) -> bool:
        if self._created is None:
            return False
        if self._was_real_parent and os.getppid() != self.pid:
            return False
        return _create_time(self.pid) == self._created


def _create_time(pid: int) -> float | None:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


async def watch_parent(watch: ParentWatch, on_exit: Callable[[str], None], interval: float = 0.2) -> None:
    """Poll the parent every ``interval`` seconds; call ``on_exit`` once it is gone."""
    while watch.alive():
        await asyncio.sleep(interval)
    on_exit(f"parent process {watch.pid} exited")


class _EofProtocol(asyncio.Protocol):
    def __init__(self, on_eof: Callable[[], None]) -> None:
        self._on_eof = on_eof

    def data_received(self, data: bytes) -> None:  # input is ignored; only EOF matters
        return None

    def eof_received(self) -> bool:
        self._on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_eof()


async def watch_stdin(on_exit: Callable[[str], None]) -> Callable[[], None]:
    """Call ``on_exit`` when stdin reaches EOF. Returns a function that stops watching.

    POSIX: the event loop reads the pipe (no thread). Windows (untested here): a named daemon
    thread blocks on ``read``; it cannot be interrupted, so it is left to die with the process.
    """
    loop = asyncio.get_running_loop()
    fired = threading.Event()

    def fire() -> None:
        if not fired.is_set():
            fired.set()
            loop.call_soon_threadsafe(on_exit, "stdin closed")

    if os.name == "posix":
        transport, _ = await loop.connect_read_pipe(lambda: _EofProtocol(fire), sys.stdin)

        def stop() -> None:
            fired.set()
            transport.close()

        return stop

    def reader() -> None:  # pragma: no cover - Windows only
        with contextlib.suppress(OSError, ValueError):
            while os.read(sys.stdin.fileno(), 65536):
                pass
        fire()

    threading.Thread(target=reader, name="stdin-watch", daemon=True).start()
    return fired.set


def exit_signals() -> tuple[int, ...]:
    """The signals that request a clean shutdown on this OS."""
    sigs = [signal.SIGINT, signal.SIGTERM]
    if sys.platform == "win32":  # pragma: no cover - untested here
        sigs.append(signal.SIGBREAK)
    return tuple(sigs)
