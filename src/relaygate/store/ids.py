"""Identifiers and secrets every backend makes the same way."""

from __future__ import annotations

import hashlib
import secrets

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def hash_secret(secret: str) -> str:
    """How an API key secret is kept: SHA-256 (the secrets are 190+ bits of randomness, so a
    fast hash is right)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key_secret() -> str:
    return "sk_live_" + "".join(secrets.choice(_B62) for _ in range(40))


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(16)


def new_inbound_id() -> str:
    return "in_" + secrets.token_hex(12)


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(8)


def delivery_ref(delivery_id: int) -> str:
    """How a webhook delivery id is shown: ``whd_<n>``."""
    return f"whd_{delivery_id}"


def parse_delivery_ref(text: str) -> int | None:
    """``whd_12`` or ``12`` → 12; anything else → None."""
    raw = text[4:] if text.startswith("whd_") else text
    return int(raw) if raw.isdigit() else None
