"""Pure merge rules: what to do with a pulled version and with a push result.

The server decides last-writer-wins (``sync_push``); the client's job is to never lose the
losing side. Two rules cover every case:

* **Pull** never applies a remote version over local changes that are not pushed yet
  (outbox rows or dead letters): the next push meets the server's version as a concurrent
  edit and the push result decides.
* **Push result**: ``accepted`` with ``replaced`` (our version displaced a concurrent one from
  another device) → the displaced version becomes a conflicted copy; ``conflict`` (the
  server kept a concurrent version) → our version becomes a conflicted copy and the server's
  version is applied locally. A side that is a tombstone needs no copy (nothing to keep), a
  side equal to the winner in every synced field needs none either (both made the same edit),
  and a displaced version from this very device is an ancestor of what we pushed, not a
  concurrent edit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sync.versions import Version, version_of

SYNCED_FIELDS = ("sha256", "title", "filename", "scope", "mime")
"""Document fields whose difference makes two versions distinct for the user."""


class PullAction(StrEnum):
    SKIP_PENDING = "skip_pending"  # local changes not pushed yet: the push resolves it
    SKIP_SAME = "skip_same"  # we already have exactly this version
    SKIP_STALE = "skip_stale"  # older than what we have (LWW order)
    DELETE_LOCAL = "delete_local"  # a tombstone for a document we have
    RECORD_BASE = "record_base"  # a tombstone for a document we do not have
    APPLY_META = "apply_meta"  # same content, other metadata (rename, scope change)
    APPLY_CONTENT = "apply_content"  # new content: chunks (and embeddings) come with it


@dataclass(frozen=True, slots=True)
class LocalState:
    """What the pull decision needs to know about the local copy of one document."""

    exists: bool
    indexed_sha256: str | None
    chunk_count: int
    base: Version | None
    pending: bool


def decide_pull(remote: Mapping[str, Any], local: LocalState) -> PullAction:
    version = version_of(remote.get("hlc"), remote.get("origin_device"))
    if version is None:
        raise ValueError("a pulled document needs hlc and origin_device")
    if local.pending:
        return PullAction.SKIP_PENDING
    if local.base is not None:
        if version == local.base:
            return PullAction.SKIP_SAME
        if not version.newer_than(local.base):
            return PullAction.SKIP_STALE
    if remote.get("deleted"):
        return PullAction.DELETE_LOCAL if local.exists else PullAction.RECORD_BASE
    if local.exists and local.indexed_sha256 is not None and local.indexed_sha256 == remote.get("sha256"):
        return PullAction.APPLY_META
    return PullAction.APPLY_CONTENT


class PushResolution(StrEnum):
    DONE = "done"  # our version is current; nothing else to do
    COPY_REPLACED = "copy_replaced"  # ours won: keep the displaced version as a conflicted copy
    COPY_LOCAL = "copy_local"  # ours lost: keep ours as a copy, then apply the server's version
    TAKE_REMOTE = "take_remote"  # ours lost but there is nothing to keep: apply the server's
    DEAD_LETTER = "dead_letter"  # the server rejected the change as invalid


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal in every field the user sees (two devices made the same edit)."""
    if bool(a.get("deleted")) != bool(b.get("deleted")):
        return False
    return all((a.get(f) or None) == (b.get(f) or None) for f in SYNCED_FIELDS)


def decide_push(
    status: str,
    ours: Mapping[str, Any],
    my_device: str,
    current: Mapping[str, Any] | None,
    replaced: Mapping[str, Any] | None,
) -> PushResolution:
    """``ours`` is the document we pushed (with ``deleted``); ``current``/``replaced`` as the
    server's ``sync_push`` result reports them."""
    if status == "rejected":
        return PushResolution.DEAD_LETTER
    if status == "accepted":
        if replaced is None or replaced.get("deleted"):
            return PushResolution.DONE
        if replaced.get("origin_device") == my_device or same_content(replaced, ours):
            return PushResolution.DONE
        return PushResolution.COPY_REPLACED
    if status == "conflict":
        if current is None:
            raise ValueError("a conflict result must name the current version")
        if ours.get("deleted") or same_content(current, ours):
            return PushResolution.TAKE_REMOTE
        return PushResolution.COPY_LOCAL
    raise ValueError(f"unknown push status {status!r}")


def conflict_name(name: str, device_label: str, when: dt.datetime) -> str:
    """``report.pdf`` → ``report (conflicted copy 2025-01-31 1432 laptop).pdf``.

    The suffix goes before the last extension so the copy keeps opening with the same app."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    label = f" (conflicted copy {when.strftime('%Y-%m-%d %H%M')} {device_label})"
    return f"{stem}{label}.{ext}" if ext else f"{stem}{label}"
