"""``docsidecar serve``: bind, print the ready line, serve until told to stop.

Order of events (what the Electron parent sees):
1. data dir created (0700), single-instance lock taken — a second instance fails fast with
   a message naming the running one's pid and port;
2. the token is resolved (parent's env var, or generated into ``<data_dir>/token``, 0600);
3. 127.0.0.1:<port> is bound (port 0 = ephemeral) before any heavy initialisation;
4. uvicorn starts; the lifespan opens the store and launches heavy components in the
   background; once the server accepts connections exactly one JSON line is written to
   stdout: ``{"event":"ready","port":…,"pid":…,"version":…,"token_file":…}``;
5. it exits cleanly on SIGTERM/SIGINT, on stdin EOF (``--stdin-watch``) or when
   ``--parent-pid`` dies. A start-up failure prints one ``{"event":"error",…}`` line instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import uvicorn

from backend import __version__
from backend.app import create_app
from backend.errors import Conflict, SidecarError, Unavailable
from backend.logs import configure_logging, remove_handlers
from backend.maintenance.datadir import READ_ONLY_ERRNOS, preflight, read_only_error
from backend.osdeps.filelock import InstanceLock, LockHeld
from backend.osdeps.paths import ensure_private_dir, write_private_file
from backend.osdeps.process import ParentWatch, exit_signals, watch_parent, watch_stdin
from backend.security import resolve_token
from backend.services import Services
from backend.settings import Settings

log = logging.getLogger("docsidecar.server")

INSTANCE_FILENAME = "instance.json"
LOCK_FILENAME = "docsidecar.lock"


class AlreadyRunning(Conflict):
    """Another docsidecar holds the data dir."""

    code = "already_running"


class StartupFailed(Unavailable):
    """A component failed while the server was starting."""

    code = "startup_failed"


class _Server(uvicorn.Server):
    """uvicorn's server, with signal handling owned by us: on SIGTERM/SIGINT it shuts down
    gracefully and returns instead of re-raising the signal (which would skip our cleanup)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def emit(event: dict[str, Any]) -> None:
    """Write one JSON line to stdout: the only thing docsidecar ever prints there."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def read_instance(data_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((data_dir / INSTANCE_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def serve(settings: Settings) -> int:
    """Run the sidecar in the foreground; returns the process exit code."""
    try:
        ensure_private_dir(settings.data_dir)
    except OSError as exc:
        if exc.errno in READ_ONLY_ERRNOS and settings.data_dir.is_dir():
            emit({"event": "error", **read_only_error(settings.data_dir, settings.data_dir, exc).to_body()})
            return 2
        emit(
            {
                "event": "error",
                "error": "data_dir_unusable",
                "message": f"cannot create data dir {settings.data_dir}: {exc}",
            }
        )
        return 2
    try:
        preflight(settings.data_dir)  # read-only, moved away, or an unfinished move: refuse now
    except SidecarError as exc:
        emit({"event": "error", **exc.to_body()})
        return 2
    handlers = configure_logging(
        settings.log_level,
        settings.data_dir / "logs",
        max_bytes=settings.log_file_max_bytes,
        backups=settings.log_file_backups,
    )
    lock = InstanceLock(settings.data_dir / LOCK_FILENAME)
    try:
        try:
            lock.acquire()
        except LockHeld:
            other = read_instance(settings.data_dir) or {}
            err = AlreadyRunning(
                f"another docsidecar is already running on {settings.data_dir} "
                f"(pid {other.get('pid', '?')}, port {other.get('port', '?')}); "
                "stop it or start this one with a different --data-dir",
                detail={"pid": other.get("pid"), "port": other.get("port")},
            )
            log.error(err.message)
            emit({"event": "error", **err.to_body()})
            return 3
        try:
            return asyncio.run(_run(settings))
        except SidecarError as exc:
            log.error("start-up failed: %s", exc.message)
            emit({"event": "error", **exc.to_body()})
            return 2
        finally:
            with contextlib.suppress(OSError):
                (settings.data_dir / INSTANCE_FILENAME).unlink()
            lock.release()
    finally:
        remove_handlers(handlers)


def bind_loopback(port: int) -> socket.socket:
    # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP;
    # with proto 0, Nagle + delayed ACKs added ~40 ms to every response after the first on a
    # keep-alive connection. NODELAY on the listener is inherited by accepted sockets too.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _run(settings: Settings) -> int:
    token, token_file = resolve_token(settings.token, settings.data_dir)
    sock = bind_loopback(settings.port)
    port = int(sock.getsockname()[1])
    services = Services(settings)
    app = create_app(settings, services, port=port, token=token)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
        http="httptools",
        loop="none",
        server_header=False,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    reason: list[str] = []

    def request_exit(why: str) -> None:
        if not reason:
            reason.append(why)
            log.info("shutting down: %s", why)
        server.should_exit = True

    for sig in exit_signals():
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: no add_signal_handler
            loop.add_signal_handler(sig, request_exit, f"signal {signal.Signals(sig).name}")
    serve_task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    stop_watchers = None
    try:
        await _wait_started(server, serve_task, services)
        write_private_file(
            settings.data_dir / INSTANCE_FILENAME,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "port": port,
                    "version": __version__,
                    "started_at": time.time(),
                }
            ).encode(),
        )
        emit(
            {
                "event": "ready",
                "port": port,
                "pid": os.getpid(),
                "version": __version__,
                "token_file": str(token_file) if token_file else None,
            }
        )
        log.info("ready on 127.0.0.1:%d", port, extra={"port": port})
        stop_watchers = await _start_watchers(settings, request_exit)
        await serve_task
    finally:
        if stop_watchers is not None:
            stop_watchers()
        for sig in exit_signals():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if not serve_task.done():
            server.should_exit = True
            await serve_task
        sock.close()
    log.info("stopped")
    return 0


async def _wait_started(server: uvicorn.Server, serve_task: asyncio.Task[None], services: Services) -> None:
    while not server.started and not serve_task.done():
        await asyncio.sleep(0.005)
    if not server.started:
        await serve_task  # re-raises an error from uvicorn itself
        raise _startup_failure(services)


async def _start_watchers(settings: Settings, request_exit: Callable[[str], None]) -> Callable[[], None]:
    """Start the parent-pid and stdin watchers asked for; return a function that stops them."""
    tasks: list[asyncio.Task[None]] = []
    stop_stdin: Callable[[], None] | None = None
    if settings.parent_pid is not None:
        tasks.append(asyncio.create_task(watch_parent(ParentWatch(settings.parent_pid), request_exit)))
    if settings.stdin_watch:
        stop_stdin = await watch_stdin(request_exit)

    def stop() -> None:
        for task in tasks:
            task.cancel()
        if stop_stdin is not None:
            stop_stdin()

    return stop


def _startup_failure(services: Services) -> SidecarError:
    for name, state in services.component_states().items():
        if state["error"]:
            return StartupFailed(
                f"{name}: {state['error']['message']}",
                detail={"component": name, "cause": state["error"]},
            )
    return StartupFailed("the server failed to start; see the log")
