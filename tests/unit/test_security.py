from __future__ import annotations

import os
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from backend.security import (
    allowed_hosts,
    generate_token,
    host_allowed,
    origin_allowed,
    resolve_token,
    token_matches,
)


def test_generated_token_is_32_random_bytes_urlsafe() -> None:
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    for t in tokens:
        assert len(t) == 43 and all(c.isalnum() or c in "-_" for c in t)


def test_resolve_token_prefers_parent_env(tmp_path: Path) -> None:
    assert resolve_token("from-parent", tmp_path) == ("from-parent", None)
    assert not (tmp_path / "token").exists()


def test_generated_token_file_is_private(tmp_path: Path) -> None:
    token, path = resolve_token(None, tmp_path)
    assert path == tmp_path / "token"
    assert path.read_text() == token
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _ = resolve_token(None, tmp_path)
    assert again != token, "every start gets a fresh token"


@given(st.text(max_size=60))
def test_only_the_exact_bearer_token_matches(presented: str) -> None:
    token = "abcDEF123_-xyz"
    assert token_matches(f"Bearer {presented}", token) == (presented.strip() == token)


def test_token_header_forms() -> None:
    assert token_matches("bearer tok", "tok")
    assert not token_matches(None, "tok")
    assert not token_matches("Basic tok", "tok")
    assert not token_matches("Bearer", "tok")
    assert not token_matches("Bearer tok2", "tok")


def test_hosts() -> None:
    hosts = allowed_hosts(5000)
    assert host_allowed("127.0.0.1:5000", hosts)
    assert host_allowed("LOCALHOST:5000", hosts)
    for bad in (
        None,
        "127.0.0.1",
        "127.0.0.1:5001",
        "evil.example:5000",
        "localhost.evil.example:5000",
        "127.0.0.1:5000.evil",
        "[::1]:5000",
    ):
        assert not host_allowed(bad, hosts), bad


def test_origins() -> None:
    allow = ("app://*", "https://ui.example")
    assert origin_allowed("app://docsidecar", allow)
    assert origin_allowed("https://ui.example", allow)
    assert not origin_allowed("https://ui.example.evil", allow)
    assert not origin_allowed("http://localhost:3000", allow)
    assert not origin_allowed("null", allow)
    assert origin_allowed("null", ("null",))
    assert not origin_allowed("https://x.example", ("https://*",)), "http(s) wildcards are never honoured"
