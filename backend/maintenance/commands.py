"""The ``doctor`` and ``move-data`` commands of ``docsidecar`` (registered in backend/cli.py).

``doctor`` talks to a running sidecar (``POST /v1/doctor``) when there is one, and otherwise
runs in this process under the data dir's instance lock with only the store started (no model,
no watcher). ``move-data`` never runs next to a sidecar: it takes the lock itself.

Exit codes: 0 = healthy or repaired / moved; 1 = problems remain / the move failed; 2 = bad
usage or a data dir that cannot be used (moved away, no database); 3 = a sidecar holds the lock
but cannot be reached (doctor) or is running (move-data).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

from backend.errors import SidecarError
from backend.settings import Settings

DB_FILE = "docsidecar.db"
LOCK_FILE = "docsidecar.lock"


# -- doctor ---------------------------------------------------------------------------------------
def configure_doctor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-only", action="store_true", help="report problems, change nothing")
    parser.add_argument("--quick", action="store_true", help="PRAGMA quick_check instead of the full integrity_check")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from backend.cli_client import running_client

    client = running_client(settings.data_dir)
    try:
        report = _doctor_http(client, args) if client is not None else _doctor_local(settings.data_dir, args)
    except _Exit as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return exc.code
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if report["ok"] else 1


class _Exit(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _doctor_http(client: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    params = {"check_only": str(bool(args.check_only)).lower(), "quick": str(bool(args.quick)).lower()}
    r = client.post("/v1/doctor", params=params, timeout=httpx.Timeout(30, read=None))
    if r.status_code != 200:
        raise _Exit(r.json().get("message", r.text), 1)
    report: dict[str, Any] = r.json()
    return report


def _doctor_local(data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from backend.ingest.blobs import BlobStore
    from backend.maintenance.datadir import check_not_moved
    from backend.maintenance.doctor import Doctor
    from backend.osdeps.filelock import InstanceLock, LockHeld
    from backend.store import Store

    check_not_moved(data_dir)
    if not (data_dir / DB_FILE).is_file():
        raise _Exit(f"no docsidecar database in {data_dir} (wrong --data-dir?)", 2)
    lock = InstanceLock(data_dir / LOCK_FILE)
    try:
        lock.acquire()
    except LockHeld:
        raise _Exit(
            f"a sidecar is running on {data_dir} but cannot be reached (no instance.json or token file); "
            "stop it, or run doctor through its API (POST /v1/doctor)",
            3,
        ) from None
    try:
        store = Store(data_dir)
        try:
            store.start()
        except Exception as exc:
            raise _Exit(
                f"the database in {data_dir} cannot be opened ({exc}); the canonical tables are damaged: "
                "restore the data dir from a backup",
                1,
            ) from exc
        try:
            doctor = Doctor(store, BlobStore(data_dir / "blobs").exists)
            report = doctor.run(repair=not args.check_only, quick=args.quick)
        finally:
            store.stop()
    finally:
        lock.release()
    return report


def print_report(report: dict[str, Any], out: TextIO = sys.stderr) -> None:
    repaired = {r["action"] for r in report["repaired"]}
    remaining = {(f["check"], f["target"], f["message"]) for f in report["remaining"]}
    for f in report["problems_found"]:
        key = (f["check"], f["target"], f["message"])
        mark = "remaining" if key in remaining else "repaired" if f["repair"] in repaired else "found"
        print(f"  [{mark}] {f['check']}: {f['message']}", file=out)
    for f in report["remaining"]:
        if (f["check"], f["target"], f["message"]) not in {
            (p["check"], p["target"], p["message"]) for p in report["problems_found"]
        }:
            print(f"  [remaining] {f['check']}: {f['message']}", file=out)
    for failure in report.get("repair_failed") or []:
        print(f"  [repair failed] {failure['action']}: {failure['error']}", file=out)
    print(f"doctor: {report['summary']} ({report['duration_s']} s)", file=out)


# -- move-data ------------------------------------------------------------------------------------
def configure_move(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("new_dir", metavar="NEW_DIR", help="the new data dir (must not exist, or be empty)")


def run_move(args: argparse.Namespace, settings: Settings) -> int:
    from backend.maintenance.move_data import SidecarRunning, move_data

    old, new = settings.data_dir, Path(args.new_dir).expanduser()
    print(f"moving {old} to {new} …", file=sys.stderr)
    try:
        result = move_data(old, new)
    except SidecarRunning as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 3
    except SidecarError as exc:
        print(f"docsidecar: {exc.message}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
    except OSError as exc:
        from backend.maintenance.datadir import MOVED_FILE

        if (old / MOVED_FILE).exists():
            print(f"docsidecar: the data dir is now {new}, but cleaning up {old} stopped ({exc}); "
                  "run the same command again to finish", file=sys.stderr)  # fmt: skip
        else:
            print(f"docsidecar: the move stopped ({exc}); {old} is unchanged and still in use. "
                  "Run the same command again once the cause is fixed.", file=sys.stderr)  # fmt: skip
        return 1
    if result.resumed:
        print(f"finished the earlier move: the data dir is {result.new}", file=sys.stderr)
    else:
        print(f"moved {result.files} files ({result.bytes} bytes): the data dir is now {result.new}", file=sys.stderr)
    print("start docsidecar with --data-dir (or DOCSIDECAR_DATA_DIR) set to the new directory", file=sys.stderr)
    print(json.dumps({"event": "moved", "data_dir": str(result.new), "from": str(result.old)}))
    return 0
