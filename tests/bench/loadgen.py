"""Load generation against a real ``docsidecar serve`` process (bench_load.py and soak.py).

* :class:`Server` spawns ``python -m backend serve`` with a fixed token, stderr to a file (a
  pipe nobody reads would block the server once it fills), and reads the ready line.
* :class:`Recorder` keeps every request's latency and outcome per route and phase.
* Paced clients (one thread each, their own ``httpx.Client``): :class:`SearchClient` (POST
  /v1/search, mode hybrid/keyword/semantic, distinct queries, result cache off),
  :class:`ListClient` (GET /v1/documents, following ``next_cursor``), :class:`UploadClient`
  (multipart POST /v1/documents of small unique notes) and :class:`SseListener` (GET
  /v1/events: connect → ``hello`` latency, delivery lag from the event's ``ts``, id gaps).
  Pacing is open-loop-like: each client aims at a fixed rate with ±50 % jitter and only runs
  back to back when a request takes longer than its interval, so the offered load is the same
  in every phase and latency measures the server, not the clients' own queueing.

Every non-2xx answer, exception, SSE disconnect or missed event is an error with its route.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

from tests.helpers.process import read_line, sidecar_command  # noqa: E402

TOKEN = "load-bench-token-0123456789abcdefghijklmnopqrstuvwxyz"
PG_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
JUDGED = Path(__file__).resolve().with_name("judged_postgres.json")
SEARCH_MODES = (("hybrid", 0.5), ("keyword", 0.25), ("semantic", 0.25))


# -- the server ---------------------------------------------------------------------------------
class Server:
    """A real sidecar subprocess; ``stop()`` sends SIGTERM and returns the exit code."""

    def __init__(self, data_dir: Path, log_path: Path, *extra: str) -> None:
        self.data_dir, self.log_path = data_dir, log_path
        env = {**os.environ, "DOCSIDECAR_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
        self._stderr = log_path.open("wb")
        self.proc = subprocess.Popen(
            sidecar_command("serve", "--data-dir", str(data_dir), "--port", "0", *extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=REPO,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = read_line(self.proc.stdout, 120.0)
        ready = json.loads(line) if line else {}
        if ready.get("event") != "ready":
            self.proc.kill()
            self.proc.wait()
            raise SystemExit(f"the sidecar did not start: {line!r}; see {log_path}")
        self.port = int(ready["port"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.pid = self.proc.pid

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=timeout)

    def wait_model_ready(self, timeout: float = 300.0) -> None:
        with self.client() as c:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                comps = c.get("/v1/status").json()["components"]
                if comps["embedding"]["state"] == "ready":
                    return
                time.sleep(0.2)
        raise SystemExit("the embedding model did not become ready")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        return int(self.proc.returncode)

    def log_problems(self) -> list[str]:
        """ERROR/CRITICAL lines of the server's JSON log file and tracebacks on its stderr."""
        out: list[str] = []
        log_file = self.data_dir / "logs" / "docsidecar.log"
        for path in sorted(log_file.parent.glob("docsidecar.log*")) if log_file.parent.exists() else []:
            for line in path.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in {"ERROR", "CRITICAL"}:
                    out.append(f"{rec.get('logger')}: {rec.get('msg')}"[:300])
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        out += [f"stderr: {m}" for m in re.findall(r"^Traceback .*$", text, flags=re.MULTILINE)]
        return out


# -- recording ----------------------------------------------------------------------------------
@dataclass
class RouteStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)


class Recorder:
    """Latencies and errors per (phase, route); thread-safe; the phase is switched globally."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], RouteStats] = defaultdict(RouteStats)
        self.phase = "warmup"
        self._phase_started: dict[str, float] = {}
        self._phase_seconds: dict[str, float] = {}

    def start_phase(self, name: str) -> None:
        with self._lock:
            now = time.monotonic()
            if self.phase in self._phase_started:
                self._phase_seconds[self.phase] = now - self._phase_started[self.phase]
            self.phase = name
            self._phase_started[name] = now

    def end_phase(self) -> None:
        self.start_phase("after")

    def ok(self, route: str, ms: float) -> None:
        with self._lock:
            self._data[(self.phase, route)].latencies_ms.append(ms)

    def error(self, route: str, kind: str, detail: str = "") -> None:
        with self._lock:
            st = self._data[(self.phase, route)]
            st.errors[kind] += 1
            if len(st.samples) < 5:
                st.samples.append(f"{kind}: {detail}"[:300])

    def summary(self, phase: str) -> dict[str, Any]:
        with self._lock:
            seconds = self._phase_seconds.get(phase) or (time.monotonic() - self._phase_started.get(phase, 0.0))
            out: dict[str, Any] = {}
            for (ph, route), st in sorted(self._data.items()):
                if ph != phase:
                    continue
                out[route] = {
                    **latency_summary(st.latencies_ms),
                    "per_s": round(len(st.latencies_ms) / seconds, 2) if seconds else None,
                    "errors": dict(st.errors),
                    "error_samples": list(st.samples),
                }
            return {"seconds": round(seconds, 1), "routes": out}

    def total_errors(self, phase: str | None = None) -> int:
        with self._lock:
            return sum(sum(st.errors.values()) for (ph, _), st in self._data.items() if phase in (None, ph))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q / 100 * len(s)))], 2)


def latency_summary(ms: list[float]) -> dict[str, Any]:
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99),
            "max": round(max(ms), 2) if ms else None,
            "mean": round(statistics.fmean(ms), 2) if ms else None}  # fmt: skip


# -- text for queries and uploads ---------------------------------------------------------------
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[A-Za-z][A-Za-z_\-]{2,}")


def page_words(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
    return _WORD.findall(unescape(_TAG.sub(" ", text)))


def query_texts(pages: list[Path], n: int, seed: int) -> list[str]:
    """``n`` distinct queries: the judged questions, then 2-6 word windows of the pages' text."""
    rng = random.Random(seed)
    out = [q["question"] for q in json.loads(JUDGED.read_text())["questions"]]
    seen = set(out)
    words = [page_words(p) for p in pages]
    words = [w for w in words if len(w) > 20]
    while len(out) < n:
        ws = rng.choice(words)
        size = rng.randint(2, 6)
        start = rng.randrange(0, len(ws) - size)
        q = " ".join(ws[start : start + size])
        if q not in seen:
            seen.add(q)
            out.append(q)
    rng.shuffle(out)
    return out


class QueryPool:
    """Hands out distinct queries across threads (the embedder's query LRU never hits)."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            q = self._texts[self._next % len(self._texts)]
            if self._next >= len(self._texts):  # wrapped: still distinct from the cache's view
                q = f"{q} {self._next // len(self._texts)}"
            self._next += 1
            return q


# -- clients ------------------------------------------------------------------------------------
class PacedClient(threading.Thread):
    """One request every ``interval_s`` (±50 % jitter) until ``stop`` is set."""

    route = "?"

    def __init__(self, server: Server, rec: Recorder, stop: threading.Event, interval_s: float, seed: int) -> None:
        super().__init__(name=f"load-{type(self).__name__}-{seed}", daemon=True)
        self.server, self.rec, self.stop_event = server, rec, stop
        self.interval_s = interval_s
        self.rng = random.Random(seed)

    def run(self) -> None:
        with self.server.client() as c:
            next_at = time.monotonic() + self.rng.uniform(0, self.interval_s)
            while not self.stop_event.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop_event.wait(delay):
                    return
                next_at = max(next_at, time.monotonic() - self.interval_s) + self.interval_s * self.rng.uniform(
                    0.5, 1.5
                )
                self.one(c)

    def one(self, c: httpx.Client) -> None:
        raise NotImplementedError

    def timed(self, route: str, fn: Any, ok: tuple[int, ...] = (200,)) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r: httpx.Response = fn()
        except httpx.HTTPError as exc:
            self.rec.error(route, type(exc).__name__, str(exc))
            return None
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code not in ok:
            self.rec.error(route, str(r.status_code), r.text[:200])
            return None
        self.rec.ok(route, ms)
        return r


class SearchClient(PacedClient):
    def __init__(self, *args: Any, queries: QueryPool, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.queries = queries
        self.server_ms: dict[str, list[float]] = defaultdict(list)  # f"{phase}/{mode}/{stage}"

    def one(self, c: httpx.Client) -> None:
        mode = self.rng.choices([m for m, _ in SEARCH_MODES], [w for _, w in SEARCH_MODES])[0]
        body = {"query": self.queries.take(), "mode": mode, "k": 10, "cache": False}
        r = self.timed(f"search {mode}", lambda: c.post("/v1/search", json=body))
        if r is not None:
            reply = r.json()
            if reply.get("warnings") and mode == "hybrid" and "semantic" not in reply.get("retrievers", []):
                self.rec.error(f"search {mode}", "degraded", "; ".join(reply["warnings"]))
            for stage, ms in (reply.get("timings_ms") or {}).items():
                self.server_ms[f"{self.rec.phase}/{mode}/{stage}"].append(float(ms))


class ListClient(PacedClient):
    def one(self, c: httpx.Client) -> None:
        r = self.timed("documents list", lambda: c.get("/v1/documents", params={"limit": 50}))
        cursor = r.json().get("next_cursor") if r is not None else None
        if cursor and self.rng.random() < 0.5:
            self.timed("documents list", lambda: c.get("/v1/documents", params={"limit": 50, "cursor": cursor}))


class UploadClient(PacedClient):
    """Small unique markdown notes built from real manual sentences."""

    def __init__(self, *args: Any, words: list[str], tag: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.words, self.tag, self.count = words, tag, 0

    def one(self, c: httpx.Client) -> None:
        self.count += 1
        start = self.rng.randrange(0, max(1, len(self.words) - 400))
        body = " ".join(self.words[start : start + self.rng.randint(150, 400)])
        text = f"# Load note {self.tag}-{self.name}-{self.count}\n\n{body}\n".encode()
        files = {"file": (f"note-{self.tag}-{self.count}.md", text, "text/markdown")}
        self.timed("upload", lambda: c.post("/v1/documents", files=files, data={"scope": "load"}), ok=(202,))


class SseListener(threading.Thread):
    """Holds ``/v1/events`` open, reconnecting every ``reconnect_s`` with ``Last-Event-ID``."""

    def __init__(self, server: Server, rec: Recorder, stop: threading.Event, reconnect_s: float, seed: int) -> None:
        super().__init__(name=f"load-sse-{seed}", daemon=True)
        self.server, self.rec, self.stop_event, self.reconnect_s = server, rec, stop, reconnect_s
        self.events = 0
        self.resyncs = 0
        self.lag_ms: dict[str, list[float]] = defaultdict(list)
        self.last_id: int | None = None

    def run(self) -> None:
        with httpx.Client(
            base_url=self.server.base_url, headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=httpx.Timeout(10.0, read=40.0),
        ) as c:  # fmt: skip
            while not self.stop_event.is_set():
                self._session(c)

    def _session(self, c: httpx.Client) -> None:
        headers = {"Last-Event-ID": str(self.last_id)} if self.last_id is not None else {}
        t0 = time.perf_counter()
        until = time.monotonic() + self.reconnect_s
        try:
            with c.stream("GET", "/v1/events", headers=headers) as r:
                if r.status_code != 200:
                    self.rec.error("events", str(r.status_code), r.read().decode(errors="replace")[:200])
                    self.stop_event.wait(1.0)
                    return
                for kind, data, ev_id in _sse_messages(r.iter_lines()):
                    if kind == "hello":
                        self.rec.ok("events connect", (time.perf_counter() - t0) * 1000)
                    elif kind == "resync":
                        self.resyncs += 1
                        self.last_id = None  # told to re-read state: the next id starts afresh
                    elif ev_id is not None:
                        self._event(kind, data, ev_id)
                    if self.stop_event.is_set() or time.monotonic() > until:
                        return
        except httpx.HTTPError as exc:
            if not self.stop_event.is_set():
                self.rec.error("events", type(exc).__name__, str(exc))
                self.stop_event.wait(1.0)
            return
        if not self.stop_event.is_set() and time.monotonic() <= until:
            self.rec.error("events", "stream ended", "the server closed the event stream")

    def _event(self, kind: str, data: str, ev_id: int) -> None:
        if self.last_id is not None and ev_id != self.last_id + 1:
            self.rec.error("events", "gap", f"event {ev_id} after {self.last_id} without resync")
        self.last_id = ev_id
        self.events += 1
        try:
            ts = float(json.loads(data).get("ts", 0.0))
        except (ValueError, AttributeError):
            self.rec.error("events", "bad payload", data[:200])
            return
        if ts:
            self.lag_ms[self.rec.phase].append(max(0.0, (time.time() - ts) * 1000))


def _sse_messages(lines: Iterator[str]) -> Iterator[tuple[str, str, int | None]]:
    kind, data, ev_id = "message", "", None
    for line in lines:
        if not line:
            if data or kind != "message":
                yield kind, data, ev_id
            kind, data, ev_id = "message", "", None
        elif line.startswith(":"):  # keep-alive comment: lets the listener check its stop event
            yield "comment", "", None
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line.startswith("id:"):
            raw = line[3:].strip()
            ev_id = int(raw) if raw.isdigit() else None


@dataclass
class Workload:
    """The client mix; rates are per client."""

    search_clients: int = 3
    search_interval_s: float = 0.6
    list_clients: int = 1
    list_interval_s: float = 1.0
    upload_clients: int = 1
    upload_interval_s: float = 3.0
    sse_listeners: int = 3
    sse_reconnect_s: float = 30.0

    def describe(self) -> str:
        return (
            f"{self.search_clients} search clients × 1 per {self.search_interval_s:g} s "
            f"(hybrid 50 % / keyword 25 % / semantic 25 %, distinct queries, result cache off), "
            f"{self.list_clients} listing client × 1 per {self.list_interval_s:g} s, "
            f"{self.upload_clients} upload client × 1 per {self.upload_interval_s:g} s (2-4 KB notes), "
            f"{self.sse_listeners} SSE listeners (reconnect every {self.sse_reconnect_s:g} s with Last-Event-ID)"
        )


@dataclass
class Running:
    stop: threading.Event
    threads: list[threading.Thread]

    @property
    def searchers(self) -> list[SearchClient]:
        return [t for t in self.threads if isinstance(t, SearchClient)]

    @property
    def listeners(self) -> list[SseListener]:
        return [t for t in self.threads if isinstance(t, SseListener)]

    def halt(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def start_workload(
    server: Server, rec: Recorder, w: Workload, queries: QueryPool, words: list[str], tag: str
) -> Running:
    stop = threading.Event()
    threads: list[threading.Thread] = []
    seed = 0
    for _ in range(w.search_clients):
        seed += 1
        threads.append(SearchClient(server, rec, stop, w.search_interval_s, seed, queries=queries))
    for _ in range(w.list_clients):
        seed += 1
        threads.append(ListClient(server, rec, stop, w.list_interval_s, seed))
    for _ in range(w.upload_clients):
        seed += 1
        threads.append(UploadClient(server, rec, stop, w.upload_interval_s, seed, words=words, tag=tag))
    for _ in range(w.sse_listeners):
        seed += 1
        threads.append(SseListener(server, rec, stop, w.sse_reconnect_s, seed))
    for t in threads:
        t.start()
    return Running(stop, threads)
