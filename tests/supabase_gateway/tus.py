"""TUS 1.0.0 resumable uploads (``/storage/v1/upload/resumable``), Supabase's flavour.

POST creates an upload (``Upload-Length``, ``Upload-Metadata`` with base64 ``bucketName``,
``objectName``, ``contentType``, ``cacheControl``; ``x-upsert``), answering 201 + ``Location``.
PATCH appends at ``Upload-Offset`` (409 on a wrong offset or a concurrent PATCH); every chunk but
the last must be exactly ``chunk_size`` (6 MiB) bytes. HEAD reports the offset. The object row is
written (as the caller, under RLS) when the last byte arrives; permission is checked up front.
Errors carry the Storage JSON body with the real HTTP status, since TUS clients branch on it.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .db import api_transaction
from .errors import ApiError, storage_error
from .http import Request, Response
from .rest import Caller
from .storage import StorageService, storage_caller, validate_key

TUS_VERSION = "1.0.0"
_TUS_HEADERS = [("Tus-Resumable", TUS_VERSION)]


def tus_error(status: int, code: str, message: str) -> ApiError:
    return storage_error(status, code, message, http_status=status)


def parse_metadata(header: str) -> dict[str, str]:
    """``key base64value,key2 base64value2`` -> dict (TUS Upload-Metadata)."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = item.partition(" ")
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise tus_error(400, "InvalidRequest", f"invalid Upload-Metadata for {key}") from exc
    return out


@dataclass
class _Upload:
    id: str
    sub: str
    bucket: str
    key: str
    length: int
    content_type: str
    cache_control: str
    upsert: bool
    path: Path
    offset: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class TusService:
    storage: StorageService
    base_url: str
    chunk_size: int = 6 * 1024 * 1024
    _uploads: dict[str, _Upload] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> Response:
        caller = storage_caller(self.storage.tokens, request)
        sub = request.path.removeprefix("/storage/v1/upload/resumable").strip("/")
        if not sub and request.method == "POST":
            return self._create(request, caller)
        upload = self._get(sub, caller)
        if request.method == "HEAD":
            return Response(
                200,
                b"",
                [
                    *_TUS_HEADERS,
                    ("Upload-Offset", str(upload.offset)),
                    ("Upload-Length", str(upload.length)),
                    ("Cache-Control", "no-store"),
                ],
                None,
            )
        if request.method == "PATCH":
            return self._patch(request, caller, upload)
        if request.method == "DELETE":
            with self._lock:
                self._uploads.pop(upload.id, None)
            upload.path.unlink(missing_ok=True)
            return Response(204, b"", list(_TUS_HEADERS), None)
        raise tus_error(405, "InvalidRequest", "method not allowed")

    def _get(self, upload_id: str, caller: Caller) -> _Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.sub != caller.claims.get("sub"):
            raise tus_error(404, "NoSuchUpload", "Upload not found")
        return upload

    def _create(self, request: Request, caller: Caller) -> Response:
        meta = parse_metadata(request.header("Upload-Metadata") or "")
        bucket, key = meta.get("bucketName", ""), meta.get("objectName", "")
        validate_key(key)
        try:
            length = int(request.header("Upload-Length") or "")
        except ValueError as exc:
            raise tus_error(400, "InvalidRequest", "Upload-Length is required") from exc
        if length < 0:
            raise tus_error(400, "InvalidRequest", "Upload-Length must be >= 0")
        limit = self.storage._bucket(bucket).get("file_size_limit") or self.storage.max_file_size
        if length > min(limit, self.storage.max_file_size):
            raise tus_error(413, "EntityTooLarge", "The object exceeded the maximum allowed size")
        upsert = (request.header("x-upsert") or "").lower() == "true"
        self._check_can_write(caller, bucket, key, upsert)
        upload_id = uuid.uuid4().hex
        upload = _Upload(
            upload_id,
            str(caller.claims.get("sub")),
            bucket,
            key,
            length,
            meta.get("contentType") or "application/octet-stream",
            meta.get("cacheControl") or "max-age=3600",
            upsert,
            self.storage.files_dir / f"tus-{upload_id}",
        )
        upload.path.write_bytes(b"")
        with self._lock:
            self._uploads[upload_id] = upload
        location = f"{self.base_url}/storage/v1/upload/resumable/{upload_id}"
        return Response(201, b"", [*_TUS_HEADERS, ("Location", location)], None)

    def _check_can_write(self, caller: Caller, bucket: str, key: str, upsert: bool) -> None:
        """Try the insert as the caller and roll it back: RLS or a duplicate fails now."""
        conflict = " on conflict (bucket_id, name) do update set version = excluded.version" if upsert else ""
        try:
            with (
                self.storage.pool.connection() as conn,
                api_transaction(conn, caller.role, caller.claims) as tx,
                tx.transaction(),
            ):
                tx.execute(
                    "insert into storage.objects (bucket_id, name, owner_id, version)"
                    f" values (%s, %s, %s, 'probe'){conflict}",
                    (bucket, key, caller.claims.get("sub")),
                )
                raise _Rollback
        except _Rollback:
            return
        except psycopg.Error as exc:
            err = self.storage._db_error(exc, key)
            status = int(err.body["statusCode"])
            raise tus_error(status, str(err.body["code"]), str(err.body["message"])) from exc

    def _patch(self, request: Request, caller: Caller, upload: _Upload) -> Response:
        if (request.header("Content-Type") or "") != "application/offset+octet-stream":
            raise tus_error(415, "InvalidRequest", "Content-Type must be application/offset+octet-stream")
        if not upload.lock.acquire(blocking=False):
            raise tus_error(409, "ResourceLocked", "The upload is being written concurrently")
        try:
            try:
                offset = int(request.header("Upload-Offset") or "")
            except ValueError as exc:
                raise tus_error(400, "InvalidRequest", "Upload-Offset is required") from exc
            if offset != upload.offset:
                raise tus_error(409, "InvalidRequest", f"Upload-Offset {offset} does not match {upload.offset}")
            data = request.body
            end = offset + len(data)
            if end > upload.length:
                raise tus_error(413, "EntityTooLarge", "chunk exceeds Upload-Length")
            if end < upload.length and len(data) != self.chunk_size:
                raise tus_error(
                    400,
                    "InvalidRequest",
                    f"every chunk but the last must be {self.chunk_size} bytes",
                )
            with upload.path.open("ab") as fh:
                fh.write(data)
            upload.offset = end
            if end == upload.length:
                self.storage.put_object(
                    caller,
                    upload.bucket,
                    upload.key,
                    b"",
                    upload.content_type,
                    upload.cache_control,
                    upload.upsert,
                    staged=upload.path,
                )
                with self._lock:
                    self._uploads.pop(upload.id, None)
            return Response(204, b"", [*_TUS_HEADERS, ("Upload-Offset", str(end))], None)
        finally:
            upload.lock.release()


class _Rollback(Exception):
    pass
