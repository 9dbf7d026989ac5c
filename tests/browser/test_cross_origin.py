"""Browser-level security: what a web page in a real Chromium can do to the sidecar.

The sidecar's API is reachable by every page the user opens. Three pages, each in a fresh
headless Chromium, against a real `python -m backend serve`:

* a malicious website stand-in on another local origin (http://127.0.0.1:<other port>)
  tries fetch (CORS, no-cors, credentials, a guessed token, JSON and "simple" POSTs), XHR,
  EventSource, a form POST into an iframe and a <script> include — knowing the port, and by
  scanning a port range that contains it. It must read nothing: every answer is a CORS
  failure or an opaque response. The sidecar's own log proves the requests did reach it
  (so its Host/Origin/token checks were tested, not a browser policy), and nothing changed.
  Not claimed: a no-cors scan does reveal that *some* server listens on a port (an opaque
  answer vs a network error); no content, status or header is readable.
* a DNS-rebinding stand-in: the page's origin is http://rebind.test:<sidecar port>, and its
  requests reach the sidecar unchanged through a relay (see harness.RebindRelay), so the
  browser treats the sidecar as same-origin and could read anything. Even with the real
  token, the Host check answers 403 forbidden_host and nothing else.
* the app's UI on an allowed origin: the sidecar runs with DOCSIDECAR_CORS_ORIGINS listing
  that page's origin (as an Electron app adds its own app:// origin, which Chromium outside
  Electron cannot serve); with the token it reads status, adds a document and streams events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.browser.harness import (
    REBIND_HOST,
    Collector,
    PageServer,
    RebindRelay,
    find_chromium,
    run_page,
)
from tests.conftest import ci
from tests.helpers.process import SidecarProcess, start_sidecar

TOKEN = "browser-test-token-0123456789abcdefghijklmnop"
SCAN_HALF_WIDTH = 12


@dataclass
class World:
    chromium: str
    sidecar: SidecarProcess
    collector: Collector
    attacker: PageServer
    app: PageServer
    victim: Path
    app_doc: Path

    def log_lines(self) -> list[str]:
        path = self.sidecar.data_dir / "logs" / "docsidecar.log"
        return [json.loads(line)["msg"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def documents(self) -> int:
        with self.sidecar.client() as c:
            return int(c.get("/v1/status").json()["counts"]["documents"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    exe = find_chromium()
    if exe is None:
        if ci():
            pytest.fail("chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium): browser security tests not run")
    tmp = tmp_path_factory.mktemp("browser")
    victim = tmp / "private-notes.txt"
    victim.write_text("the attacker must not get this indexed\n", encoding="utf-8")
    app_doc = tmp / "app-added.txt"
    app_doc.write_text("added by the app's own UI\n", encoding="utf-8")
    collector = Collector()
    attacker = PageServer(collector).start()
    app = PageServer().start()
    sidecar = start_sidecar(
        tmp / "data",
        env={"DOCSIDECAR_CORS_ORIGINS": f"app://*,{app.origin}"},
        token=TOKEN,
    )
    try:
        yield World(exe, sidecar, collector, attacker, app, victim, app_doc)
    finally:
        sidecar.stop()
        attacker.stop()
        app.stop()


def _url(server: PageServer | str, page: str, collector_origin: str, **params: Any) -> str:
    origin = server if isinstance(server, str) else server.origin
    return f"{origin}/{page}?{urlencode({'report': collector_origin + '/report', **params})}"


def _leaks(result: dict[str, Any]) -> bool:
    """Whether an attempt let the page read anything: a status, a body, a header, a message."""
    if result["outcome"] == "error":
        return False
    if result.get("type") == "opaque":
        return result["status"] != 0 or result["body"] != "" or bool(result["headers"])
    if "messages" in result:
        return bool(result["messages"])
    if "loaded" in result:
        return False  # a <script> include executes the answer but exposes no data to the page
    if "body" in result and "status" not in result:
        return result["body"] not in (None, "")
    return result.get("status", 0) != 0 or result.get("body") not in (None, "")


def test_cross_origin_page_reads_nothing(world: World) -> None:
    port = world.sidecar.port
    refused_before = _count(world.log_lines(), r"^(GET|POST|OPTIONS) /v1/\S* -> (401|403)$")
    docs_before = world.documents()
    url = _url(
        world.attacker,
        "attack.html",
        world.attacker.origin,
        port=port,
        victim=str(world.victim),
        scan_from=port - SCAN_HALF_WIDTH,
        scan_to=port + SCAN_HALF_WIDTH,
    )
    results = run_page(world.chromium, url, world.collector, "attack")

    scan = results.pop("scan")
    assert len(scan) == 2 * SCAN_HALF_WIDTH + 1 and str(port) in scan
    leaked = {name: r for name, r in results.items() if _leaks(r)}
    assert leaked == {}, f"the cross-origin page could read: {json.dumps(leaked, indent=1)}"
    # CORS requests fail outright (no Access-Control-Allow-Origin for this origin)
    for name in ("fetch_status", "fetch_health", "fetch_status_via_localhost", "fetch_with_guessed_token"):
        assert results[name] == results[name] | {"outcome": "error", "error": "TypeError"}, (name, results[name])
    assert results["xhr_status"]["status"] == 0
    assert results["eventsource"]["messages"] == []
    # Other programs on this machine may listen next to the sidecar and answer with permissive
    # CORS; what must never be readable is a docsidecar (ours, or another test's).
    scan_leaks = {p: r for p, r in scan.items() if _leaks(r) and (p == str(port) or _looks_like_docsidecar(r))}
    assert scan_leaks == {}, f"the port scan read a docsidecar: {scan_leaks}"
    assert scan[str(port)]["outcome"] == "error", "the real port looks like every closed port to a CORS fetch"

    lines = world.log_lines()
    refused = _count(lines, r"^(GET|POST|OPTIONS) /v1/\S* -> (401|403)$") - refused_before
    assert refused >= 10, f"the attempts should have reached the sidecar and been refused; log: {lines[-30:]}"
    assert not any(re.match(r"^\S+ /v1/\S* -> 2\d\d$", m) for m in lines[-refused:]), "a request was served"
    assert world.documents() == docs_before, "a cross-origin page managed to add a document"


def test_dns_rebinding_page_is_refused_even_with_the_token(world: World) -> None:
    try:
        relay = RebindRelay(world.sidecar.port).start()
    except OSError as exc:
        if ci():
            raise
        pytest.skip(f"cannot bind {exc!s} on 127.0.0.2 (Linux binds all of 127/8; other systems may not)")
    docs_before = world.documents()
    lines_before = len(world.log_lines())
    try:
        origin = f"http://{REBIND_HOST}:{world.sidecar.port}"
        url = _url(origin, "rebind.html", world.attacker.origin, token=TOKEN, victim=str(world.victim))
        results = run_page(world.chromium, url, world.collector, "rebind")
    finally:
        relay.stop()
    assert relay.relayed >= 1, "the page's API requests must have reached the sidecar through the relay"
    seen = [m for m in world.log_lines()[lines_before:] if " /v1/" in m]
    assert sorted(seen) == sorted(
        [
            "GET /v1/status -> 403",
            "GET /v1/status -> 403",
            "GET /v1/health -> 403",
            "GET /v1/documents -> 403",
            "POST /v1/documents -> 403",
        ]
    ), seen
    for name, r in results.items():
        assert r["outcome"] == "resolved" and r["type"] == "basic", (name, r)  # same-origin: fully readable
        assert r["status"] == 403, (name, r)
        assert json.loads(r["body"]) == {
            "error": "forbidden_host",
            "message": "Host header is not this sidecar's loopback address",
            "detail": None,
        }, (name, r)
    assert world.documents() == docs_before


def test_allowed_origin_with_the_token_works(world: World) -> None:
    url = _url(
        world.app, "app.html", world.attacker.origin, port=world.sidecar.port, token=TOKEN, doc=str(world.app_doc)
    )
    results = run_page(world.chromium, url, world.collector, "app")

    status = results["status_with_token"]
    assert status["outcome"] == "resolved" and status["type"] == "cors" and status["status"] == 200, status
    assert json.loads(status["body"])["pid"] == world.sidecar.proc.pid
    assert status["request_id"], "X-Request-ID is exposed to the allowed origin"
    no_token = results["status_without_token"]
    assert no_token["status"] == 401 and json.loads(no_token["body"])["error"] == "unauthorized", no_token
    added = results["add_document"]
    assert added["status"] == 202, added
    doc_id = json.loads(added["body"])["document"]["id"]
    with world.sidecar.client() as c:
        assert c.get(f"/v1/documents/{doc_id}").json()["path"] == str(world.app_doc)
    events = results["event_stream"]
    assert events["status"] == 200 and "event: hello" in events["body"], events


def _looks_like_docsidecar(result: dict[str, Any]) -> bool:
    return "x-request-id" in result.get("headers", []) or '"status":"ok"' in str(result.get("body", "")).replace(
        " ", ""
    )


def _count(lines: list[str], pattern: str) -> int:
    rx = re.compile(pattern)
    return sum(1 for line in lines if rx.match(line))


def test_sidecar_answers_directly_for_comparison(world: World) -> None:
    """The control: without a browser, with the token, the same requests succeed."""
    with httpx.Client(base_url=world.sidecar.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        assert c.get("/v1/status").status_code == 200
        assert c.get("/v1/status", headers={"Origin": world.attacker.origin}).status_code == 403
        assert c.get("/v1/status", headers={"Host": f"{REBIND_HOST}:{world.sidecar.port}"}).status_code == 403
