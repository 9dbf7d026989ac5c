"""A data dir the sidecar cannot write is refused at start, with the handshake error line and
exit code 2 (README "Lifecycle"), instead of failing later on the first write. Made read-only
for real — a read-only bind mount in a private mount namespace (tests/ops/namespace.py), which
binds root too — not by faking errors."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from backend.store import Store
from tests.ops.namespace import require_mount_namespace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefix() -> tuple[str, ...]:
    return require_mount_namespace()


def existing_data_dir(path: Path) -> Path:
    store = Store(path)
    store.start()
    store.stop()
    (path / "logs").mkdir()
    return path


def serve_after(prefix: tuple[str, ...], setup: str, data_dir: Path) -> tuple[dict[str, object], int]:
    """Run ``setup`` (mounts) then ``docsidecar serve`` in one private mount namespace."""
    serve = shlex.join([sys.executable, "-m", "backend", "--data-dir", str(data_dir), "serve"])
    run = subprocess.run(
        [*prefix, "sh", "-c", f"set -e; {setup}; exec {serve}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, (run.stdout, run.stderr[-2000:])
    return json.loads(lines[0]), run.returncode


def test_read_only_data_dir_is_refused_at_start(prefix: tuple[str, ...], tmp_path: Path) -> None:
    data = existing_data_dir(tmp_path / "data")
    d = shlex.quote(str(data))
    event, code = serve_after(prefix, f"mount --bind {d} {d}; mount -o remount,bind,ro {d}", data)
    assert code == 2
    assert event["event"] == "error" and event["error"] == "data_dir_read_only", event
    assert str(data) in str(event["message"]) and "Read-only file system" in str(event["message"])
    assert event["detail"] == {"path": str(data), "errno": "EROFS"}
    assert not (data / "instance.json").exists()


def test_read_only_database_file_is_refused_at_start(prefix: tuple[str, ...], tmp_path: Path) -> None:
    data = existing_data_dir(tmp_path / "data")
    db = shlex.quote(str(data / "docsidecar.db"))
    event, code = serve_after(prefix, f"mount --bind {db} {db}; mount -o remount,bind,ro {db}", data)
    assert code == 2 and event["error"] == "data_dir_read_only", event
    assert event["detail"] == {"path": str(data / "docsidecar.db"), "errno": "EROFS"}
    assert "--data-dir" in str(event["message"])  # says what to do


def test_a_new_data_dir_under_a_read_only_parent_is_refused(prefix: tuple[str, ...], tmp_path: Path) -> None:
    parent = tmp_path / "readonly-parent"
    parent.mkdir()
    p = shlex.quote(str(parent))
    event, code = serve_after(prefix, f"mount --bind {p} {p}; mount -o remount,bind,ro {p}", parent / "data")
    assert code == 2 and event["error"] == "data_dir_unusable", event
    assert "Read-only file system" in str(event["message"])
