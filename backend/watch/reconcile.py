"""Comparing a folder with the index (pure planning; the service applies the plan).

For the files in question (a whole folder at start-up or when it is added, or the dirty
paths of a coalesced event batch):

* on disk but not indexed → **add** (or a **move**, see below);
* indexed but not on disk → **remove** (or a move);
* on both, size or mtime differ → **changed**: re-ingest, and the pipeline compares the
  sha256 before extracting, so an mtime-only touch (cloud-sync clients) re-embeds nothing;
* a removed document and an added file with the same size and the same sha256 → **move**:
  only the path is updated, nothing is re-extracted or re-embedded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.watch.scan import FileInfo


@dataclass(frozen=True, slots=True)
class Indexed:
    doc_id: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None


@dataclass
class Plan:
    add: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # document ids
    removed: list[str] = field(default_factory=list)  # document ids
    moves: list[tuple[str, str]] = field(default_factory=list)  # (document id, new path)

    def __bool__(self) -> bool:
        return bool(self.add or self.changed or self.removed or self.moves)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.add),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "moved": len(self.moves),
        }


def plan(indexed: dict[str, Indexed], scanned: dict[str, FileInfo]) -> Plan:
    """Differences between ``indexed`` (path → row) and ``scanned`` (path → size/mtime)."""
    result = Plan()
    for path, info in scanned.items():
        row = indexed.get(path)
        if row is None:
            result.add.append(path)
        elif row.size != info.size or row.mtime_ns != info.mtime_ns:
            result.changed.append(row.doc_id)
    missing = [row for path, row in indexed.items() if path not in scanned]
    result.removed = [row.doc_id for row in missing]
    result.add.sort()
    return result


def match_moves(
    result: Plan,
    indexed: dict[str, Indexed],
    sizes: dict[str, int],
    sha256_of: Callable[[str], str | None],
) -> Plan:
    """Turn (removed, added) pairs with identical content into moves.

    Only added files whose size equals a removed document's size are hashed, so a scan of a
    folder with thousands of new files does not hash them all here (the pipeline will).
    """
    removed_by_size: dict[int, list[Indexed]] = defaultdict(list)
    for row in indexed.values():
        if row.doc_id in result.removed and row.sha256 and row.size is not None:
            removed_by_size[row.size].append(row)
    if not removed_by_size:
        return result
    still_added = []
    moved_ids: set[str] = set()
    for path in result.add:
        candidates = [r for r in removed_by_size.get(sizes.get(path, -1), []) if r.doc_id not in moved_ids]
        digest = sha256_of(path) if candidates else None
        match = next((r for r in candidates if r.sha256 == digest), None) if digest else None
        if match is None:
            still_added.append(path)
        else:
            moved_ids.add(match.doc_id)
            result.moves.append((match.doc_id, path))
    result.add = still_added
    result.removed = [d for d in result.removed if d not in moved_ids]
    return result
