"""Supabase Storage: plain upload (≤ 6 MB), TUS resumable upload (> 6 MB), streamed download,
signed URLs. Bucket ``documents``; keys are ``<user_id>/<document_id>/<sha256>``.

Uploads never overwrite (no ``x-upsert``): keys are content-addressed, so "already exists"
(``KeyAlreadyExists``) means the very same bytes are there and counts as success — which also
makes a retried upload whose first response was lost harmless.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import httpx

from sync.errors import SupabaseError
from sync.supabase.http import MAX_REFRESHES, SupabaseHttp, decode_body
from sync.supabase.retry import backoff_delay, classify, transport_error

BUCKET = "documents"
TUS_CHUNK = 6 * 1024 * 1024
"""Supabase requires TUS chunks of exactly 6 MB (except the last) and recommends the standard
upload up to this size."""


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


class StorageClient:
    def __init__(self, http: SupabaseHttp, *, tus_chunk: int = TUS_CHUNK) -> None:
        self.http = http
        self.tus_chunk = tus_chunk
        self.tus_resumes = 0

    # -- upload -------------------------------------------------------------------------------
    def upload(self, key: str, path: Path, size: int, mime: str) -> bool:
        """Store the file under ``key``; True if it was uploaded now, False if already there."""
        if size <= self.tus_chunk:
            return self._upload_plain(key, path.read_bytes(), mime)
        return self._upload_tus(key, path, size, mime)

    def _upload_plain(self, key: str, data: bytes, mime: str) -> bool:
        try:
            self.http.send(
                "storage", "POST", f"/storage/v1/object/{BUCKET}/{key}", content=data,
                headers={"Content-Type": mime or "application/octet-stream", "cache-control": "max-age=3600",
                         "x-upsert": "false"},
            )  # fmt: skip
        except SupabaseError as exc:
            if exc.kind == "exists":
                return False
            raise
        return True

    def _tus_create(self, key: str, size: int, mime: str) -> str | None:
        metadata = ",".join(
            f"{k} {_b64(v)}"
            for k, v in (
                ("bucketName", BUCKET),
                ("objectName", key),
                ("contentType", mime or "application/octet-stream"),
                ("cacheControl", "3600"),
            )
        )
        try:
            response = self.http.send(
                "tus", "POST", "/storage/v1/upload/resumable",
                headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(size), "Upload-Metadata": metadata,
                         "x-upsert": "false"},
            )  # fmt: skip
        except SupabaseError as exc:
            if exc.kind == "exists":
                return None
            raise
        location: str | None = response.headers.get("location")
        if not location:
            raise SupabaseError("permanent", "TUS create answered without a Location", service="tus")
        return location

    def _tus_offset(self, location: str) -> int:
        response = self.http.send("tus", "HEAD", location, headers={"Tus-Resumable": "1.0.0"})
        try:
            return int(response.headers["upload-offset"])
        except (KeyError, ValueError) as exc:
            raise SupabaseError("transient", "TUS HEAD without Upload-Offset", service="tus") from exc

    def _upload_tus(self, key: str, path: Path, size: int, mime: str) -> bool:
        location = self._tus_create(key, size, mime)
        if location is None:
            return False
        offset, failures, refreshes = 0, 0, 0
        with path.open("rb") as fh:
            while offset < size:
                fh.seek(offset)
                data = fh.read(self.tus_chunk)
                token = self.http.token()
                try:
                    response = self.http.send_once(
                        "tus", "PATCH", location, token=token, content=data,
                        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                                 "Content-Type": "application/offset+octet-stream"},
                    )  # fmt: skip
                    offset = int(response.headers.get("upload-offset", offset + len(data)))
                    failures, refreshes = 0, 0
                    continue
                except SupabaseError as exc:
                    if exc.kind == "auth_expired" and refreshes < MAX_REFRESHES and self.http.tokens is not None:
                        self.http.tokens.refresh(token)
                        refreshes += 1
                        continue
                    failures += 1
                    if failures >= self.http.policy.max_attempts:
                        raise
                    if exc.kind == "not_found":  # the upload expired or was lost: start over
                        location = self._tus_create(key, size, mime)
                        if location is None:
                            return False
                        offset = 0
                        continue
                    offset_mismatch = exc.http_status == 409 and exc.remote_code != "ResourceLocked"
                    if not (exc.transient or offset_mismatch):
                        raise
                    self.http.sleep(backoff_delay(self.http.policy, failures, exc.retry_after))
                # resume: ask the server how much it has (the failed PATCH may have been applied)
                self.tus_resumes += 1
                offset = self._tus_offset(location)
        return True

    # -- download -----------------------------------------------------------------------------
    def download(self, key: str, open_sink: Callable[[], tuple[Sink, Callable[[], None]]]) -> None:
        """Stream the object into a fresh sink per attempt; ``open_sink`` returns (sink, abort).
        The caller commits the sink after this returns."""
        path = f"/storage/v1/object/authenticated/{BUCKET}/{key}"
        refreshes = 0

        def attempt(token: str) -> None:
            sink, abort = open_sink()
            try:
                with self.http.client.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status_code >= 300:
                        r.read()
                        error = classify("storage", r.status_code, decode_body(r), r.headers)
                        assert error is not None
                        raise error
                    for part in r.iter_bytes(1024 * 1024):
                        sink.write(part)
            except httpx.TransportError as exc:
                abort()
                raise transport_error("storage", exc) from exc
            except BaseException:
                abort()
                raise

        while True:
            token = self.http.token()
            try:
                self.http.retrier().call(functools.partial(attempt, token))
                return
            except SupabaseError as exc:
                if exc.kind == "auth_expired" and refreshes < MAX_REFRESHES and self.http.tokens is not None:
                    self.http.tokens.refresh(token)
                    refreshes += 1
                    continue
                raise

    def read(self, key: str) -> bytes:
        """The object's bytes (small objects; tests and diagnostics)."""
        buf = bytearray()

        class _Buf:
            def write(self, data: bytes) -> None:
                buf.extend(data)

        def open_sink() -> tuple[Sink, Callable[[], None]]:
            buf.clear()
            return _Buf(), buf.clear

        self.download(key, open_sink)
        return bytes(buf)

    # -- signed URLs --------------------------------------------------------------------------
    def sign(self, key: str, expires_in: int) -> str:
        response = self.http.send(
            "storage", "POST", f"/storage/v1/object/sign/{BUCKET}/{key}", json_body={"expiresIn": int(expires_in)}
        )
        data = decode_body(response)
        signed = data.get("signedURL") or data.get("signedUrl") if isinstance(data, dict) else None
        if not isinstance(signed, str):
            raise SupabaseError("permanent", "Storage answered without a signedURL", service="storage")
        return f"{self.http.base_url}/storage/v1{signed}" if signed.startswith("/") else signed
