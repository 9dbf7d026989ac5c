"""``docsidecar move-data NEW_DIR``: relocate the data dir, safe against interruption.

Steps (each durable before the next; ``checkpoint(step)`` is called after each one):

1. take the old dir's instance lock (refused while a sidecar runs there), refuse a target
   inside the old dir or one that exists and is not empty, and one without room for a copy;
2. write the intent ``<old>/move-data.json`` (id, target) — ``intent``;
3. fold the WAL into the database (``wal_checkpoint(TRUNCATE)``) and copy every file into a
   staging dir next to the target (``.<name>.moving-<id>``), fsyncing each — ``copy:<path>``
   after each file, then ``copied`` once the staging dir carries ``.move-incomplete``;
4. verify: same files, sizes and sha256 as the old dir, and ``PRAGMA quick_check`` of the copied
   database on a fresh connection — ``verified``;
5. rename the staging dir to the target (atomic on one file system) — ``renamed``;
6. **the switch**: write ``<old>/MOVED.json`` (``moved_to``) atomically — ``switched``. Before it
   the old dir is authoritative (the target carries ``.move-incomplete``, so nothing starts on
   it); after it the new dir is, and the old dir refuses to start (:mod:`.datadir`);
7. remove ``.move-incomplete`` from the target — ``unmarked``; empty the old dir except
   ``MOVED.json`` and the lock file, and drop the intent — ``cleaned``.

A crash before the switch leaves the old dir as it was; running the command again discards the
staging dir or the unswitched target (both marked with the intent's id) and starts over. A
crash after the switch is finished by running the same command again. The lock file and
``instance.json`` are not copied (the new dir gets its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw

from backend.errors import Conflict, SidecarError, ValidationFailed
from backend.maintenance.datadir import INCOMPLETE_FILE, MOVED_FILE, DataDirMoved, read_json
from backend.maintenance.diskspace import RESERVE_FILE, DiskFull, free_bytes
from backend.osdeps.filelock import InstanceLock, LockHeld
from backend.osdeps.paths import fsync_dir, write_private_file
from backend.store.connection import open_connection

INTENT_FILE = "move-data.json"
LOCK_FILE = "docsidecar.lock"  # backend.server.LOCK_FILENAME (not imported: server pulls in uvicorn)
NOT_COPIED = frozenset({LOCK_FILE, "instance.json", INTENT_FILE, MOVED_FILE, "docsidecar.db-shm", RESERVE_FILE})
DB_FILE = "docsidecar.db"

Checkpoint = Callable[[str], None]


class SidecarRunning(Conflict):
    """A sidecar holds the data dir's lock."""

    code = "already_running"


class MoveRefused(ValidationFailed):
    """The target cannot receive the data dir."""

    code = "move_refused"


class MoveVerifyFailed(SidecarError):
    """The copy differs from the original; nothing was switched."""

    code = "move_verify_failed"


@dataclass(frozen=True, slots=True)
class MoveResult:
    old: Path
    new: Path
    files: int
    bytes: int
    resumed: bool


def _noop(_: str) -> None:
    return None


def move_data(old: Path, new: Path, *, checkpoint: Checkpoint = _noop) -> MoveResult:
    """Move the data dir ``old`` to ``new`` (see the module doc); returns what was moved."""
    old, new = Path(os.path.abspath(old)), Path(os.path.abspath(new))
    if not old.is_dir():
        raise MoveRefused(f"there is no data dir at {old}", detail={"path": str(old)})
    lock = InstanceLock(old / LOCK_FILE)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise SidecarRunning(
            f"a docsidecar is running on {old}; stop it (quit the app) before moving its data dir",
            detail={"data_dir": str(old)},
        ) from exc
    try:
        moved = read_json(old / MOVED_FILE)
        if moved is not None:
            target = Path(str(moved.get("moved_to")))
            if target != new:
                raise DataDirMoved(f"{old} was already moved to {target}", detail={"moved_to": str(target)})
            _finish(old, new, str(moved.get("id")), checkpoint)
            return MoveResult(old, new, 0, 0, resumed=True)
        intent = read_json(old / INTENT_FILE)
        if intent is not None:
            _discard(old, intent)
        return _move(old, new, checkpoint)
    finally:
        lock.release()


# -- the steps ------------------------------------------------------------------------------------
def _move(old: Path, new: Path, checkpoint: Checkpoint) -> MoveResult:
    _check_target(old, new)
    move_id = uuid.uuid4().hex
    _write_json(old / INTENT_FILE, {"id": move_id, "target": str(new), "started_at": time.time()})
    checkpoint("intent")
    _fold_wal(old / DB_FILE)
    staging = _staging_dir(new, move_id)
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir(mode=0o700)
    count = size = 0
    for rel in _files(old):
        size += _copy_file(old / rel, staging / rel)
        count += 1
        checkpoint(f"copy:{rel.as_posix()}")
    _write_marker(staging, move_id)
    for directory in sorted({(staging / rel).parent for rel in _files(old)} | {staging}, reverse=True):
        fsync_dir(directory)
    checkpoint("copied")
    _verify(old, staging)
    checkpoint("verified")
    if new.exists():  # an empty directory, or the husk of an earlier move from here (checked above)
        for leftover in (MOVED_FILE, LOCK_FILE):
            (new / leftover).unlink(missing_ok=True)
        new.rmdir()
    new.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, new)
    fsync_dir(new.parent)
    checkpoint("renamed")
    _write_json(old / MOVED_FILE, {"id": move_id, "moved_to": str(new), "moved_at": time.time()})
    checkpoint("switched")
    _finish(old, new, move_id, checkpoint)
    return MoveResult(old, new, count, size, resumed=False)


def _finish(old: Path, new: Path, move_id: str, checkpoint: Checkpoint) -> None:
    """After the switch: unmark the new dir, empty the old one (idempotent)."""
    marker = new / INCOMPLETE_FILE
    if marker.exists() and marker.read_text(encoding="utf-8").strip() == move_id:
        marker.unlink()
        fsync_dir(new)
    checkpoint("unmarked")
    for entry in sorted(old.iterdir()):
        if entry.name in {MOVED_FILE, LOCK_FILE, INTENT_FILE}:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (old / INTENT_FILE).unlink(missing_ok=True)
    fsync_dir(old)
    checkpoint("cleaned")


def _discard(old: Path, intent: dict[str, object]) -> None:
    """An earlier move stopped before its switch: the old dir is authoritative; remove what it
    left (only directories carrying its id) and its intent."""
    move_id, target = str(intent.get("id")), Path(str(intent.get("target")))
    for candidate in (_staging_dir(target, move_id), target):
        marker = candidate / INCOMPLETE_FILE
        ours = candidate == _staging_dir(target, move_id) or (
            marker.is_file() and marker.read_text(encoding="utf-8").strip() == move_id
        )
        if candidate.is_dir() and ours:
            shutil.rmtree(candidate)
    if target.parent.is_dir():
        fsync_dir(target.parent)
    (old / INTENT_FILE).unlink(missing_ok=True)
    fsync_dir(old)


def _check_target(old: Path, new: Path) -> None:
    real_old, real_new = old.resolve(), new.resolve()
    if real_new == real_old or real_old in real_new.parents or real_new in real_old.parents:
        raise MoveRefused(
            f"the new data dir {new} must be outside {old} (and not contain it)",
            detail={"old": str(old), "new": str(new)},
        )
    if new.exists() and (not new.is_dir() or (any(new.iterdir()) and not _moved_from(new, old))):
        raise MoveRefused(f"{new} exists and is not an empty directory", detail={"path": str(new)})
    needed = sum((old / rel).stat().st_size for rel in _files(old))
    available = free_bytes(new)
    if needed > available:
        raise DiskFull(
            f"not enough space for the copy: {needed} bytes needed, {available} free where {new} would be",
            detail={"needed": needed, "free": available},
        )


# -- helpers --------------------------------------------------------------------------------------
def _moved_from(target: Path, old: Path) -> bool:
    """``target`` is what an earlier ``move-data`` left behind when it moved it to ``old``
    (only ``MOVED.json`` pointing at ``old``, and a lock file): moving back is allowed."""
    names = {e.name for e in target.iterdir()}
    moved = read_json(target / MOVED_FILE)
    pointed = moved is not None and Path(str(moved.get("moved_to"))) == old
    return pointed and names <= {MOVED_FILE, LOCK_FILE}


def _staging_dir(new: Path, move_id: str) -> Path:
    return new.parent / f".{new.name}.moving-{move_id}"


def _files(root: Path) -> Iterator[Path]:
    """Relative paths of the files to copy, sorted (directories are created on the way)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath).relative_to(root)
        for name in filenames:
            rel = base / name
            if rel.parts[0] not in NOT_COPIED:
                found.append(rel)
    yield from sorted(found)


def _copy_file(src: Path, dst: Path) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return 0
    shutil.copy2(src, dst)
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())
    return dst.stat().st_size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verify(old: Path, staging: Path) -> None:
    want = list(_files(old))
    got = [p for p in _files(staging) if p.name != INCOMPLETE_FILE]
    if want != got:
        raise MoveVerifyFailed(
            "the copy does not hold the same files as the data dir",
            detail={
                "missing": [str(p) for p in set(want) - set(got)][:20],
                "extra": [str(p) for p in set(got) - set(want)][:20],
            },
        )
    for rel in want:
        a, b = old / rel, staging / rel
        if a.is_symlink():
            continue
        if a.stat().st_size != b.stat().st_size or _sha256(a) != _sha256(b):
            raise MoveVerifyFailed(f"the copy of {rel} differs from the original", detail={"file": str(rel)})
    if (staging / DB_FILE).exists():
        conn = open_connection(staging / DB_FILE, readonly=True)
        try:
            result = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
        if result != ["ok"]:
            raise MoveVerifyFailed(
                f"the copied database fails quick_check: {result[:3]}", detail={"check": result[:20]}
            )


def _fold_wal(db: Path) -> None:
    """Bring everything committed into the database file itself (the WAL is then empty)."""
    if not db.exists():
        return
    conn = open_connection(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except apsw.Error as exc:
        raise MoveVerifyFailed(f"cannot checkpoint {db}: {exc}") from exc
    finally:
        conn.close()


def _write_marker(staging: Path, move_id: str) -> None:
    write_private_file(staging / INCOMPLETE_FILE, move_id.encode())


def _write_json(path: Path, data: dict[str, object]) -> None:
    write_private_file(path, json.dumps(data).encode())
