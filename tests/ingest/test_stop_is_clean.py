"""Stopping the services after ingest and watching leaves no thread, open file, inotify watch
or extraction child process behind (house rule: threads start in start() and join in stop())."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

from backend.ingest.service import check_scope
from backend.services import Services
from tests.ingest.harness import make_settings


def test_stop_joins_every_thread_and_child(tmp_path: Path) -> None:
    watched = tmp_path / "w"
    watched.mkdir()
    (watched / "a.txt").write_text("a watched file")
    single = tmp_path / "b.md"
    single.write_text("# B\n\nindexed by path")
    proc = psutil.Process()
    threads_before = {t.ident for t in threading.enumerate()}
    files_before = {f.path for f in proc.open_files()}
    children_before = {c.pid for c in proc.children(recursive=True)}

    services = Services(make_settings(tmp_path / "data"))
    services.start()
    services.watcher.add_folder(str(watched), check_scope(None), True, None, ())
    services.ingest.add_path(str(single), check_scope(None), ())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with services.store.read() as conn:
            states = {s for (s,) in conn.execute("SELECT status FROM documents")}
            n = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        if n == 2 and states == {"embedded"}:
            break
        time.sleep(0.05)
    assert (n, states) == (2, {"embedded"})
    assert {c.pid for c in proc.children(recursive=True)} - children_before, "extraction runs in a child"
    services.stop()

    assert {t.ident for t in threading.enumerate()} <= threads_before, [t.name for t in threading.enumerate()]
    assert {f.path for f in proc.open_files()} - files_before == set()
    left = [c.cmdline() for c in proc.children(recursive=True) if c.pid not in children_before]
    # multiprocessing's resource tracker lives as long as this interpreter (it exits with us)
    assert [c for c in left if "multiprocessing.resource_tracker" not in " ".join(c)] == []
