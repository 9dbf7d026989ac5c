"""A small real corpus indexed through the real pipeline (extract → chunk → embed → store).

Built once per test session (per xdist worker) into a template data dir; tests copy it so each
gets a private database. Pages are from the PostgreSQL 15 manual (Debian postgresql-doc-15).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.services import Services
from backend.settings import Settings
from backend.store import documents as doc_repo

PG_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {  # file → (scope, tags)
    "indexes-types.html": ("manual", ("indexes",)),
    "indexes-partial.html": ("manual", ("indexes",)),
    "sql-createindex.html": ("reference", ("indexes", "sql")),
    "backup-dump.html": ("manual", ("backup",)),
    "wal-intro.html": ("manual", ("wal",)),
    "sql-vacuum.html": ("reference", ("sql", "maintenance")),
    "textsearch-intro.html": ("manual", ()),
    "ddl-constraints.html": ("manual", ("ddl",)),
    "tutorial-join.html": ("tutorial", ()),
    "auth-pg-hba-conf.html": ("manual", ("security",)),
}


@dataclass(frozen=True)
class IndexedCorpus:
    data_dir: Path
    documents: dict[str, str]  # page file name → document id


def require_pg_docs() -> None:
    if not PG_HTML.is_dir():
        if os.environ.get("CI"):
            raise AssertionError(f"{PG_HTML} is missing (apt-get install postgresql-doc-15)")
        pytest.skip("postgresql-doc-15 is not installed (apt-get install postgresql-doc-15)")


def wait_idle(services: Services, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.store.read() as conn:
            busy = conn.execute(  # embed_missing waits for a model that may never come: not counted
                "SELECT count(*) FROM jobs WHERE kind = 'ingest' AND state IN ('queued', 'running')"
            ).fetchone()[0]
        if not busy:
            return
        time.sleep(0.2)
    raise AssertionError("ingest did not finish in time")


def build(data_dir: Path, pages: dict[str, tuple[str, tuple[str, ...]]] = PAGES, **settings: object) -> IndexedCorpus:
    require_pg_docs()
    s = Settings.load({}, {"data_dir": data_dir, **settings})
    services = Services(s)
    services.start()
    try:
        services.embedding.wait_ready(120)
        ids = {}
        for page, (scope, tags) in pages.items():
            doc, _ = services.ingest.add_path(str(PG_HTML / page), scope, tags)
            ids[page] = doc.id
        wait_idle(services)
        with services.store.read() as conn:
            for doc_id in ids.values():
                doc = doc_repo.get(conn, doc_id)
                assert doc is not None and doc.chunk_count > 0, doc
    finally:
        services.stop()
    return IndexedCorpus(data_dir, ids)


def copy_of(corpus: IndexedCorpus, target: Path) -> IndexedCorpus:
    shutil.copytree(corpus.data_dir, target)
    for name in ("instance.json", "instance.lock"):
        (target / name).unlink(missing_ok=True)
    return IndexedCorpus(target, corpus.documents)
