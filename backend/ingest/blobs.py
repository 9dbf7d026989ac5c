"""Content-addressed copies of uploaded files under ``<data_dir>/blobs``.

A blob's key is the sha256 of its bytes (``ab/abcdef…``), so identical uploads share one
copy and file names never reach the file system. Uploads stream into a temp file in the same
directory tree while being hashed and size-checked, then are fsynced and renamed into place:
a crash leaves at most an orphaned temp file, never a half-written blob under a valid key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from backend.errors import PayloadTooLarge
from backend.osdeps.paths import fsync_dir

_KEY = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path_of(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def clean_temp(self) -> int:
        """Remove temp files a crash left behind; returns how many."""
        if not self.tmp.is_dir():
            return 0
        removed = 0
        for entry in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
        return removed

    def stored_keys(self) -> list[str]:
        """Every stored blob's key."""
        if not self.root.is_dir():
            return []
        shards = [d for d in self.root.iterdir() if d.is_dir() and len(d.name) == 2]
        return sorted(p.name for d in shards for p in d.iterdir() if _KEY.match(p.name))

    def writer(self, max_bytes: int) -> BlobWriter:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return BlobWriter(self, max_bytes)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(key).unlink()

    def put_file(self, src: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Copy a file object into the store; returns (key, size)."""
        with self.writer(max_bytes) as w:
            while data := src.read(CHUNK):
                w.write(data)
            return w.commit()


class BlobWriter:
    """Streams bytes into a temp file, hashing and counting; ``commit`` moves it into place."""

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self._store = store
        self._max = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0
        self._path = store.tmp / f"upload-{secrets.token_hex(8)}"
        self._fh: BinaryIO = open(self._path, "wb")  # noqa: SIM115 - closed in commit/abort
        self._done = False

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max:
            raise PayloadTooLarge(f"file exceeds the upload limit of {self._max} bytes", detail={"limit": self._max})
        self._hash.update(data)
        self._fh.write(data)

    async def write_stream(self, stream: AsyncIterator[bytes]) -> None:
        async for data in stream:
            self.write(data)

    def commit(self) -> tuple[str, int]:
        key = self._hash.hexdigest()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        dest = self._store.path_of(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path, dest)
        fsync_dir(dest.parent)
        self._done = True
        return key, self.size

    def abort(self) -> None:
        if not self._done:
            self._fh.close()
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._done = True

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
