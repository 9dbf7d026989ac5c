"""One sync run: push the outbox (files, then chunks, then rows), then pull after the cursor.

A run is one idempotent step. Whatever fails in the middle (network, server, a crash) leaves
every local change queued and the cursor where it was; the next run repeats what did not
complete. Retried pushes reuse their version, hence their change ids, and the server answers
an already-applied change id with its stored result, so nothing is applied twice.

Only :class:`SupabaseError` with kind ``transient``/``auth_expired`` or ``SyncSignedOut``
escape a run (the service backs off or signs out); ``permanent`` rejections of one change are
dead-lettered and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.conflicts import PushResolution, decide_push
from sync.errors import SupabaseError
from sync.protocol import InChunk, LocalSync, OutVersion, Remote
from sync.versions import storage_key

Emit = Callable[[str, dict[str, Any]], object]


class RunCancelled(Exception):
    """The run was asked to stop (shutdown); what it did so far is kept, the rest stays queued."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    push_docs_per_round: int = 200
    """Pending documents prepared per round of the push loop."""
    push_round_chunks: int = 5000
    """A round stops preparing documents once it holds this many chunks (memory bound)."""
    chunks_per_change: int = 100
    """Chunks in one ``chunks`` change (one server-side insert)."""
    push_chunk_budget: int = 400
    """Chunks per push request (~2 MB of JSON with 384-d embeddings)."""
    push_change_budget: int = 500
    """Changes per push request (the RPC accepts at most 1000)."""
    pull_page: int = 500
    """Document versions per pull page (at most 1000, PostgREST's max_rows)."""
    pull_apply_docs: int = 50
    """Documents whose chunks are fetched and applied in one local transaction."""
    download: str = "eager"
    """``eager``: download original files of pulled documents; ``on_demand``: when asked for."""


@dataclass
class RunReport:
    pushed: int = 0
    uploaded: int = 0
    deferred: int = 0
    dead_letters: int = 0
    conflicts: int = 0
    pulled: int = 0
    skipped: int = 0
    downloads: int = 0
    chunks_pushed: int = 0
    chunks_pulled: int = 0
    copies: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"remote": 0.0, "local": 0.0})
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pushed": self.pushed, "uploaded": self.uploaded, "deferred": self.deferred,
            "dead_letters": self.dead_letters, "conflicts": self.conflicts, "pulled": self.pulled,
            "skipped": self.skipped, "downloads": self.downloads, "chunks_pushed": self.chunks_pushed,
            "chunks_pulled": self.chunks_pulled, "copies": list(self.copies),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "started_at": self.started_at, "finished_at": self.finished_at,
        }  # fmt: skip


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SyncEngine:
    def __init__(
        self,
        local: LocalSync,
        remote: Remote,
        config: EngineConfig,
        emit: Emit | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.config = config
        self._emit = emit or (lambda _t, _d: None)
        self._should_stop = should_stop or (lambda: False)
        self._report = RunReport()

    # -- timing helpers ---------------------------------------------------------------------
    def _timed(self, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._report.seconds[kind] = self._report.seconds.get(kind, 0.0) + time.perf_counter() - t0

    def _r(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._should_stop():  # between requests: every step before this one is complete
            raise RunCancelled
        return self._timed("remote", fn, *args)

    def _l(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._timed("local", fn, *args)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> RunReport:
        self._report = report = RunReport()
        self._l(self.local.bind_account, self.remote.user_id)
        self.push()
        self.pull()
        if report.copies:  # local conflicted copies are ready to go up at once
            self.push()
        report.finished_at = time.time()
        return report

    # -- push -------------------------------------------------------------------------------
    def push(self) -> None:
        seen: set[str] = set()
        while True:
            ids = self._l(self.local.pending_documents, seen, self.config.push_docs_per_round)
            if not ids:
                return
            ready: list[tuple[OutVersion, str | None]] = []
            held = 0
            for doc_id in ids:
                if held >= self.config.push_round_chunks:
                    break  # bound the memory a round holds; the rest comes in the next round
                seen.add(doc_id)
                prepared = self._l(self.local.prepare, doc_id, self.remote.user_id)
                if prepared.state == "deferred":
                    self._report.deferred += 1
                elif prepared.state == "ready" and prepared.version is not None:
                    ok, key = self._upload(prepared.version)
                    if ok:
                        ready.append((prepared.version, key))
                        held += len(prepared.version.chunks)
            self._send(ready)

    def _upload(self, v: OutVersion) -> tuple[bool, str | None]:
        """Files before rows. (False, None): not pushable now (dead-lettered or deferred)."""
        sha = v.fields.get("sha256")
        if v.deleted or not sha:
            return True, None
        key = storage_key(self.remote.user_id, v.document_id, str(sha))
        if v.known_key == key:
            return True, key
        if v.source is None:
            return True, None  # no bytes on this device: the row goes up without a file
        staged = self._l(self.local.stage_file, v)
        if staged is None:
            self._report.deferred += 1  # the file changed under us; its re-index queues a new version
            return False, None
        path, size, cleanup = staged
        try:
            created = self._r(self.remote.upload, key, path, size, str(v.fields.get("mime") or ""))
        except SupabaseError as exc:
            if exc.kind in ("permanent", "not_found"):
                self._dead_letter(v, "upload", exc.remote_code or "storage_error", exc.message, exc.summary())
                return False, None
            raise
        finally:
            cleanup()
        self._report.uploaded += int(bool(created))
        return True, key

    def _changes(self, ready: Sequence[tuple[OutVersion, str | None]]) -> Iterator[tuple[OutVersion, dict[str, Any]]]:
        for v, key in ready:
            for change in v.chunk_changes(self.config.chunks_per_change):
                yield v, change
            yield v, v.document_change(key)

    def _send(self, ready: Sequence[tuple[OutVersion, str | None]]) -> None:
        failed: set[str] = set()
        batch: list[tuple[OutVersion, dict[str, Any]]] = []
        chunk_count = 0
        for v, change in self._changes(ready):
            if v.document_id in failed:
                continue
            size = len(change.get("chunks", ()))
            if batch and (
                chunk_count + size > self.config.push_chunk_budget or len(batch) >= self.config.push_change_budget
            ):
                self._flush(batch, failed)
                batch, chunk_count = [], 0
                if v.document_id in failed:
                    continue
            batch.append((v, change))
            chunk_count += size
        if batch:
            self._flush(batch, failed)

    def _push(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Push, bisecting a batch the server refuses as a whole until the bad change is alone."""
        try:
            results: list[dict[str, Any]] = self._r(self.remote.push, changes)
            return results
        except SupabaseError as exc:
            if exc.kind != "permanent":
                raise
            if len(changes) == 1:
                return [{"change_id": changes[0]["change_id"], "kind": changes[0].get("kind"), "status": "rejected",
                         "error": {"code": exc.remote_code or "rejected", "message": exc.message}}]  # fmt: skip
            mid = len(changes) // 2
            return self._push(changes[:mid]) + self._push(changes[mid:])

    def _flush(self, batch: list[tuple[OutVersion, dict[str, Any]]], failed: set[str]) -> None:
        results = self._push([change for _, change in batch])
        for (v, change), result in zip(batch, results, strict=True):
            if v.document_id in failed:
                continue
            error = result.get("error") or {}
            if change["kind"] == "chunks":
                if result.get("status") == "rejected":
                    failed.add(v.document_id)
                    self._dead_letter(v, "push", str(error.get("code") or "rejected"),
                                      str(error.get("message") or ""), {"result": result})  # fmt: skip
                else:
                    self._report.chunks_pushed += int(result.get("count") or 0)
                continue
            self._settle(v, change, result)

    def _dead_letter(self, v: OutVersion, stage: str, code: str, message: str, detail: dict[str, Any]) -> None:
        self._l(self.local.dead_letter, v, stage, code, message, detail)
        self._report.dead_letters += 1
        self._emit("sync.dead_letter", {"document_id": v.document_id, "stage": stage, "code": code, "message": message})

    def _settle(self, v: OutVersion, change: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        status = str(result.get("status"))
        current, replaced = result.get("current"), result.get("replaced")
        ours = change["document"]
        resolution = decide_push(status, ours, v.version.device, current, replaced)
        if resolution is PushResolution.DEAD_LETTER:
            error = result.get("error") or {}
            self._dead_letter(v, "push", str(error.get("code") or "rejected"), str(error.get("message") or ""),
                              {"result": dict(result)})  # fmt: skip
            return
        assert current is not None
        if resolution is PushResolution.DONE:
            self._l(self.local.push_done, v, current, None, None)
            self._report.pushed += 1
            return
        if resolution is PushResolution.COPY_REPLACED:
            assert replaced is not None
            blob = self._download(replaced.get("storage_key"), replaced.get("sha256"))
            copy_id = self._l(self.local.push_done, v, current, replaced, blob)
            self._report.pushed += 1
            self._conflict(v.document_id, copy_id, "remote_replaced")
            return
        chunks = None
        blob_key = None
        if not current.get("deleted"):
            chunks = self._r(self.remote.pull_chunks, [current]).get(str(current["id"]), [])
            blob = self._download(current.get("storage_key"), current.get("sha256")) if self._eager else None
            blob_key = blob[0] if blob else None
        done, copy_id = self._l(
            self.local.push_lost, v, current, chunks, blob_key, resolution is PushResolution.COPY_LOCAL
        )
        if not done:
            self._report.deferred += 1
            return
        if copy_id is not None:
            self._report.copies.append(copy_id)
            self._conflict(v.document_id, copy_id, "local_lost")

    def _conflict(self, doc_id: str, copy_id: str | None, kind: str) -> None:
        self._report.conflicts += 1
        self._emit("sync.conflict", {"document_id": doc_id, "copy_document_id": copy_id, "kind": kind})

    @property
    def _eager(self) -> bool:
        return self.config.download == "eager"

    def _download(self, key: Any, sha: Any) -> tuple[str, int] | None:
        if not key or not sha:
            return None
        have = self._l(self.local.blob_size, str(sha))
        if have is not None:
            return str(sha), int(have)
        try:
            got: tuple[str, int] = self._r(self.remote.download, str(key))
        except SupabaseError as exc:
            if exc.kind == "not_found":
                return None
            raise
        self._report.downloads += 1
        return got

    # -- pull -------------------------------------------------------------------------------
    def pull(self) -> None:
        cursor = self._l(self.local.cursor)
        while True:
            rows, next_cursor, has_more = self._r(self.remote.pull, cursor, self.config.pull_page)
            if not rows:
                return
            content = self._l(self.local.needs_content, rows)
            incomplete = False
            for group in _batches(content, self.config.pull_apply_docs):
                chunks: dict[str, list[InChunk]] = self._r(self.remote.pull_chunks, group)
                self._report.chunks_pulled += sum(len(c) for c in chunks.values())
                blobs: dict[str, tuple[str, int]] = {}
                if self._eager:
                    for row in group:
                        blob = self._download(row.get("storage_key"), row.get("sha256"))
                        if blob is not None:
                            blobs[str(row["id"])] = blob
                result = self._l(self.local.apply_pulled, group, chunks, blobs, None)
                incomplete = incomplete or result.incomplete
                self._count(result)
            taken = {str(r["id"]) for r in content}
            rest = [r for r in rows if str(r["id"]) not in taken]
            result = self._l(self.local.apply_pulled, rest, {}, {}, None if incomplete else next_cursor)
            self._count(result)
            if incomplete or result.incomplete or not has_more:
                return
            cursor = next_cursor

    def _count(self, result: Any) -> None:
        self._report.pulled += result.applied
        self._report.skipped += result.skipped
        if result.changed or result.deleted:
            self._emit("sync.pulled", {"changed": result.changed[:100], "deleted": result.deleted[:100],
                                       "count": len(result.changed) + len(result.deleted)})  # fmt: skip
