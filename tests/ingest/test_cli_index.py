"""``docsidecar index PATH``: progress bar and summary, in-process and through a running sidecar."""

from __future__ import annotations

import subprocess
from pathlib import Path

from backend.osdeps.filelock import InstanceLock
from backend.server import LOCK_FILENAME
from tests.helpers.index_check import open_db
from tests.helpers.process import sidecar_command, start_sidecar
from tests.ingest.fixtures import make_pdf

ENV_KEYS = {"DOCSIDECAR_EMBED_THREADS": "1", "DOCSIDECAR_LOG_LEVEL": "WARNING"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        sidecar_command(*args),
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **ENV_KEYS, **(env or {})},
    )


def make_folder(root: Path) -> None:
    root.mkdir()
    (root / "guide.md").write_text("# Guide\n\nHow to index a folder from the command line.\n")
    (root / "notes.txt").write_text("Plain notes about the release.")
    (root / "scan.pdf").write_bytes(make_pdf([[]]))
    (root / ".hidden.txt").write_text("not a candidate")


def test_index_in_process_shows_progress_and_a_summary(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    make_folder(folder)
    data = tmp_path / "data"
    result = run_cli("--data-dir", str(data), "index", str(folder), str(tmp_path / "missing.txt"), "--scope", "cli")
    assert result.returncode == 1, result.stderr  # one path was refused
    err = result.stderr
    assert "[##############################] 3/3 files" in err
    assert "missing.txt: no such file or folder" in err
    assert "scan.pdf: skipped, PDF has no text layer (scanned?); OCR is not supported" in err
    assert err.rstrip().splitlines()[-1] == "indexed 2/4 files, 1 skipped, 1 refused"
    assert result.stdout == ""
    conn = open_db(data)
    rows = dict(conn.execute("SELECT filename, status FROM documents WHERE scope = 'cli'").fetchall())
    conn.close()
    assert rows == {"guide.md": "embedded", "notes.txt": "embedded", "scan.pdf": "no_text"}

    again = run_cli("--data-dir", str(data), "index", str(folder / "guide.md"), "--scope", "cli")
    assert again.returncode == 0, again.stderr
    assert again.stderr.rstrip().splitlines()[-1] == "indexed 1/1 files"


def test_index_through_a_running_sidecar(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    make_folder(folder)
    sc = start_sidecar(tmp_path / "data", env=ENV_KEYS)
    try:
        result = run_cli(
            "--data-dir", str(tmp_path / "data"), "index", str(folder / "guide.md"), str(folder / "notes.txt")
        )
        assert result.returncode == 0, result.stderr
        assert "2/2 files" in result.stderr
        assert result.stderr.rstrip().splitlines()[-1] == "indexed 2/2 files"
        with sc.client() as c:
            items = c.get("/v1/documents").json()["items"]
        assert sorted((d["filename"], d["status"]) for d in items) == [
            ("guide.md", "embedded"),
            ("notes.txt", "embedded"),
        ]
        watch = run_cli("--data-dir", str(tmp_path / "data"), "index", "--watch", str(folder))
        assert watch.returncode == 0 and f"watching {folder}" in watch.stderr
        with sc.client() as c:
            assert [f["path"] for f in c.get("/v1/folders").json()["items"]] == [str(folder)]
    finally:
        sc.stop()


def test_index_refuses_a_locked_data_dir_it_cannot_reach(tmp_path: Path) -> None:
    """A sidecar started with the token in its environment leaves no token file: the CLI must not
    open a second writer on the data dir the sidecar holds (its instance lock, held here)."""
    folder = tmp_path / "docs"
    make_folder(folder)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    lock = InstanceLock(data / LOCK_FILENAME)
    lock.acquire()
    try:
        result = run_cli("--data-dir", str(data), "index", str(folder / "guide.md"))
    finally:
        lock.release()
    assert result.returncode == 3 and "cannot be reached" in result.stderr
    assert not (data / "docsidecar.db").exists()
