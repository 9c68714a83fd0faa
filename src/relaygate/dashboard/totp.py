"""Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): the dashboard's optional
second factor. Thirty-second steps, six digits, HMAC-SHA1 — what every authenticator app speaks.

Trust: the secret is the user's second factor; it is shown once (when set up) and never logged.
A code is accepted for the current step and one step either side (clock drift), and each step
only once per user (``TotpGuard``), so a code read over a shoulder is worthless a moment later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import threading
import urllib.parse

__all__ = ["STEP", "TotpGuard", "code_at", "new_secret", "otpauth_uri", "verify"]

STEP = 30
DIGITS = 6


def new_secret() -> str:
    """160 random bits in base32 (RFC 4226's recommended length), without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    text = secret.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int) -> str:
    """RFC 4226 §5.3: dynamic truncation of HMAC-SHA1(key, counter)."""
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def code_at(secret: str, when: float) -> str:
    return hotp(_key(secret), int(when // STEP))


def verify(secret: str, code: str, when: float, *, drift: int = 1) -> int | None:
    """The time step ``code`` is valid for (now ± ``drift`` steps), or None."""
    digits = code.strip().replace(" ", "")
    if not secret or len(digits) != DIGITS or not digits.isdigit():
        return None
    try:
        key = _key(secret)
    except ValueError:
        return None
    now = int(when // STEP)
    for step in range(now - drift, now + drift + 1):
        if hmac.compare_digest(hotp(key, step), digits):
            return step
    return None


def otpauth_uri(secret: str, *, account: str, issuer: str = "relaygate") -> str:
    """The ``otpauth://`` URI authenticator apps import (Key Uri Format)."""
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode({"secret": secret, "issuer": issuer})
    return f"otpauth://totp/{label}?{query}"


class TotpGuard:
    """Remembers the last step used per user, so one code signs in once (RFC 6238 §5.2)."""

    def __init__(self, max_users: int = 10_000) -> None:
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()
        self._max = max_users

    def accept(self, user_id: int, step: int) -> bool:
        with self._lock:
            if self._last.get(user_id, -1) >= step:
                return False
            if len(self._last) >= self._max:
                self._last.pop(next(iter(self._last)))
            self._last[user_id] = step
            return True
