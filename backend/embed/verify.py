"""Integrity checks for fetched model files: size first (cheap), then sha256 (streamed).

A file that is missing raises :class:`ModelMissing`; a file whose size or hash differs raises
:class:`ModelCorrupt`. Both name the file, the expected and actual values, and the fix.
:func:`read_verified` returns the exact bytes it hashed, so what is loaded is what was
verified (no window between check and use).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from backend.embed.errors import ModelCorrupt, ModelMissing
from backend.embed.manifest import ModelFile, ModelManifest

_READ_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(_READ_CHUNK):
            h.update(piece)
    return h.hexdigest()


def _fix_hint(manifest: ModelManifest) -> str:
    return f"run `docsidecar models fetch --model {manifest.id}` to download and verify it again"


def _detail(manifest: ModelManifest, spec: ModelFile, path: Path, **actual: Any) -> dict[str, Any]:
    return {
        "model_id": manifest.id,
        "file": str(path),
        "expected_size": spec.size,
        "expected_sha256": spec.sha256,
        **actual,
        "fix": _fix_hint(manifest),
    }


def _stat_size(manifest: ModelManifest, spec: ModelFile, path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelMissing(
            f"model file {path} is missing; {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=None, actual_sha256=None),
        ) from None
    except OSError as exc:
        raise ModelMissing(
            f"model file {path} cannot be read ({exc}); {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=None, actual_sha256=None),
        ) from exc
    if not path.is_file():
        raise ModelMissing(
            f"model file {path} is not a regular file; {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=None, actual_sha256=None),
        )
    if st.st_size != spec.size:
        raise ModelCorrupt(
            f"model file {path} has {st.st_size} bytes, expected {spec.size}; {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=st.st_size, actual_sha256=None),
        )
    return st.st_size


def _check_hash(manifest: ModelManifest, spec: ModelFile, path: Path, actual: str) -> None:
    if actual != spec.sha256:
        raise ModelCorrupt(
            f"model file {path} has sha256 {actual}, expected {spec.sha256}; {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=spec.size, actual_sha256=actual),
        )


def verify_file(manifest: ModelManifest, spec: ModelFile, directory: Path) -> None:
    """Check one file: present, right size, right sha256 (streamed)."""
    path = directory / spec.path
    _stat_size(manifest, spec, path)
    _check_hash(manifest, spec, path, sha256_file(path))


def verify_files(manifest: ModelManifest, files: Iterable[ModelFile], directory: Path) -> None:
    """Check several files: all sizes first (fails fast on a truncated file), then hashes."""
    files = list(files)
    for spec in files:
        _stat_size(manifest, spec, directory / spec.path)
    for spec in files:
        path = directory / spec.path
        _check_hash(manifest, spec, path, sha256_file(path))


def verify_model_dir(manifest: ModelManifest, directory: Path) -> None:
    """Raise :class:`ModelMissing`/:class:`ModelCorrupt` unless every file of the model
    (``[[files]]``, not the reference files) is present with the manifest's size and sha256."""
    verify_files(manifest, manifest.files, directory)


def verify_reference_dir(manifest: ModelManifest, directory: Path) -> None:
    """Like :func:`verify_model_dir` for the optional ``[reference]`` files."""
    if not manifest.reference_files:
        raise ModelMissing(f"manifest {manifest.id} lists no reference files")
    verify_files(manifest, manifest.reference_files, directory)


def read_verified(manifest: ModelManifest, spec: ModelFile, directory: Path) -> bytes:
    """Read one file into memory and return its bytes only if size and sha256 match."""
    path = directory / spec.path
    _stat_size(manifest, spec, path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelMissing(
            f"model file {path} cannot be read ({exc}); {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=None, actual_sha256=None),
        ) from exc
    if len(data) != spec.size:  # changed between stat and read
        raise ModelCorrupt(
            f"model file {path} has {len(data)} bytes, expected {spec.size}; {_fix_hint(manifest)}",
            detail=_detail(manifest, spec, path, actual_size=len(data), actual_sha256=None),
        )
    _check_hash(manifest, spec, path, hashlib.sha256(data).hexdigest())
    return data
