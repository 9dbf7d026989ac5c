"""Crash safety: SIGKILL a real ``python -m backend serve`` at random moments while it ingests a
watched folder and uploads (tiny documents, so it runs in about a minute), restart, repeat.

Afterwards: ``PRAGMA integrity_check`` and FTS5's integrity-check are ok, every file and every
acknowledged upload is indexed exactly once from its current bytes, no orphan FTS/vector rows,
and no job is left ``running``.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import httpx
import pytest

from backend.ingest.chunker import Chunker
from backend.ingest.chunking import ChunkingConfig, HFSpanTokenizer
from tests.helpers.index_check import folder_problems, index_problems, open_db
from tests.helpers.process import SidecarProcess, start_sidecar
from tests.ingest.fixtures import tokenizer_path

pytestmark = pytest.mark.slow

ROUNDS = 10
ENV = {"DOCSIDECAR_EMBED_THREADS": "1", "DOCSIDECAR_WATCH_QUIET_S": "0.1", "DOCSIDECAR_LOG_LEVEL": "WARNING"}
TOPICS = ["tables", "indexes", "vacuum", "backups", "replicas", "locks", "queries", "triggers", "roles", "views"]


def write_doc(folder: Path, n: int, version: int = 0) -> None:
    topic = TOPICS[n % len(TOPICS)]
    (folder / f"doc{n:03d}.txt").write_text(f"Note {n} (v{version}) about {topic}: {topic} need care, says note {n}.\n")


def upload_bytes(n: int) -> bytes:
    return f"Uploaded memo {n}: remember the {TOPICS[n % len(TOPICS)]} review.".encode()


def start(data_dir: Path) -> SidecarProcess:
    return start_sidecar(data_dir, env=ENV)


def pending_work(client: httpx.Client) -> int:
    try:
        state = client.get("/v1/ingest", timeout=2).json()
    except httpx.HTTPError:
        return 0
    return int(state["queued"]) + (1 if state["running"] else 0)


def test_sigkill_during_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20260401)
    folder = (tmp_path / "watched").resolve()
    folder.mkdir()
    for n in range(50):
        write_doc(folder, n)
    data_dir = tmp_path / "data"
    acked: dict[int, str] = {}  # upload number → document id
    next_file, kills_with_work = 50, 0

    sc = start(data_dir)
    with sc.client() as c:
        assert c.post("/v1/folders", json={"path": str(folder)}).status_code == 201
    for round_no in range(ROUNDS):
        with sc.client() as c:
            # more work arrives every round: new files, edits, uploads (retried until acknowledged)
            for _ in range(4):
                write_doc(folder, next_file)
                next_file += 1
            write_doc(folder, rng.randrange(next_file), version=round_no + 1)
            for n in range(round_no * 2, round_no * 2 + 3):
                if n in acked:
                    continue
                try:
                    r = c.post("/v1/documents", files={"file": (f"memo{n}.txt", upload_bytes(n))})
                except httpx.HTTPError:
                    continue
                if r.status_code in {200, 202}:
                    acked[n] = r.json()["document"]["id"]
            for n in [k for k in range(round_no * 2) if k not in acked]:  # earlier, never acknowledged
                r = c.post("/v1/documents", files={"file": (f"memo{n}.txt", upload_bytes(n))})
                acked[n] = r.json()["document"]["id"]
            time.sleep(rng.uniform(0.0, 1.5))
            kills_with_work += pending_work(c) > 0
        sc.proc.kill()
        sc.proc.wait()
        sc.stop()
        sc = start(data_dir)

    # let the last incarnation finish, then stop it gracefully
    with sc.client() as c:
        deadline = time.monotonic() + 120
        while pending_work(c) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending_work(c) == 0, "the queue did not drain"
    assert sc.stop() == 0
    assert kills_with_work >= ROUNDS // 2, f"only {kills_with_work} kills hit pending work"

    conn = open_db(data_dir, readonly=False)
    try:
        assert index_problems(conn, integrity=True, fts_check=True) == []
        assert conn.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0] == 0
        interrupted = conn.execute("SELECT count(*) FROM jobs WHERE attempts > 0").fetchone()[0]
        assert interrupted >= 1, "no kill hit a running job"  # typically 5-10 of 12
        chunker = Chunker(lambda: HFSpanTokenizer.from_file(tokenizer_path()), ChunkingConfig())
        assert folder_problems(conn, folder, chunker) == []
        assert len(list(folder.iterdir())) == next_file >= 50 + 4 * ROUNDS
        uploads = conn.execute("SELECT id, sha256, status FROM documents WHERE source = 'upload'").fetchall()
        by_sha = {str(sha): (str(doc_id), str(status)) for doc_id, sha, status in uploads}
        assert len(by_sha) == len(uploads), "an upload was stored twice"
        for n, doc_id in acked.items():
            sha = hashlib.sha256(upload_bytes(n)).hexdigest()
            assert by_sha[sha] == (doc_id, "embedded"), n
        assert len(uploads) == len(acked) == ROUNDS * 2 + 1
    finally:
        conn.close()
