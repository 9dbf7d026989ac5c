"""Token, Host and Origin rules (pure functions; the ASGI edge applies them).

Threat model: the API listens on loopback, so every local process and every web page the
user opens can reach it. Web pages are stopped three ways: they cannot learn the bearer token;
a DNS-rebinding page (evil.example resolving to 127.0.0.1) is refused by the Host check; and a
cross-origin page is refused by the Origin check (and, for reads, by the browser's CORS rules
because no Access-Control-Allow-Origin is sent to an origin outside the allow-list).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from pathlib import Path

from backend.osdeps.paths import write_private_file

TOKEN_FILENAME = "token"  # noqa: S105 - a file name, not a secret
LOCAL_HOSTNAMES = ("127.0.0.1", "localhost")


def generate_token() -> str:
    """32 random bytes, urlsafe base64 without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def resolve_token(env_token: str | None, data_dir: Path) -> tuple[str, Path | None]:
    """The parent's token if it set one, else a fresh token written to ``<data_dir>/token`` (0600).

    Returns the token and the file it was written to (None when it came from the parent).
    A fresh token is generated on every start so a token leaked from an earlier run is useless.
    """
    if env_token:
        return env_token, None
    token = generate_token()
    path = data_dir / TOKEN_FILENAME
    write_private_file(path, token.encode("ascii"))
    return token, path


def token_matches(header_value: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header value."""
    if not header_value:
        return False
    scheme, _, presented = header_value.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def allowed_hosts(port: int) -> frozenset[str]:
    """Host header values accepted for a server bound to 127.0.0.1:``port``."""
    return frozenset(f"{name}:{port}" for name in LOCAL_HOSTNAMES)


def host_allowed(host: str | None, hosts: frozenset[str]) -> bool:
    """True for an exact ``127.0.0.1:<port>``/``localhost:<port>`` (case-insensitive) Host."""
    return host is not None and host.lower() in hosts


def origin_allowed(origin: str, patterns: tuple[str, ...]) -> bool:
    """Whether a browser ``Origin`` is on the allow-list.

    Entries are exact origins (``https://app.example``), a scheme wildcard (``app://*``) or the
    literal ``null``. Wildcards never match ``http``/``https`` origins, so a typo cannot open
    the API to every website.
    """
    origin = origin.strip()
    for pattern in patterns:
        if pattern == origin:
            return True
        if pattern.endswith("://*"):
            scheme = pattern[: -len("://*")].lower()
            if scheme not in {"http", "https"} and origin.lower().startswith(scheme + "://"):
                return True
    return False
