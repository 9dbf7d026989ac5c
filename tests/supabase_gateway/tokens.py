"""HS256 JWTs as Supabase issues them, checked against the gateway's (movable) clock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt


@dataclass
class Clock:
    """Wall clock plus an offset that tests can advance (token expiry, reuse windows)."""

    offset_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        with self._lock:
            return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset_s += seconds


class TokenError(Exception):
    """A token that cannot be used; ``expired`` distinguishes PGRST303 from PGRST301."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


@dataclass(frozen=True)
class Tokens:
    secret: str
    clock: Clock

    def encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def decode(self, token: str) -> dict[str, Any]:
        """Verify signature and expiry (by the gateway clock); audience is not enforced."""
        if token.count(".") != 2:
            raise TokenError(f"Expected 3 parts in JWT; got {token.count('.') + 1}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenError("No suitable key or wrong key type") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"JWT cryptographic operation failed: {exc}") from exc
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or exp <= self.clock.now()):
            raise TokenError("JWT expired", expired=True)
        return claims

    def api_key(self, role: str) -> str:
        """A long-lived project API key (the anon / service_role keys of a Supabase project)."""
        now = int(self.clock.now())
        return self.encode({"iss": "supabase-demo", "role": role, "iat": now, "exp": now + 10 * 365 * 86400})
