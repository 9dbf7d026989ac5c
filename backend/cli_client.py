"""Finding and calling a running sidecar from the CLI (token file + instance.json)."""

from __future__ import annotations

from pathlib import Path

import httpx

from backend.security import TOKEN_FILENAME
from backend.server import read_instance


def running_client(data_dir: Path, timeout: float = 30.0) -> httpx.Client | None:
    """An authenticated client for the sidecar running on ``data_dir``, or None if none is."""
    instance = read_instance(data_dir)
    if not instance:
        return None
    try:
        token = (data_dir / TOKEN_FILENAME).read_text(encoding="ascii").strip()
    except OSError:
        return None
    base_url = f"http://127.0.0.1:{instance['port']}"
    try:  # a separate request: a client that already sent one cannot be used in `with` any more
        httpx.get(f"{base_url}/v1/health", timeout=timeout).raise_for_status()
    except httpx.HTTPError:
        return None
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
