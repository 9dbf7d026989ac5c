"""A watched folder of 10k+ files: one OS watch per directory (not per file), bounded memory,
changes still detected; and the fallback when the folder needs more watches than the budget
(``watch_max_dirs``): the folder is scanned periodically instead, and says so.

Ingest is paused so the test measures watching and reconciling, not embedding 10k files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from tests.ingest.harness import make_settings, running_app, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DIRS, PER_DIR = 102, 100  # 10,200 files


def inotify_watches() -> int:
    """inotify watches held by this process (Linux: one ``inotify wd:`` line per watch)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                total += sum(line.startswith("inotify wd:") for line in info)
        except OSError:
            continue
    return total


def make_tree(root: Path) -> None:
    for d in range(DIRS):
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True)
        for f in range(PER_DIR):
            (sub / f"n{f:03d}.txt").write_text(f"note {d}-{f}")


async def count_docs(client, folder_id: int) -> int:  # type: ignore[no-untyped-def]
    total, cursor = 0, None
    while True:
        params = {"folder_id": folder_id, "limit": 500} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/documents", params=params)).json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


def model_ready(client):  # type: ignore[no-untyped-def]
    async def ready() -> bool:
        return (await client.get("/v1/status")).json()["components"]["embedding"]["state"] == "ready"

    return ready


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify accounting is Linux-only")
async def test_ten_thousand_files_cost_one_watch_per_directory(tmp_path: Path) -> None:
    root = (tmp_path / "big").resolve()
    make_tree(root)
    process = psutil.Process()
    async with running_app(make_settings(tmp_path / "data")) as (client, _):
        await client.post("/v1/ingest/pause")
        await wait_for(model_ready(client), 60, "the model")  # its memory is not the watcher's
        baseline_rss, baseline_watches = process.memory_info().rss, inotify_watches()
        folder = (await client.post("/v1/folders", json={"path": str(root)})).json()

        async def all_registered() -> bool:
            return await count_docs(client, folder["id"]) == DIRS * PER_DIR

        await wait_for(all_registered, 120, "10,200 documents")
        state = (await client.get("/v1/folders")).json()["items"][0]
        assert state["mode"] == "watching" and state["directories"] == DIRS + 1
        assert inotify_watches() - baseline_watches == DIRS + 1  # not one per file
        grown = (process.memory_info().rss - baseline_rss) / 2**20
        assert grown < 200, f"RSS grew by {grown:.0f} MiB for 10k files"

        # still watching: a new file and a deleted one are seen through events, not a rescan
        (root / "d050" / "new.txt").write_text("added after the scan")
        (root / "d007" / "n001.txt").unlink()

        async def changed() -> bool:
            names = {d["filename"] for d in (await client.get("/v1/documents", params={"limit": 5})).json()["items"]}
            return "new.txt" in names and await count_docs(client, folder["id"]) == DIRS * PER_DIR

        await wait_for(changed, 30, "the new file and the deletion")
        assert (await client.get("/v1/ingest")).json()["queued"] == DIRS * PER_DIR


async def test_folder_over_the_watch_budget_falls_back_to_periodic_scans(tmp_path: Path) -> None:
    root = (tmp_path / "tree").resolve()
    for d in range(12):
        (root / f"sub{d}").mkdir(parents=True)
        (root / f"sub{d}" / "a.txt").write_text(f"file in sub {d}")
    settings = make_settings(tmp_path / "data", watch_max_dirs=5, watch_poll_interval_s=1.0)
    async with running_app(settings) as (client, _):
        await client.post("/v1/ingest/pause")
        watches = inotify_watches() if sys.platform.startswith("linux") else 0
        folder = (await client.post("/v1/folders", json={"path": str(root)})).json()

        async def polling() -> bool:
            items = (await client.get("/v1/folders")).json()["items"]
            return items[0]["mode"] == "polling" and await count_docs(client, folder["id"]) == 12

        await wait_for(polling, 30, "the folder to be scanned in polling mode")
        state = (await client.get("/v1/folders")).json()["items"][0]
        assert "watch budget" in state["error"] and "scanning every 1 s" in state["error"]
        status = (await client.get("/v1/status")).json()["components"]["watcher"]
        assert status["state"] == "degraded" and status["detail"]["polling"] == 1
        if sys.platform.startswith("linux"):
            assert inotify_watches() == watches, "a polled folder must not hold OS watches"

        # changes are still picked up, by the periodic scan
        (root / "sub3" / "b.txt").write_text("new while polling")
        (root / "sub4" / "a.txt").unlink()

        async def rescanned() -> bool:
            names = sorted(
                (d["path"] or "")[len(str(root)) + 1 :]
                for d in (await client.get("/v1/documents", params={"folder_id": folder["id"], "limit": 50})).json()[
                    "items"
                ]
            )
            return "sub3/b.txt" in names and "sub4/a.txt" not in names and len(names) == 12

        await wait_for(rescanned, 30, "the periodic scan to see the changes")
