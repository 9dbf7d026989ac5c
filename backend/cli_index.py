"""``docsidecar index PATH…``: queue files/folders, draw a progress bar, print a summary.

With a sidecar running on the data dir the command talks to it over HTTP (so the running
app sees the new documents at once); otherwise it starts the services in-process, indexes,
and stops them. Folders are expanded with the watcher's rules (supported types, no hidden or
temporary files); ``--watch`` registers them as watched folders instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import httpx

from backend.cli_client import running_client
from backend.errors import SidecarError
from backend.settings import Settings
from backend.watch.scan import Rules, walk

TERMINAL = {"done", "failed", "cancelled"}


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
    for raw in missing:
        print(f"docsidecar: no such file or folder: {raw}", file=sys.stderr)
    client = running_client(settings.data_dir)
    try:
        if client is not None:
            with client:
                return _via_http(client, args, files, folders) or (1 if missing else 0)
        return _in_process(settings, args, files, folders) or (1 if missing else 0)
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 1


def _targets(args: argparse.Namespace, files: list[Path], folders: list[Path]) -> list[Path]:
    targets = list(files)
    if not args.watch:
        for folder in folders:
            targets += folder_files(folder)
    return targets


def _via_http(client: httpx.Client, args: argparse.Namespace, files: list[Path], folders: list[Path]) -> int:
    job_ids: set[int] = set()
    errors: list[str] = []
    for path in _targets(args, files, folders):
        r = client.post("/v1/documents", json={"path": str(path), "scope": args.scope, "tags": args.tag})
        if r.status_code == 202:
            job_ids.add(int(r.json()["job_id"]))
        else:
            errors.append(f"{path}: {r.json().get('message', r.text)}")
    if args.watch:
        for folder in folders:
            r = client.post("/v1/folders", json={"path": str(folder), "scope": args.scope})
            if r.status_code != 201:
                errors.append(f"{folder}: {r.json().get('message', r.text)}")
            else:
                print(f"watching {folder}", file=sys.stderr)
    for e in errors:
        print(f"docsidecar: {e}", file=sys.stderr)
    if args.no_wait or not job_ids:
        return 1 if errors else 0
    outcomes = _follow_http(client, job_ids)
    return _summary(outcomes, errors)


def _follow_http(client: httpx.Client, job_ids: set[int]) -> Counter[str]:
    bar = ProgressBar(len(job_ids))
    outcomes: Counter[str] = Counter()
    pending = set(job_ids)
    for job_id in list(pending):  # some may have finished before we subscribed
        state = client.get(f"/v1/jobs/{job_id}").json()["state"]
        if state in TERMINAL:
            outcomes[state] += 1
            pending.discard(job_id)
    with client.stream("GET", "/v1/events", timeout=httpx.Timeout(30, read=None)) as stream:
        event = None
        for line in stream.iter_lines():
            if not pending:
                break
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in {"job.done", "job.failed", "job.cancelled"}:
                data = json.loads(line[5:])
                if data.get("job_id") in pending:
                    pending.discard(data["job_id"])
                    outcomes[event.split(".")[1]] += 1
            bar.update(len(job_ids) - len(pending))
    bar.update(len(job_ids), force=True)
    bar.close()
    return outcomes


def _in_process(settings: Settings, args: argparse.Namespace, files: list[Path], folders: list[Path]) -> int:
    from backend.ingest.service import check_scope, check_tags
    from backend.services import Services
    from backend.store import jobs as job_repo

    services = Services(settings)
    services.start()
    try:
        scope, tags = check_scope(args.scope), check_tags(args.tag)
        job_ids: list[int] = []
        errors: list[str] = []
        for path in _targets(args, files, folders):
            try:
                _, job = services.ingest.add_path(str(path), scope, tags)
                job_ids.append(job.id)
            except SidecarError as exc:
                errors.append(f"{path}: {exc.message}")
        if args.watch:
            for folder in folders:
                services.watcher.add_folder(str(folder), scope, True, None, ())
                print(f"watching {folder} (effective while a sidecar runs on this data dir)", file=sys.stderr)
        for e in errors:
            print(f"docsidecar: {e}", file=sys.stderr)
        if args.no_wait:
            print("queued; the work continues the next time the sidecar runs", file=sys.stderr)
            return 1 if errors else 0
        bar = ProgressBar(len(job_ids))
        while True:
            with services.store.read() as conn:
                states = _states(conn, job_ids, job_repo)
            finished = sum(states.get(s, 0) for s in TERMINAL)
            current = services.ingest.worker.current_job
            bar.update(finished, current.payload.get("path", "") if current else "")
            if finished >= len(job_ids):
                break
            time.sleep(0.2)
        bar.update(len(job_ids), force=True)
        bar.close()
        return _summary(Counter({s: n for s, n in states.items() if s in TERMINAL}), errors)
    finally:
        services.stop()


def _states(conn: Any, job_ids: list[int], job_repo: Any) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for start in range(0, len(job_ids), 500):
        part = job_ids[start : start + 500]
        marks = ",".join("?" * len(part))
        for state, n in conn.execute(f"SELECT state, count(*) FROM jobs WHERE id IN ({marks}) GROUP BY state", part):  # noqa: S608
            counts[str(state)] += int(n)
    return dict(counts)


def _summary(outcomes: Counter[str], errors: list[str]) -> int:
    total = sum(outcomes.values())
    print(
        f"indexed {outcomes.get('done', 0)}/{total} files"
        + (f", {outcomes['failed']} failed" if outcomes.get("failed") else "")
        + (f", {outcomes['cancelled']} cancelled" if outcomes.get("cancelled") else "")
        + (f", {len(errors)} refused" if errors else ""),
        file=sys.stderr,
    )
    print("run `docsidecar status` or GET /v1/coverage for per-file reasons", file=sys.stderr)
    return 0 if not errors and not outcomes.get("failed") else 1
