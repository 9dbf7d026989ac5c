"""Build a model file from a pinned source file at fetch time (``[files.derive]`` in a manifest).

Recipe ``onnx-dynamic-int8`` turns a weight-only int8 ONNX graph (int8 weights that are cast
back to fp32 before an fp32 ``MatMul``, which runs no faster than fp32) into a dynamically
quantised graph whose matrix products run in int8 (``MatMulInteger`` / ``DynamicQuantizeMatMul``,
VNNI / AVX2 / NEON dot-product kernels in onnxruntime):

1. onnxruntime's *basic* (hardware-independent) graph optimisations fold the weight
   dequantisation into fp32 constants; the optimised graph is saved;
2. ``onnxruntime.quantization.quantize_dynamic`` with int8 weights, **per output channel**
   (per-tensor scales lose too much: sentence vectors fall to cosine ~0.97 against fp32;
   per-channel keeps them ≥ 0.99, see ``tests/embed/test_golden.py``).

Both steps are deterministic for pinned onnx / onnxruntime versions, so the output is pinned by
sha256 in the manifest like any downloaded file and verified before it is installed. Runs only
in ``docsidecar models fetch`` (a development / build step); the ``onnx`` package it needs is a
build-time dependency, never imported by the running sidecar.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from backend.embed.errors import ModelFetchFailed

PINNED_TOOLS = {"onnx": "1.23.2", "onnxruntime": "1.32.0"}
"""The versions whose output the manifests' sha256 values were computed with."""


def tool_versions() -> dict[str, str]:
    """Installed versions of the tools a recipe depends on (``missing`` when absent)."""
    out = {}
    for name in PINNED_TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def derive_file(recipe: str, source: Path, dest: Path, tmp: Path) -> None:
    """Write ``dest`` from ``source`` with ``recipe``; ``tmp`` holds intermediates."""
    if recipe != "onnx-dynamic-int8":
        raise ModelFetchFailed(f"unknown derivation recipe {recipe!r}")
    _onnx_dynamic_int8(source, dest, tmp)


def _onnx_dynamic_int8(source: Path, dest: Path, tmp: Path) -> None:
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelFetchFailed(
            f"building {dest.name} needs the `onnx` package ({exc}); "
            f"install onnx=={PINNED_TOOLS['onnx']} (it is in the project's dev dependencies)",
            detail={"needs": PINNED_TOOLS},
        ) from exc
    folded = tmp / f"{dest.name}.fp32"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    quant_log = logging.getLogger()  # quantize_dynamic warns on the root logger about pre-processing
    level = quant_log.level
    quant_log.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(folded), str(dest), weight_type=QuantType.QInt8, per_channel=True)
    except Exception as exc:  # onnx / onnxruntime raise many types; the message is what matters
        raise ModelFetchFailed(f"quantising {source.name} failed: {exc}") from exc
    finally:
        quant_log.setLevel(level)
        folded.unlink(missing_ok=True)
