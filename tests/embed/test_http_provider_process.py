"""A real ``docsidecar serve`` process with an HTTP embedding provider: the API key reaches the
server and nothing else — not ``/v1/status``, not ``docsidecar status``, not the log (at DEBUG,
through an outage and its error messages; stderr carries the same JSON lines as the log file)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from backend.embed.onnx_embedder import OnnxEmbedder
from tests.helpers.openai_embeddings import EmbeddingsServer
from tests.helpers.process import sidecar_command, start_sidecar

API_KEY = "sk-test-process-k3y-9876543210-never-logged"


def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_api_key_is_sent_to_the_server_and_never_shown(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    server = EmbeddingsServer({"minilm": onnx_embedder.embed}, api_key=API_KEY).start()
    env = {
        "DOCSIDECAR_LOG_LEVEL": "DEBUG",
        "DOCSIDECAR_EMBED_PROVIDER": "http",
        "DOCSIDECAR_EMBED_HTTP_BASE_URL": server.url,
        "DOCSIDECAR_EMBED_HTTP_MODEL": "minilm",
        "DOCSIDECAR_EMBED_HTTP_MODEL_ID": "remote-minilm",
        "DOCSIDECAR_EMBED_HTTP_DIM": "384",
        "DOCSIDECAR_EMBED_HTTP_API_KEY": API_KEY,
        "DOCSIDECAR_EMBED_HTTP_ATTEMPTS": "1",
        "DOCSIDECAR_EMBED_HTTP_COOLDOWN_S": "0.5",
    }
    data = tmp_path / "d"
    proc = start_sidecar(data, env=env)
    texts: list[str] = []
    try:
        with proc.client() as c:

            def embedding_state(want: str) -> bool:
                r = c.get("/v1/status")
                texts.append(r.text)
                return bool(r.json()["embedding"]["state"] == want)

            until(lambda: embedding_state("ready"), 60, "the provider to be ready")
            doc = tmp_path / "cat.txt"
            doc.write_text("The cat watches the sparrows from the windowsill every afternoon.")
            assert c.post("/v1/documents", json={"path": str(doc)}).status_code == 202
            until(lambda: c.get("/v1/status").json()["counts"]["embeddings"] == 1, 60, "the document's vector")
            r = c.post("/v1/search", json={"query": "a kitten looking at birds", "mode": "semantic", "k": 1})
            assert r.status_code == 200 and r.json()["hits"], r.text

            server.stop()
            r = c.post("/v1/search", json={"query": "sparrows on a windowsill", "mode": "hybrid", "k": 1})
            texts.append(r.text)
            assert r.json()["retrievers"] == ["keyword"]
            until(lambda: embedding_state("unavailable"), 60, "the outage to show")
            server.start()
            until(lambda: embedding_state("ready"), 60, "the provider to be back")
            human = subprocess.run(
                [*sidecar_command("status"), "--data-dir", str(data)], capture_output=True, text=True, timeout=60
            )
            assert human.returncode == 0, human.stderr
            assert "embedding: http remote-minilm ready at http://127.0.0.1:" in human.stdout
            texts.append(human.stdout + human.stderr)
    finally:
        assert proc.stop() == 0
        server.stop()
    seen = server.seen()
    assert seen and {r.authorization for r in seen} == {f"Bearer {API_KEY}"}
    log = (data / "logs" / "docsidecar.log").read_text(encoding="utf-8")
    assert "embedding provider" in log and "unreachable" in log  # the outage was logged ...
    assert API_KEY not in log  # ... the key never
    assert texts and not any(API_KEY in t for t in texts)
