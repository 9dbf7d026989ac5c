"""Extractors standing in for pathological files (module-level: they are pickled into the
extraction child process). A file whose name contains ``hang`` never finishes (as an extractor
stuck in a pathological PDF would); ``crash`` kills the child as a segfault in a native library
would; anything else goes to the real extractor."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from backend.ingest.extract import ExtractedDocument, extract_file
from backend.ingest.limits import ExtractLimits


def extract_or_misbehave(path: Path, limits: ExtractLimits, *, name: str | None = None) -> ExtractedDocument:
    label = name or path.name
    if "hang" in label:
        time.sleep(3600)
    if "crash" in label:
        os.kill(os.getpid(), signal.SIGSEGV)
    return extract_file(path, limits, name=name)
