"""Checks around the PyInstaller bundle: model hashes before the build, what went into the
bundle after it, and proof that the running binary writes nothing inside its own folder.

Used by ``packaging/build.py`` and ``tests/bench/bench_bundle.py``; plain functions, no state.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backend.embed.manifest import ModelManifest, find_manifest  # noqa: E402
from backend.embed.verify import verify_model_dir  # noqa: E402

# Top-level modules that must never be in the bundle: the ML stacks we do not use, and
# everything only tests, linters, the sync test bed or the build itself need.
FORBIDDEN_MODULES = (
    "torch",
    "tensorflow",
    "transformers",
    "sentence_transformers",
    "pytest",
    "_pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "psycopg",
    "pgserver",
    "supabase",
    "pypdf",
    "PyInstaller",
    "IPython",
    "tkinter",
    "onnx",
)


def executable_name() -> str:
    return "docsidecar.exe" if os.name == "nt" else "docsidecar"


def verify_models(models_dir: Path, model_ids: Iterable[str]) -> list[ModelManifest]:
    """Size + sha256 of every bundled model file against its manifest (raises on a mismatch)."""
    manifests = []
    for model_id in model_ids:
        manifest = find_manifest(models_dir, model_id)
        verify_model_dir(manifest, manifest.dir_in(models_dir))
        manifests.append(manifest)
    return manifests


def tree_size(root: Path) -> int:
    """Bytes of all regular files below ``root`` (symlinks not followed)."""
    total = 0
    for path in _walk(root):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


def pyz_modules(pyz: Path) -> set[str]:
    """Module names in a PyInstaller PYZ archive (needs PyInstaller importable)."""
    from PyInstaller.archive.readers import ZlibArchiveReader

    return set(ZlibArchiveReader(str(pyz)).toc)


@dataclass(frozen=True)
class BundleReport:
    size_bytes: int
    problems: list[str]


def inspect_bundle(bundle: Path, pyz: Path | None, manifests: list[ModelManifest]) -> BundleReport:
    """What must be in a one-folder bundle, and what must not be."""
    internal = bundle / "_internal"
    problems: list[str] = []
    if not (bundle / executable_name()).is_file():
        problems.append(f"no executable {bundle / executable_name()}")
    problems += _missing_native(internal)
    problems += [f"migration file missing: {n}" for n in _repo_sql_files() if not (internal / n).is_file()]
    problems += _model_problems(internal / "models", manifests)
    problems += _forbidden_present(internal, pyz)
    return BundleReport(tree_size(bundle), problems)


def _missing_native(internal: Path) -> list[str]:
    wanted = {
        "sqlite-vec loadable extension (_internal/sqlite_vec/vec0.*)": "sqlite_vec/vec0.*",
        "onnxruntime native library (_internal/onnxruntime/capi)": "onnxruntime/capi/*onnxruntime*",
        "tokenizers extension module (_internal/tokenizers)": "tokenizers/tokenizers*",
    }
    return [f"{what} missing" for what, pattern in wanted.items() if not list(internal.glob(pattern))]


def _model_problems(models: Path, manifests: list[ModelManifest]) -> list[str]:
    problems = []
    for manifest in manifests:
        if not (models / f"{manifest.id}.toml").is_file():
            problems.append(f"model manifest missing: models/{manifest.id}.toml")
        problems += [
            f"model file missing: models/{manifest.id}/{spec.path}"
            for spec in manifest.files
            if not (manifest.dir_in(models) / spec.path).is_file()
        ]
        if manifest.reference_dir_in(models).exists():
            problems.append(f"the test-only fp32 reference files of {manifest.id} are in the bundle")
    return problems


def _forbidden_present(internal: Path, pyz: Path | None) -> list[str]:
    present = {p.name.split(".")[0] for p in internal.iterdir()} if internal.is_dir() else set()
    if pyz is not None and pyz.is_file():
        present |= {m.split(".")[0] for m in pyz_modules(pyz)}
    return [
        f"{name} is in the bundle (excluded on purpose: not needed at run time)"
        for name in FORBIDDEN_MODULES
        if name in present
    ]


def _repo_sql_files() -> list[str]:
    return [str(p.relative_to(REPO)) for pkg in ("backend", "sync") for p in sorted((REPO / pkg).rglob("*.sql"))]


# --- read-only install location -------------------------------------------------------------

Snapshot = dict[str, tuple[int, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every path below ``root`` with (size, mtime_ns, file type): enough to see any write."""
    out: Snapshot = {}
    for path in _walk(root):
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, stat.S_IFMT(st.st_mode))
    return out


def snapshot_changes(before: Snapshot, after: Snapshot) -> list[str]:
    changes = [f"created {p}" for p in sorted(after.keys() - before.keys())]
    changes += [f"deleted {p}" for p in sorted(before.keys() - after.keys())]
    changes += [f"modified {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return changes


def set_read_only(root: Path, read_only: bool) -> None:
    """Remove (or give back) the write bits of ``root`` and everything below it."""
    paths = [root, *_walk(root)]
    if not read_only:
        paths.reverse()
    for path in paths:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        new = mode & ~0o222 if read_only else mode | 0o200
        if new != mode:
            path.chmod(new)


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            yield base / name
