"""Document versions: hybrid logical clocks, last-writer-wins order, deterministic ids (pure).

A version is ``(hlc, device)``. ``hlc`` packs wall-clock milliseconds and a counter into one
integer, ``(ms << 16) | counter`` (the layout ``sync/migrations/0001`` documents), so it sorts
like time but never goes backwards on one device and is always above every version that device
has seen. Ties between devices break on the device id compared bytewise, exactly as the server's
``docsidecar_sync.version_gt`` does (``COLLATE "C"``).

Ids the server deduplicates on are derived from the version (uuid5), so retrying a version
after a lost response re-sends the very same change ids and chunk ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

COUNTER_BITS = 16
COUNTER_MASK = (1 << COUNTER_BITS) - 1
MAX_HLC = (1 << 63) - 1
_NAMESPACE = uuid.UUID("6b1f5c7e-3d1a-4f0e-9a59-2c4d1b0e8f11")


@dataclass(frozen=True, slots=True, order=False)
class Version:
    hlc: int
    device: str

    def key(self) -> tuple[int, bytes]:
        return (self.hlc, self.device.encode("utf-8"))

    def newer_than(self, other: Version | None) -> bool:
        """Last-writer-wins: is this version the winner over ``other`` (None loses to all)?"""
        return other is None or self.key() > other.key()

    def to_dict(self) -> dict[str, object]:
        return {"hlc": self.hlc, "device": self.device}


def version_of(hlc: int | None, device: str | None) -> Version | None:
    return None if hlc is None or device is None else Version(int(hlc), str(device))


def next_hlc(now_ms: int, last: int, seen: int = 0) -> int:
    """The next clock value: above ``last`` (this device's previous value) and ``seen`` (the
    largest value observed from anyone), and at least the wall clock when that is larger."""
    if now_ms < 0:
        now_ms = 0
    candidate = max(now_ms << COUNTER_BITS, last + 1, seen + 1)
    if candidate > MAX_HLC:
        raise OverflowError("hybrid logical clock exhausted")
    return candidate


def hlc_millis(hlc: int) -> int:
    return hlc >> COUNTER_BITS


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def document_change_id(doc_id: str, v: Version) -> str:
    return _uuid("document", doc_id, v.hlc, v.device)


def chunks_change_id(doc_id: str, v: Version, part: int) -> str:
    return _uuid("chunks", doc_id, v.hlc, v.device, part)


def chunk_uuid(doc_id: str, v: Version, ordinal: int) -> str:
    return _uuid("chunk", doc_id, v.hlc, v.device, ordinal)


def storage_key(user_id: str, doc_id: str, sha256: str) -> str:
    """``<user_id>/<document_id>/<sha256>``: ASCII, content-addressed (Storage rejects others)."""
    for part in (user_id, doc_id):
        uuid.UUID(part)  # raises ValueError on anything but a uuid
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{user_id}/{doc_id}/{sha256}"
