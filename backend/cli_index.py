"""``docsidecar index PATH…``: queue files/folders, draw a progress bar, print a summary.

With a sidecar running on the data dir the command talks to it over HTTP (so the running
app sees the new documents at once); otherwise it takes the data dir's instance lock, starts
the services in-process, indexes, and stops them. Folders are expanded with the watcher's rules
(supported types, no hidden or temporary files); ``--watch`` registers them as watched folders.

The summary counts documents by their final state, not jobs: a job can finish ``done`` for a
scanned PDF that is ``no_text``. Exit code 0 when every file is indexed or skipped with a
reason, 1 when a file failed or was refused, 3 when the data dir is locked by a sidecar that
cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import httpx

from backend.cli_client import running_client
from backend.errors import SidecarError
from backend.settings import Settings
from backend.watch.scan import Rules, walk

TERMINAL = {"done", "failed", "cancelled"}
INDEXED = {"embedded", "synced"}
SHOW_PROBLEMS = 20


class ProgressBar:
    """A one-line progress bar on a TTY, a line every few seconds otherwise."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = total
        self.out = out
        self.start = time.monotonic()
        self._last = 0.0
        self.tty = out.isatty()

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else None
        width = 30
        filled = int(width * done / self.total) if self.total else width
        line = (
            f"[{'#' * filled}{'-' * (width - filled)}] {done}/{self.total} files  "
            f"{rate:.1f}/s  ETA {'-' if eta is None else f'{eta:.0f}s'}  {note}"
        )[:160]
        self.out.write(("\r" + line.ljust(100)) if self.tty else line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


def expand(paths: Iterable[str]) -> tuple[list[Path], list[Path], list[str]]:
    """(files, folders, missing) from the command-line paths."""
    files, folders, missing = [], [], []
    for raw in paths:
        p = Path(raw).expanduser().absolute()
        if p.is_dir():
            folders.append(p)
        elif p.is_file():
            files.append(p)
        else:
            missing.append(raw)
    return files, folders, missing


def folder_files(folder: Path) -> list[Path]:
    return sorted(Path(p) for p, _ in walk(Rules(folder)))


def run_index(args: argparse.Namespace, settings: Settings) -> int:
    files, folders, missing = expand(args.paths)
    refused = [f"{raw}: no such file or folder" for raw in missing]
    client = running_client(settings.data_dir)
    try:
        if client is not None:
            return _via_http(client, args, files, folders, refused)
        return _in_process(settings, args, files, folders, refused)
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()


def _targets(args: argparse.Namespace, files: list[Path], folders: list[Path]) -> list[Path]:
    targets = list(files)
    if not args.watch:
        for folder in folders:
            targets += folder_files(folder)
    return targets


# -- through a running sidecar --------------------------------------------------------------
def _via_http(
    client: httpx.Client, args: argparse.Namespace, files: list[Path], folders: list[Path], refused: list[str]
) -> int:
    jobs: dict[int, str] = {}  # job id → document id
    with client.stream("GET", "/v1/events", timeout=httpx.Timeout(30, read=None)) as stream:
        lines = stream.iter_lines()
        next(lines)  # subscribed before anything is queued: no event can be missed
        for path in _targets(args, files, folders):
            r = client.post("/v1/documents", json={"path": str(path), "scope": args.scope, "tags": args.tag})
            if r.status_code == 202:
                jobs[int(r.json()["job_id"])] = str(r.json()["document"]["id"])
            else:
                refused.append(f"{path}: {r.json().get('message', r.text)}")
        if args.watch:
            for folder in folders:
                r = client.post("/v1/folders", json={"path": str(folder), "scope": args.scope})
                if r.status_code != 201:
                    refused.append(f"{folder}: {r.json().get('message', r.text)}")
                else:
                    print(f"watching {folder}", file=sys.stderr)
        if not args.no_wait and jobs:
            _follow_http(client, lines, set(jobs))
    if args.no_wait:
        return _report_queued(len(jobs), refused)
    statuses = [client.get(f"/v1/documents/{doc_id}").json() for doc_id in jobs.values()]
    return summary(statuses, refused)


def _follow_http(client: httpx.Client, lines: Iterable[str], pending: set[int]) -> None:
    total = len(pending)
    bar = ProgressBar(total)

    def poll() -> None:  # catches jobs that ended before our subscription saw them
        for job_id in list(pending):
            if client.get(f"/v1/jobs/{job_id}").json()["state"] in TERMINAL:
                pending.discard(job_id)

    poll()
    event, note = None, ""
    for line in lines:
        if not pending:
            break
        if line.startswith(":"):  # keep-alive every 15 s: re-check, in case of a resync
            poll()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = json.loads(line[5:])
            if event in {"job.done", "job.failed", "job.cancelled"}:
                pending.discard(data.get("job_id", -1))
            elif event == "job.progress" and data.get("job_id") in pending:
                note = f"{data['stage']} {data['done']}/{data['total']}" if data.get("total") else data["stage"]
            elif event == "resync":
                poll()
        bar.update(total - len(pending), note)
    bar.update(total, force=True)
    bar.close()


# -- in this process -------------------------------------------------------------------------
def _in_process(
    settings: Settings, args: argparse.Namespace, files: list[Path], folders: list[Path], refused: list[str]
) -> int:
    from backend.ingest.service import check_scope, check_tags
    from backend.osdeps.filelock import InstanceLock, LockHeld
    from backend.osdeps.paths import ensure_private_dir
    from backend.server import LOCK_FILENAME
    from backend.services import Services

    ensure_private_dir(settings.data_dir)
    lock = InstanceLock(settings.data_dir / LOCK_FILENAME)
    try:
        lock.acquire()
    except LockHeld:
        print(
            f"docsidecar: a sidecar is running on {settings.data_dir} but cannot be reached "
            "(no token file: set DOCSIDECAR_TOKEN to its token)",
            file=sys.stderr,
        )
        return 3
    services = Services(settings)
    try:
        services.start()
        scope, tags = check_scope(args.scope), check_tags(args.tag)
        jobs: dict[int, str] = {}
        for path in _targets(args, files, folders):
            try:
                doc, job = services.ingest.add_path(str(path), scope, tags)
                jobs[job.id] = doc.id
            except SidecarError as exc:
                refused.append(f"{path}: {exc.message}")
        if args.watch:
            for folder in folders:
                services.watcher.add_folder(str(folder), scope, True, None, ())
                print(f"watching {folder} (effective while a sidecar runs on this data dir)", file=sys.stderr)
        if args.no_wait:
            print("queued; the work continues the next time the sidecar runs", file=sys.stderr)
            return _report_queued(len(jobs), refused)
        _follow_local(services, list(jobs))
        with services.store.read() as conn:
            from backend.store import documents as doc_repo

            statuses = [d.to_dict() for d in (doc_repo.get(conn, i) for i in jobs.values()) if d is not None]
        return summary(statuses, refused)
    finally:
        services.stop()
        lock.release()


def _follow_local(services: Any, job_ids: list[int]) -> None:
    from backend.store import jobs as job_repo

    bar = ProgressBar(len(job_ids))
    while True:
        with services.store.read() as conn:
            finished = _count_terminal(conn, job_ids)
            running = services.ingest.worker.current_job
            current = job_repo.get(conn, running.id) if running else None
        note = f"{current.progress_done}/{current.progress_total} chunks" if current and current.progress_total else ""
        bar.update(finished, note)
        if finished >= len(job_ids):
            break
        time.sleep(0.2)
    bar.update(len(job_ids), force=True)
    bar.close()


def _count_terminal(conn: Any, job_ids: list[int]) -> int:
    finished = 0
    for start in range(0, len(job_ids), 500):
        part = job_ids[start : start + 500]
        marks = ",".join("?" * len(part))
        sql = f"SELECT count(*) FROM jobs WHERE id IN ({marks}) AND state IN ('done', 'failed', 'cancelled')"  # noqa: S608
        finished += int(conn.execute(sql, part).fetchone()[0])
    return finished


# -- reporting -------------------------------------------------------------------------------
def _report_queued(queued: int, refused: list[str], out: TextIO = sys.stderr) -> int:
    for line in refused:
        print(f"docsidecar: {line}", file=out)
    print(f"queued {queued} files" + (f", {len(refused)} refused" if refused else ""), file=out)
    return 1 if refused else 0


def summary(documents: list[dict[str, Any]], refused: list[str], out: TextIO = sys.stderr) -> int:
    """Print what became of each file; the exit code (0 = nothing failed or was refused)."""
    groups: Counter[str] = Counter()
    problems: list[str] = []
    label: Callable[[dict[str, Any]], str] = lambda d: d.get("path") or d.get("filename") or d["id"]  # noqa: E731
    for d in documents:
        status = d["status"]
        if status in INDEXED:
            groups["indexed"] += 1
        elif status == "chunked":
            groups["keyword-only"] += 1
            problems.append(f"{label(d)}: keyword search only ({d.get('status_reason')})")
        elif status in {"unsupported", "no_text"}:
            groups["skipped"] += 1
            problems.append(f"{label(d)}: skipped, {d.get('status_reason')}")
        else:
            groups["failed"] += 1
            problems.append(f"{label(d)}: {status}, {d.get('status_reason')}")
    for line in [*refused, *problems][:SHOW_PROBLEMS]:
        print(f"  {line}", file=out)
    hidden = len(refused) + len(problems) - SHOW_PROBLEMS
    if hidden > 0:
        print(f"  … and {hidden} more (GET /v1/coverage lists the reasons)", file=out)
    parts = [f"indexed {groups['indexed']}/{len(documents) + len(refused)} files"]
    for name in ("keyword-only", "skipped", "failed"):
        if groups[name]:
            parts.append(f"{groups[name]} {name}")
    if refused:
        parts.append(f"{len(refused)} refused")
    print(", ".join(parts), file=out)
    return 1 if groups["failed"] or refused else 0
