"""Work avoided: unchanged bytes are not re-embedded, an edit re-embeds only the chunks whose
text changed. Proven by counting what the real embedder is handed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.services import Services
from tests.helpers.index_check import index_problems
from tests.ingest.harness import CountingEmbedding, make_settings, running_app, upload, wait_job

pytestmark = pytest.mark.anyio

SECTIONS = [
    ("Installation", "Download the package and run the installer. The wizard asks for a target folder."),
    ("Configuration", "Settings live in a plain text file. Each line holds a key and a value."),
    ("Backups", "Copy the data directory while the service is stopped. Restores work the same way."),
    ("Replication", "A standby server replays the write-ahead log shipped from the primary."),
    ("Monitoring", "Counters are exported in a text format that scrapers understand."),
    ("Upgrades", "Read the release notes first, then upgrade the standby before the primary."),
]


def manual(edited: str | None = None) -> str:
    parts = ["# Operations manual\n"]
    for title, body in SECTIONS:
        paragraph = edited if (edited and title == "Replication") else body
        parts.append(f"## {title}\n\n" + "\n\n".join(f"{paragraph} (part {k})" * 4 for k in range(3)) + "\n")
    return "\n".join(parts)


def counting(holder: list[CountingEmbedding]):  # type: ignore[no-untyped-def]
    def patch(services: Services) -> None:
        wrapped = CountingEmbedding(services.embedding)
        services.ingest.pipeline.embedding = wrapped
        holder.append(wrapped)

    return patch


def chunk_rows(services: Services, doc_id: str) -> list[tuple[int, str]]:
    with services.store.read() as conn:
        return [(int(i), str(t)) for i, t in conn.execute(
            "SELECT id, text FROM chunks WHERE document_id = ? ORDER BY ordinal", (doc_id,))]  # fmt: skip


async def test_unchanged_bytes_are_not_re_embedded(tmp_path: Path) -> None:
    src = tmp_path / "manual.md"
    src.write_text(manual())
    holder: list[CountingEmbedding] = []
    async with running_app(make_settings(tmp_path / "data"), counting(holder)) as (client, services):
        texts = holder[0].texts
        r = (await client.post("/v1/documents", json={"path": str(src)})).json()
        await wait_job(client, r["job_id"])
        doc_id = r["document"]["id"]
        before = chunk_rows(services, doc_id)
        assert len(before) >= 6 and len(texts) == len(before)

        # same bytes, indexed again; then only the mtime changes (what cloud-sync clients do)
        for step in ("again", "touched"):
            if step == "touched":
                os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 5_000_000_000))
            again = (await client.post("/v1/documents", json={"path": str(src)})).json()
            assert (await wait_job(client, again["job_id"]))["state"] == "done"
            assert len(texts) == len(before), f"{step}: the embedder was called"
            assert chunk_rows(services, doc_id) == before, f"{step}: chunks were rewritten"
        doc = (await client.get(f"/v1/documents/{doc_id}")).json()
        assert doc["status"] == "embedded" and doc["version"] == 2  # one real indexing only
        stats = (await client.get("/v1/ingest")).json()["stats"]
        assert stats["documents_unchanged"] == 2 and stats["chunks_embedded"] == len(before)

        # the same content uploaded as another document reuses the stored vectors
        copy = (await upload(client, "copy.md", src.read_bytes(), scope="other")).json()
        await wait_job(client, copy["job_id"])
        assert len(texts) == len(before)
        assert (await client.get(f"/v1/documents/{copy['document']['id']}")).json()["status"] == "embedded"
        with services.store.read() as conn:
            assert index_problems(conn) == []


async def test_an_edit_re_embeds_only_the_changed_chunks(tmp_path: Path) -> None:
    src = tmp_path / "manual.md"
    src.write_text(manual())
    holder: list[CountingEmbedding] = []
    async with running_app(make_settings(tmp_path / "data"), counting(holder)) as (client, services):
        texts = holder[0].texts
        r = (await client.post("/v1/documents", json={"path": str(src)})).json()
        await wait_job(client, r["job_id"])
        doc_id = r["document"]["id"]
        old = {t for _, t in chunk_rows(services, doc_id)}
        first = len(texts)

        src.write_text(manual(edited="Logical replication publishes row changes to subscribers by table."))
        again = (await client.post("/v1/documents", json={"path": str(src)})).json()
        await wait_job(client, again["job_id"])
        new_rows = chunk_rows(services, doc_id)
        new = [t for _, t in new_rows]
        changed = [t for t in new if t not in old]
        embedded_now = texts[first:]
        assert sorted(embedded_now) == sorted(set(changed)), "exactly the changed chunk texts were embedded"
        assert 1 <= len(changed) <= 3 < len(new) - 2, (len(changed), len(new))
        assert all("Replication" in t or "Logical replication" in t for t in changed)
        doc = (await client.get(f"/v1/documents/{doc_id}")).json()
        assert doc["status"] == "embedded" and doc["chunk_count"] == len(new)
        events, _ = services.events.since(0)
        updated = [e.data for e in events if e.type == "document.updated"]
        assert updated[-1]["embedded"] == len(changed) and updated[-1]["reused"] == len(new) - len(changed)
        with services.store.read() as conn:
            assert index_problems(conn) == []
            # every chunk, reused or new, has the vector of its own text
            rows = conn.execute(
                "SELECT c.text, e.vector FROM chunks c JOIN embeddings e ON e.chunk_id = c.id WHERE c.document_id = ?",
                (doc_id,),
            ).fetchall()
        embedder = services.embedding.embedder
        import numpy as np

        fresh = embedder.embed([t for t, _ in rows])
        for (_, blob), vec in zip(rows, fresh, strict=True):
            assert float(np.dot(np.frombuffer(blob, dtype=np.float32), vec)) > 0.999
