"""End to end: a watched folder of real documents (PostgreSQL HTML pages, the R FAQ PDF, generated
md/txt/docx/pdf) stays in step with the index while files are added, edited, renamed, moved,
touched and deleted — with the sidecar running and while it is stopped.

After every step the index must match the folder exactly: one document per wanted file, built
from the file's current bytes, its chunks exactly what extraction + chunking give now, no
orphan FTS or vector rows. Renames and mtime-only touches must not re-embed anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from backend.services import Services
from tests.helpers.index_check import folder_problems, index_problems, open_db
from tests.ingest.fixtures import make_docx, make_pdf, pg_page, r_manual
from tests.ingest.harness import CountingEmbedding, make_settings, running_app, wait_for, wait_idle

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PG_PAGES = ("sql-droptable.html", "storage-init.html", "gin-limit.html", "install-short.html")


def build_folder(root: Path) -> None:
    (root / "pg").mkdir(parents=True)
    for name in PG_PAGES:
        shutil.copy(pg_page(name), root / "pg" / name)
    shutil.copy(r_manual("R-FAQ.pdf"), root / "R-FAQ.pdf")
    (root / "notes.md").write_text(
        "# Meeting notes\n\nWe agreed to ship on Friday.\n\n## Risks\n\nThe build is slow.\n"
    )
    (root / "todo.txt").write_text("Buy milk.\nCall the plumber about the leaking tap in the kitchen.\n")
    (root / "report.docx").write_bytes(
        make_docx([("Annual report", "Title"), ("Summary", "berschrift1"), ("Sales rose by ten percent.", None)])
    )
    (root / "slides.pdf").write_bytes(make_pdf([["Slide one: the plan"], ["Slide two: the budget"]]))
    (root / "drafts").mkdir()
    (root / "drafts" / "secret.md").write_text("excluded by a glob")
    # never documents: a cloud placeholder, editor temp files, a hidden file
    (root / ".R-admin.pdf.icloud").write_bytes(b"bplist00 placeholder")
    (root / "~$report.docx").write_bytes(b"lock file")
    (root / "notes.md.swp").write_bytes(b"vim swap")
    (root / ".hidden.txt").write_text("hidden")


def counting(holder: list[CountingEmbedding]) -> Any:
    def patch(services: Services) -> None:
        holder.append(CountingEmbedding(services.embedding))
        services.ingest.pipeline.embedding = holder[-1]

    return patch


def problems(services: Services, folder: Path, *, deep: bool) -> list[str]:
    conn = open_db(services.settings.data_dir)  # fresh: see index_problems(integrity=True)
    try:
        busy = conn.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
        found = folder_problems(conn, folder, services.ingest.pipeline.chunker, deep=deep)
        return found + index_problems(conn, integrity=deep) + ([f"{busy} jobs pending"] if busy else [])
    finally:
        conn.close()


async def converged(services: Services, folder: Path, what: str, timeout: float = 90.0) -> None:
    """Wait until the cheap checks pass, then require the deep ones (chunks re-derived)."""
    last: list[str] = []

    async def ok() -> bool:
        nonlocal last
        last = problems(services, folder, deep=False)
        return not last

    try:
        await wait_for(ok, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {last}") from exc
    assert problems(services, folder, deep=True) == [], what


def doc_state(services: Services, path: Path) -> tuple[str, list[int], int]:
    with services.store.read() as conn:
        doc_id, version = conn.execute("SELECT id, version FROM documents WHERE path = ?", (str(path),)).fetchone()
        ids = [
            int(r[0]) for r in conn.execute("SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal", (doc_id,))
        ]
    return str(doc_id), ids, int(version)


def touch(path: Path, seconds: int = 7) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


async def test_watched_folder_matches_the_index_through_every_change(tmp_path: Path) -> None:
    root = (tmp_path / "library").resolve()
    build_folder(root)
    settings = make_settings(tmp_path / "data")
    holder: list[CountingEmbedding] = []

    # -- watched, sidecar running ---------------------------------------------------------------
    async with running_app(settings, counting(holder)) as (client, services):
        texts = holder[-1].texts
        r = await client.post("/v1/folders", json={"path": str(root), "scope": "library", "exclude": ["drafts/*"]})
        assert r.status_code == 201, r.text
        folder_id = r.json()["id"]
        await converged(services, root, "initial reconcile")
        with services.store.read() as conn:
            paths = {str(p) for (p,) in conn.execute("SELECT path FROM documents")}
        assert len(paths) == 9 and str(root / "R-FAQ.pdf") in paths
        faq_id, faq_chunks, faq_version = doc_state(services, root / "R-FAQ.pdf")
        assert len(faq_chunks) > 100
        listed = (await client.get("/v1/folders")).json()["items"]
        assert listed[0]["mode"] == "watching" and listed[0]["directories"] == 3
        cov = (await client.get("/v1/coverage")).json()
        assert cov["folders"][0]["summary"] == "9/9 indexed"

        # add
        (root / "pg" / "diskusage.html").write_bytes(pg_page("diskusage.html").read_bytes())
        await converged(services, root, "file added")
        # modify
        (root / "notes.md").write_text("# Meeting notes\n\nWe agreed to ship on Monday instead.\n")
        await converged(services, root, "file edited")
        # rename + move into a new sub-folder: same document, same chunk rows, nothing embedded
        embedded = len(texts)
        (root / "manuals").mkdir()
        os.rename(root / "R-FAQ.pdf", root / "manuals" / "faq.pdf")
        await converged(services, root, "file moved")
        assert doc_state(services, root / "manuals" / "faq.pdf") == (faq_id, faq_chunks, faq_version)
        assert len(texts) == embedded
        # cloud-sync style touch: new mtime, same bytes → nothing re-embedded, chunks untouched
        touched = [root / "manuals" / "faq.pdf", root / "todo.txt"]
        for path in touched:
            touch(path)

        async def mtimes_recorded() -> bool:
            with services.store.read() as conn:
                stored = [conn.execute("SELECT mtime_ns FROM documents WHERE path = ?", (str(p),)).fetchone()[0]
                          for p in touched]  # fmt: skip
            return stored == [p.stat().st_mtime_ns for p in touched]

        await wait_for(mtimes_recorded, 30, "the touched files' new mtimes")
        await wait_idle(services)
        await converged(services, root, "mtime touched")
        assert doc_state(services, root / "manuals" / "faq.pdf") == (faq_id, faq_chunks, faq_version)
        assert len(texts) == embedded
        # delete
        (root / "slides.pdf").unlink()
        await converged(services, root, "file deleted")
        # a placeholder appearing is not indexed; neither is a file excluded by glob
        (root / ".slides.pdf.icloud").write_bytes(b"placeholder")
        (root / "drafts" / "more.md").write_text("still excluded")
        await converged(services, root, "placeholder ignored")
        # rename a whole directory
        os.rename(root / "pg", root / "postgres")
        await converged(services, root, "directory renamed")
        assert len(texts) == embedded + 0, "a directory rename re-embedded documents"
        events, _ = services.events.since(0)
        kinds = {e.type for e in events}
        assert {"document.added", "document.updated", "document.moved", "document.removed"} <= kinds

    # -- sidecar stopped: add, edit, rename, delete ----------------------------------------------
    (root / "fresh.txt").write_text("Written while the sidecar was not running.")
    (root / "todo.txt").write_text("Buy milk.\nThe plumber came already.\n")
    os.rename(root / "manuals" / "faq.pdf", root / "R-FAQ.pdf")
    (root / "report.docx").unlink()
    shutil.rmtree(root / "manuals")

    async with running_app(settings, counting(holder)) as (client, services):
        texts = holder[-1].texts
        await converged(services, root, "reconcile after restart")
        assert doc_state(services, root / "R-FAQ.pdf") == (faq_id, faq_chunks, faq_version)
        assert len(texts) <= 4, f"only the new and edited files are embedded, got {len(texts)} texts"
        folders = (await client.get("/v1/folders")).json()["items"]
        assert folders[0]["id"] == folder_id and folders[0]["mode"] == "watching"
        # removing the folder removes its documents
        assert (await client.delete(f"/v1/folders/{folder_id}")).status_code == 200
        conn = open_db(settings.data_dir)
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 0
        assert index_problems(conn, integrity=True) == []
        conn.close()
