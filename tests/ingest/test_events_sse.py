"""``GET /v1/events`` on a real sidecar subprocess: job progress (done/total chunks, bytes, ETA),
document added/updated/removed, and explained failures, as an Electron UI would read them."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.process import SidecarProcess, start_sidecar

# small chunks: many of them (more than one embedding batch of 128) for little model time
ENV = {"DOCSIDECAR_EMBED_THREADS": "1", "DOCSIDECAR_LOG_LEVEL": "WARNING",
       "DOCSIDECAR_CHUNK_TOKENS": "24", "DOCSIDECAR_CHUNK_OVERLAP_TOKENS": "3"}  # fmt: skip
SECTIONS = 400


class EventReader(threading.Thread):
    """Reads the SSE stream into ``events`` until the stream ends."""

    def __init__(self, sc: SidecarProcess) -> None:
        super().__init__(name="sse-reader", daemon=True)
        self.sc = sc
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.sc.token}"}
        with httpx.stream(
            "GET", f"{self.sc.base_url}/v1/events", headers=headers, timeout=httpx.Timeout(10, read=None)
        ) as r:
            kind = None
            try:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind:
                        with self.changed:
                            self.events.append((kind, json.loads(line[5:])))
                            self.changed.notify_all()
                        if kind == "hello":
                            self.connected.set()
            except httpx.HTTPError:
                return

    def wait_for(self, kind: str, timeout: float = 60.0, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((d for k, d in self.events if k == kind and all(d.get(f) == v for f, v in match.items())), None)

        with self.changed:
            self.changed.wait_for(lambda: found() is not None, timeout)
            hit = found()
        assert hit is not None, f"no {kind} {match} event; got {[k for k, _ in self.events]}"
        return hit

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        with self.changed:
            return [d for k, d in self.events if k == kind and all(d.get(f) == v for f, v in match.items())]


def sections(n: int, word: str = "alpha") -> str:
    return "\n".join(
        f"# Part {i}\n\nThe {word} section number {i} explains item {i * 7} in detail.\n" for i in range(n)
    )


def test_progress_and_document_events_stream_to_the_ui(tmp_path: Path) -> None:
    src = tmp_path / "guide.md"
    src.write_text(sections(SECTIONS))
    sc = start_sidecar(tmp_path / "data", env=ENV)
    reader = EventReader(sc)
    try:
        reader.start()
        assert reader.connected.wait(30)
        with sc.client() as c:
            r = c.post("/v1/documents", json={"path": str(src), "scope": "guides"}).json()
            doc_id, job_id = r["document"]["id"], r["job_id"]
            added = reader.wait_for("document.added", document_id=doc_id)
            n = added["chunks"]
            assert n > 128 and added["embedded"] == n and added["scope"] == "guides"
            reader.wait_for("job.done", job_id=job_id)
            progress = reader.of("job.progress", job_id=job_id)
            stages = [p["stage"] for p in progress]
            assert stages[0] == "hashing" and stages[-1] == "done" and "embedding" in stages
            size = src.stat().st_size
            assert all(p["bytes"] == size for p in progress)
            embedding = [p for p in progress if p["stage"] == "embedding"]
            assert all(p["total"] == n for p in embedding)
            assert [p["done"] for p in embedding] == sorted(p["done"] for p in embedding)
            mid = [p for p in embedding if 0 < p["done"] < n]
            assert mid, f"no intermediate progress: {embedding}"
            assert all(p["eta_s"] is not None and p["eta_s"] > 0 for p in mid)
            assert progress[-1]["done"] == progress[-1]["total"] == n and progress[-1]["eta_s"] is None
            assert [k for k, d in reader.events if d.get("job_id") == job_id][:2] == ["job.queued", "job.started"]

            # an edit: updated, re-embedding only what changed
            src.write_text(sections(SECTIONS).replace("section number 5 ", "section number five "))
            r2 = c.post("/v1/documents", json={"path": str(src)}).json()
            updated = reader.wait_for("document.updated", document_id=doc_id)
            assert 1 <= updated["embedded"] <= 2 and updated["reused"] == n - updated["embedded"]
            reader.wait_for("job.done", job_id=r2["job_id"])

            # an unsupported upload: an explained skip, not an error that stops anything
            bad = c.post("/v1/documents", files={"file": ("photo.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)}).json()
            skipped = reader.wait_for("document.skipped", document_id=bad["document"]["id"])
            assert skipped["status"] == "unsupported" and skipped["reason"] == "images (no OCR) are not supported"

            assert c.delete(f"/v1/documents/{doc_id}").status_code == 200
            removed = reader.wait_for("document.removed", document_id=doc_id)
            assert removed["reason"] == "deleted"
    finally:
        sc.stop()
        reader.join(10)
    assert not reader.is_alive(), "the event stream did not end at shutdown"
