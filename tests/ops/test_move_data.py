"""``docsidecar move-data NEW_DIR``: the data dir moves with everything in it, a process killed
(SIGKILL) at any step leaves one authoritative copy and a rerun finishes or cleans up, a running
sidecar or a non-empty target is refused, and the old location refuses to start afterwards
naming the new one (what the desktop app passes as DOCSIDECAR_DATA_DIR)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.cli import main as cli_main
from backend.ingest.blobs import BlobStore
from backend.maintenance.datadir import DataDirMoved, MoveIncomplete, check_not_moved, preflight
from backend.maintenance.move_data import INTENT_FILE, move_data
from backend.osdeps.filelock import InstanceLock
from backend.store import Store
from backend.store import documents as doc_repo
from backend.store import vectors as vector_repo
from tests.helpers.index_check import open_db

ROOT = Path(__file__).resolve().parents[2]
MODEL = "all-MiniLM-L6-v2-int8"
STEPS_BEFORE_SWITCH = ["intent", "copy:blobs/", "copied", "verified", "renamed"]
STEPS_AFTER_SWITCH = ["switched", "unmarked"]


def make_data_dir(path: Path, documents: int = 3) -> Path:
    """A data dir as a sidecar leaves it: database (with a WAL not yet checkpointed), uploaded
    copies, token, logs."""
    store = Store(path)
    store.start()
    blobs = BlobStore(path / "blobs")
    rng = np.random.default_rng(7)

    def add(conn: Any, i: int, key: str) -> None:
        doc = doc_repo.insert(conn, doc_id=doc_repo.new_id(), scope="default", source="upload",
                              filename=f"doc{i}.txt", size=100, sha256=key, blob_key=key, tags=("t",))  # fmt: skip
        rows = []
        for k in range(4):
            conn.execute(
                "INSERT INTO chunks(document_id, ordinal, text, sha256, char_start, char_end, token_count) "
                "VALUES (?, ?, ?, ?, 0, 10, 3)",
                (doc.id, k, f"document {i} part {k}", f"{i}-{k}"),
            )
            vec = rng.standard_normal(384).astype(np.float32)
            rows.append((int(conn.last_insert_rowid()), vec / np.linalg.norm(vec)))
        vector_repo.put_vectors(conn, MODEL, rows)
        conn.execute("UPDATE documents SET chunk_count = 4, status = 'embedded' WHERE id = ?", (doc.id,))

    try:
        for i in range(documents):
            writer = blobs.writer(10_000)
            writer.write(f"the bytes of document {i}\n".encode() * 50)
            key, _ = writer.commit()
            store.write(lambda c, i=i, key=key: add(c, i, key))
    finally:
        store.stop()
    (path / "token").write_text("secret-token")
    (path / "token").chmod(0o600)
    (path / "logs").mkdir(exist_ok=True)
    (path / "logs" / "docsidecar.log").write_text('{"msg": "a log line"}\n')
    leave_in_wal(path, "test.marker", "in the wal")
    return path


WAL_WRITER = """
import os, signal, sys
from pathlib import Path
from tests.helpers.index_check import open_db
conn = open_db(Path(sys.argv[1]), readonly=False)
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, 0)", (sys.argv[2], sys.argv[3]))
os.kill(os.getpid(), signal.SIGKILL)  # as a sidecar killed with -9: committed, never checkpointed
"""


def leave_in_wal(data_dir: Path, key: str, value: str) -> None:
    subprocess.run([sys.executable, "-c", WAL_WRITER, str(data_dir), key, value], cwd=ROOT, check=False, timeout=60)
    assert (data_dir / "docsidecar.db-wal").stat().st_size > 0


def content(data_dir: Path) -> dict[str, Any]:
    """What a user's data is: the rows of the canonical tables, the uploaded copies, the token."""
    conn = open_db(data_dir)
    try:
        tables = {}
        for table in ("documents", "chunks", "embeddings", "document_tags", "kv"):
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            tables[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        marker = conn.execute("SELECT value FROM kv WHERE key = 'test.marker'").fetchone()
    finally:
        conn.close()
    blobs = {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((data_dir / "blobs").rglob("*"))
        if p.is_file()
    }
    return {"tables": tables, "marker": marker, "blobs": blobs, "token": (data_dir / "token").read_text()}


def husk(old: Path) -> set[str]:
    return {p.name for p in old.iterdir()}


def test_move_then_start_from_the_new_place_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_data_dir(tmp_path / "old")
    want = content(old)
    new = tmp_path / "elsewhere" / "docsidecar"

    assert cli_main(["--data-dir", str(old), "move-data", str(new)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1]) == {"event": "moved", "data_dir": str(new), "from": str(old)}
    assert "DOCSIDECAR_DATA_DIR" in out.err

    assert content(new) == want
    assert (new / "token").stat().st_mode & 0o777 == 0o600
    assert husk(old) == {"MOVED.json", "docsidecar.lock"}
    preflight(new)  # the new dir is ready to use
    with pytest.raises(DataDirMoved) as moved:
        check_not_moved(old)
    assert moved.value.detail["moved_to"] == str(new)

    # the old location refuses to start, with the handshake error naming the new one
    run = subprocess.run([sys.executable, "-m", "backend", "--data-dir", str(old), "serve"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    event = json.loads(run.stdout.strip())
    assert run.returncode == 2 and event["error"] == "data_dir_moved" and event["detail"]["moved_to"] == str(new)
    # running the same command again is harmless; moving back is allowed (the husk is ours)
    assert cli_main(["--data-dir", str(old), "move-data", str(new)]) == 0
    assert cli_main(["--data-dir", str(new), "move-data", str(old)]) == 0
    assert content(old) == want and husk(new) == {"MOVED.json", "docsidecar.lock"}


def test_rows_only_in_the_wal_are_moved_too(tmp_path: Path) -> None:
    old = make_data_dir(tmp_path / "old")  # its last row was committed to the WAL only
    new = tmp_path / "new"
    move_data(old, new)
    conn = open_db(new)
    try:
        assert conn.execute("SELECT value FROM kv WHERE key = 'test.marker'").fetchone() == ("in the wal",)
    finally:
        conn.close()


def test_refused_while_a_sidecar_holds_the_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_data_dir(tmp_path / "old")
    lock = InstanceLock(old / "docsidecar.lock")
    lock.acquire()
    try:
        assert cli_main(["--data-dir", str(old), "move-data", str(tmp_path / "new")]) == 3
    finally:
        lock.release()
    assert "running" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not (old / INTENT_FILE).exists()


@pytest.mark.parametrize("target", ["non-empty", "inside", "parent", "same"])
def test_refused_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    old = make_data_dir(tmp_path / "old", documents=1)
    want = content(old)
    new = {"non-empty": tmp_path / "full", "inside": old / "sub", "parent": tmp_path, "same": old}[target]
    if target == "non-empty":
        new.mkdir()
        (new / "someone-elses.txt").write_text("keep me")
    assert cli_main(["--data-dir", str(old), "move-data", str(new)]) == 2
    err = capsys.readouterr().err
    assert ("not an empty directory" if target == "non-empty" else "must be outside") in err
    assert content(old) == want and not (old / "MOVED.json").exists()
    if target == "non-empty":
        assert [p.name for p in new.iterdir()] == ["someone-elses.txt"]


KILLER = """
import os, signal, sys
from pathlib import Path
from backend.maintenance.move_data import move_data
step = sys.argv[3]
def checkpoint(name):
    if name == step or (step.endswith("/") and name.startswith("copy:" + step[5:])):
        os.kill(os.getpid(), signal.SIGKILL)
move_data(Path(sys.argv[1]), Path(sys.argv[2]), checkpoint=checkpoint)
raise SystemExit("the step was never reached: " + step)
"""


def killed_at(old: Path, new: Path, step: str) -> None:
    run = subprocess.run([sys.executable, "-c", KILLER, str(old), str(new), step],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert run.returncode == -signal.SIGKILL, (step, run.returncode, run.stderr[-2000:])


@pytest.mark.parametrize("step", STEPS_BEFORE_SWITCH + STEPS_AFTER_SWITCH)
def test_killed_at_any_step_one_copy_is_authoritative_and_a_rerun_completes(tmp_path: Path, step: str) -> None:
    old = make_data_dir(tmp_path / "old", documents=2)
    want = content(old)
    new = tmp_path / "new"
    killed_at(old, new, step)

    if step in STEPS_BEFORE_SWITCH:
        preflight(old)  # the old dir still starts …
        assert content(old) == want  # … with all its data
        if new.exists():
            with pytest.raises(MoveIncomplete):  # and nothing starts on the half-made copy
                check_not_moved(new)
    else:
        with pytest.raises(DataDirMoved):  # switched: the old dir refuses, the new one is complete
            check_not_moved(old)
        assert content(new) == want
    assert not (new / "docsidecar.lock").exists()

    result = move_data(old, new)  # the same command again
    assert result.new == new
    assert content(new) == want
    preflight(new)
    assert husk(old) == {"MOVED.json", "docsidecar.lock"}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".new.moving-")]
    assert leftovers == []  # no staging directory left behind


def test_a_rerun_to_another_target_discards_the_unswitched_copy(tmp_path: Path) -> None:
    old = make_data_dir(tmp_path / "old", documents=1)
    want = content(old)
    killed_at(old, tmp_path / "first", "renamed")
    assert (tmp_path / "first").exists()
    move_data(old, tmp_path / "second")
    assert not (tmp_path / "first").exists()  # carried the aborted move's id: removed
    assert content(tmp_path / "second") == want
