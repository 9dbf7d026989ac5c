"""Storage (``/storage/v1``) emulation: objects, deletes and signed URLs.

Object rows live in ``storage.objects`` and are written as the caller's role, so the bucket
policies of ``sync/migrations`` decide access exactly as on Supabase. File bytes live in the
gateway's directory under ``<object id>-<version>`` (never under the user-supplied key).
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .db import ConnectionPool, api_transaction
from .errors import ApiError, storage_error, storage_from_pg
from .http import Request, Response
from .rest import Caller
from .tokens import TokenError, Tokens

VALID_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
VALID_BUCKET = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$")


def validate_key(key: str) -> None:
    """Supabase's object-key rule (src/storage/limits.ts): ASCII subset, non-empty."""
    if not VALID_OBJECT_KEY.match(key):
        raise storage_error(400, "InvalidKey", f"Invalid key: {key}")


def storage_caller(tokens: Tokens, request: Request) -> Caller:
    header = request.header("Authorization") or ""
    if not header.lower().startswith("bearer "):
        raise storage_error(403, "AccessDenied", "Missing authorization header")
    try:
        claims = tokens.decode(header[7:].strip())
    except TokenError as exc:
        message = '"exp" claim timestamp check failed' if exc.expired else "signature verification failed"
        raise storage_error(403, "AccessDenied", message) from exc
    role = str(claims.get("role") or "anon")
    if role not in ("anon", "authenticated", "service_role"):
        raise storage_error(403, "AccessDenied", f"role {role} is not allowed")
    return Caller(role, claims)


def parse_upload_body(request: Request) -> tuple[bytes, str, str]:
    """(content, mimetype, cacheControl) from a raw or multipart/form-data upload body."""
    content_type = request.header("Content-Type") or "application/octet-stream"
    cache = request.header("cache-control") or "max-age=3600"
    if not content_type.lower().startswith("multipart/form-data"):
        return request.body, content_type, cache
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    content, mime = None, "application/octet-stream"
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            mime = part.get_content_type()
        elif name == "cacheControl":
            value = part.get_payload(decode=True)
            if isinstance(value, bytes):
                cache = f"max-age={value.decode()}" if value.isdigit() else value.decode()
    if content is None:
        raise storage_error(400, "InvalidRequest", "No content provided")
    return content, mime, cache


@dataclass
class StorageService:
    pool: ConnectionPool
    admin_pool: ConnectionPool
    tokens: Tokens
    files_dir: Path
    max_file_size: int = 50 * 1024 * 1024

    def handle(self, request: Request) -> Response:
        sub = request.path.removeprefix("/storage/v1/object/")
        if sub.startswith("sign/") and request.method == "GET":
            return self._serve_signed(request, *self._split(sub[5:]))
        caller = storage_caller(self.tokens, request)
        if sub.startswith("sign/") and request.method == "POST":
            return self._sign(request, caller, *self._split(sub[5:]))
        if sub.startswith("authenticated/") and request.method == "GET":
            return self._download(request, caller, *self._split(sub[14:]))
        if "/" not in sub and request.method == "DELETE":
            return self._delete(request, caller, sub)
        bucket, key = self._split(sub)
        if request.method in ("POST", "PUT"):
            content, mime, cache = parse_upload_body(request)
            upsert = request.method == "PUT" or (request.header("x-upsert") or "").lower() == "true"
            info = self.put_object(caller, bucket, key, content, mime, cache, upsert)
            return Response(200, json.dumps(info).encode())
        if request.method == "GET":
            return self._download(request, caller, bucket, key)
        raise storage_error(404, "NotFound", "Route not found")

    @staticmethod
    def _split(rest: str) -> tuple[str, str]:
        bucket, _, key = rest.partition("/")
        if not VALID_BUCKET.match(bucket):
            raise storage_error(400, "InvalidBucketName", "Bucket name invalid")
        validate_key(key)
        return bucket, key

    def _bucket(self, bucket: str) -> dict[str, Any]:
        with self.admin_pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("select * from storage.buckets where id = %s", (bucket,)).fetchone()
        if row is None:
            raise storage_error(404, "NoSuchBucket", "Bucket not found")
        return row

    def file_path(self, object_id: Any, version: str) -> Path:
        return self.files_dir / f"{object_id}-{version}"

    def put_object(
        self,
        caller: Caller,
        bucket: str,
        key: str,
        content: bytes,
        mime: str,
        cache: str,
        upsert: bool,
        staged: Path | None = None,
    ) -> dict[str, str]:
        """Insert (or upsert) the object row as the caller, then store the bytes; commit last."""
        limit = self._bucket(bucket).get("file_size_limit") or self.max_file_size
        size = staged.stat().st_size if staged is not None else len(content)
        if size > min(limit, self.max_file_size):
            raise storage_error(413, "EntityTooLarge", "The object exceeded the maximum allowed size")
        version = uuid.uuid4().hex
        digest = hashlib.md5(content if staged is None else staged.read_bytes(), usedforsecurity=False).hexdigest()
        now = datetime.now(UTC).isoformat()
        metadata = {
            "eTag": f'"{digest}"',
            "size": size,
            "mimetype": mime,
            "cacheControl": cache,
            "lastModified": now,
            "contentLength": size,
            "httpStatusCode": 200,
        }
        conflict = (
            "on conflict (bucket_id, name) do update set metadata = excluded.metadata,"
            " version = excluded.version, updated_at = now(), owner = excluded.owner,"
            " owner_id = excluded.owner_id"
            if upsert
            else ""
        )
        old: dict[str, Any] | None = None
        try:
            with (
                self.pool.connection() as conn,
                api_transaction(conn, caller.role, caller.claims) as tx,
                tx.cursor(row_factory=dict_row) as cur,
            ):
                if upsert:
                    old = cur.execute(
                        "select id, version from storage.objects where bucket_id = %s and name = %s",
                        (bucket, key),
                    ).fetchone()
                row = cur.execute(
                    "insert into storage.objects (bucket_id, name, owner, owner_id, metadata,"
                    f" version) values (%s, %s, %s, %s, %s, %s) {conflict} returning id",
                    (
                        bucket,
                        key,
                        caller.claims.get("sub"),
                        caller.claims.get("sub"),
                        json.dumps(metadata),
                        version,
                    ),
                ).fetchone()
                assert row is not None
                target = self.file_path(row["id"], version)
                if staged is not None:
                    staged.replace(target)
                else:
                    target.write_bytes(content)
        except psycopg.Error as exc:
            raise self._db_error(exc, key) from exc
        if old is not None:
            self.file_path(old["id"], old["version"]).unlink(missing_ok=True)
        return {"Id": str(row["id"]), "Key": f"{bucket}/{key}"}

    @staticmethod
    def _db_error(exc: psycopg.Error, key: str) -> ApiError:
        if exc.sqlstate == "23505":
            return storage_error(409, "KeyAlreadyExists", "The resource already exists")
        if exc.sqlstate is None:
            return storage_error(500, "DatabaseError", "database error")
        del key
        return storage_from_pg(exc.sqlstate, exc.diag.message_primary or str(exc))

    def _find(self, caller: Caller | None, bucket: str, key: str) -> dict[str, Any]:
        """The object row as the caller sees it (RLS), or as the service if ``caller`` is None."""
        query = "select * from storage.objects where bucket_id = %s and name = %s"
        try:
            if caller is None:
                with self.admin_pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                    row = cur.execute(query, (bucket, key)).fetchone()
            else:
                with (
                    self.pool.connection() as conn,
                    api_transaction(conn, caller.role, caller.claims) as tx,
                    tx.cursor(row_factory=dict_row) as cur,
                ):
                    row = cur.execute(query, (bucket, key)).fetchone()
        except psycopg.Error as exc:
            raise self._db_error(exc, key) from exc
        if row is None:
            raise storage_error(404, "NoSuchKey", "Object not found")
        return row

    def _file_response(self, request: Request, row: dict[str, Any]) -> Response:
        data = self.file_path(row["id"], row["version"]).read_bytes()
        meta = row["metadata"] or {}
        headers = [
            ("Cache-Control", str(meta.get("cacheControl", "no-cache"))),
            ("ETag", str(meta.get("eTag", ""))),
            ("Accept-Ranges", "bytes"),
        ]
        mime = str(meta.get("mimetype", "application/octet-stream"))
        download = request.query_value("download")
        if download is not None:
            name = download or row["name"].rsplit("/", 1)[-1]
            headers.append(("Content-Disposition", f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"))
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", request.header("Range") or "")
        if match and (match.group(1) or match.group(2)):
            start = int(match.group(1) or 0)
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data) or end < start:
                raise storage_error(400, "InvalidRange", "invalid range provided", http_status=416)
            end = min(end, len(data) - 1)
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
            return Response(206, data[start : end + 1], headers, mime)
        return Response(200, data, headers, mime)

    def _download(self, request: Request, caller: Caller, bucket: str, key: str) -> Response:
        return self._file_response(request, self._find(caller, bucket, key))

    def _delete(self, request: Request, caller: Caller, bucket: str) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise storage_error(400, "InvalidRequest", "Body is not valid JSON") from exc
        prefixes = body.get("prefixes") if isinstance(body, dict) else None
        if (
            not isinstance(prefixes, list)
            or not 1 <= len(prefixes) <= 1000
            or not all(isinstance(p, str) for p in prefixes)
        ):
            raise storage_error(400, "InvalidRequest", "body/prefixes must be an array of 1 to 1000 strings")
        self._bucket(bucket)
        try:
            with (
                self.pool.connection() as conn,
                api_transaction(conn, caller.role, caller.claims) as tx,
                tx.cursor(row_factory=dict_row) as cur,
            ):
                rows = cur.execute(
                    "delete from storage.objects where bucket_id = %s and name = any(%s) returning *",
                    (bucket, prefixes),
                ).fetchall()
        except psycopg.Error as exc:
            raise self._db_error(exc, "") from exc
        for row in rows:
            self.file_path(row["id"], row["version"]).unlink(missing_ok=True)
        out = [
            {k: (str(v) if isinstance(v, uuid.UUID | datetime) else v) for k, v in row.items() if k != "path_tokens"}
            for row in rows
        ]
        return Response(200, json.dumps(out).encode())

    def _sign(self, request: Request, caller: Caller, bucket: str, key: str) -> Response:
        try:
            body = json.loads(request.body or b"{}")
            expires_in = int(body.get("expiresIn"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise storage_error(400, "InvalidRequest", "body/expiresIn must be integer") from exc
        if expires_in < 1:
            raise storage_error(400, "InvalidRequest", "body/expiresIn must be >= 1")
        self._find(caller, bucket, key)
        now = int(self.tokens.clock.now())
        token = self.tokens.encode({"url": f"{bucket}/{key}", "iat": now, "exp": now + expires_in})
        path = urllib.parse.quote(f"{bucket}/{key}", safe="/")
        return Response(200, json.dumps({"signedURL": f"/object/sign/{path}?token={token}"}).encode())

    def _serve_signed(self, request: Request, bucket: str, key: str) -> Response:
        token = request.query_value("token")
        if not token:
            raise storage_error(400, "InvalidSignature", "Missing token")
        try:
            claims = self.tokens.decode(token)
        except TokenError as exc:
            message = '"exp" claim timestamp check failed' if exc.expired else "signature verification failed"
            raise storage_error(400, "InvalidJWT", message) from exc
        if claims.get("url") != f"{bucket}/{key}":
            raise storage_error(400, "InvalidSignature", "Invalid signature")
        return self._file_response(request, self._find(None, bucket, key))
