"""Webhook secrets and signatures: creating secrets, signing bodies, verifying signatures.

Holds secrets, so: nothing here logs, and no error message contains a secret or a signature.

Headers on every webhook POST (``signature_headers``)::

    X-SM-Signature      sha256=<lowercase hex HMAC-SHA256(key=secret, msg=body)>
    X-SM-Event-Id       the event's id (stable across retries; receivers de-duplicate on it)
    X-SM-Timestamp      Unix seconds when this attempt was signed
    X-SM-Signature-V2   "v1,<base64 sig>" for each live secret, space-separated
    webhook-id          \\
    webhook-timestamp    > the same three values under the Standard Webhooks header names,
    webhook-signature   /  so the standardwebhooks libraries verify them unchanged

``X-SM-Signature`` is the reference's signature, checked by its Node.js snippet with
``timingSafeEqual`` over the whole header, so it carries exactly one signature, and the HMAC key
is the secret string exactly as shown to the customer (``whsec_...`` included, UTF-8) because
the snippet passes that string to ``createHmac``. During a rotation's grace period that one
signature is made with the *previous* secret (the oldest live one), so a receiver that knows a
single secret keeps verifying until the grace ends, and switches to the new secret then; after
the grace, and without a rotation, it is the current secret.

``X-SM-Signature-V2`` follows Standard Webhooks (https://www.standardwebhooks.com): the signed
content is ``{event_id}.{timestamp}.{body}``, so a replayed body with a new timestamp does not
verify and receivers can refuse stale timestamps. Its HMAC key is the base64-decoded part after
``whsec_`` (the Standard Webhooks rule; a secret whose tail is not base64 falls back to the
whole string's UTF-8 bytes). It carries one signature per live secret (current first, then
rotated-out secrets still in their grace period), so receivers keep verifying during rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
from collections.abc import Callable, Mapping, Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32

HEADER_SIGNATURE = "X-SM-Signature"
HEADER_EVENT_ID = "X-SM-Event-Id"
HEADER_TIMESTAMP = "X-SM-Timestamp"
HEADER_SIGNATURE_V2 = "X-SM-Signature-V2"
STD_HEADER_ID = "webhook-id"
STD_HEADER_TIMESTAMP = "webhook-timestamp"
STD_HEADER_SIGNATURE = "webhook-signature"

DEFAULT_TOLERANCE = 300.0
"""Seconds a V2 timestamp may differ from the receiver's clock (Standard Webhooks uses 5 min)."""

_EVENT_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_HEX_SIG = re.compile(r"sha256=[0-9a-f]{64}")


def new_secret(*, token_bytes: Callable[[int], bytes] = _secrets.token_bytes) -> str:
    """A fresh secret: ``whsec_`` + standard base64 of 32 random bytes (256 bits)."""
    raw = token_bytes(SECRET_BYTES)
    if len(raw) < SECRET_BYTES:
        raise ValueError("token source returned too few bytes")
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def _v2_key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        tail = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(tail + "==", validate=False)
        except (binascii.Error, ValueError):
            key = b""
        if key and base64.b64encode(key).decode("ascii").rstrip("=") == tail.rstrip("="):
            return key
    return secret.encode("utf-8")


def _check_secret(secret: str) -> None:
    if not isinstance(secret, str) or not secret:
        raise ValueError("a webhook secret must be a non-empty str")


def sign(body: bytes, secret: str) -> str:
    """The ``X-SM-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``body`` keyed by ``secret``."""
    _check_secret(secret)
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_v2(*, body: bytes, secret: str, event_id: str, timestamp: int) -> str:
    """One Standard Webhooks signature, ``v1,<base64>``, over ``{event_id}.{timestamp}.{body}``."""
    _check_secret(secret)
    content = f"{event_id}.{int(timestamp)}.".encode("ascii") + body
    digest = hmac.new(_v2_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    *, body: bytes, secrets: Sequence[str], event_id: str, timestamp: int
) -> dict[str, str]:
    """All signature headers for one attempt. ``secrets``: current first, then ones in grace;
    ``X-SM-Signature`` is made with the last (the oldest still live), V2 with each."""
    if isinstance(secrets, str) or not secrets:
        raise ValueError("secrets must be a non-empty sequence, current secret first")
    if not _EVENT_ID.fullmatch(event_id):
        raise ValueError("event_id must be 1-128 characters of [A-Za-z0-9_-]")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int (Unix seconds)")
    v2 = " ".join(
        sign_v2(body=body, secret=s, event_id=event_id, timestamp=timestamp) for s in secrets
    )
    ts = str(timestamp)
    return {
        HEADER_SIGNATURE: sign(body, secrets[-1]),
        HEADER_EVENT_ID: event_id,
        HEADER_TIMESTAMP: ts,
        HEADER_SIGNATURE_V2: v2,
        STD_HEADER_ID: event_id,
        STD_HEADER_TIMESTAMP: ts,
        STD_HEADER_SIGNATURE: v2,
    }


def verify(body: bytes, header: str, secrets: str | Sequence[str]) -> bool:
    """Whether ``header`` (an ``X-SM-Signature`` value) signs ``body`` with one of ``secrets``.

    Constant-time in the signature; a malformed header is simply False.
    """
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    if not isinstance(header, str) or not _HEX_SIG.fullmatch(header):
        return False
    given = header.encode("ascii")
    ok = False
    for secret in candidates:
        ok |= hmac.compare_digest(given, sign(body, secret).encode("ascii"))
    return ok


def verify_v2(
    *,
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether the V2 headers sign ``body`` with one of ``secrets`` and the timestamp is fresh.

    ``headers`` may use either spelling (``X-SM-*`` or ``webhook-*``), any case. ``now`` is the
    receiver's clock (Unix seconds); a timestamp more than ``tolerance`` away is refused.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    event_id = lower.get(HEADER_EVENT_ID.lower()) or lower.get(STD_HEADER_ID)
    ts_text = lower.get(HEADER_TIMESTAMP.lower()) or lower.get(STD_HEADER_TIMESTAMP)
    sig_text = lower.get(HEADER_SIGNATURE_V2.lower()) or lower.get(STD_HEADER_SIGNATURE)
    if not event_id or not ts_text or not sig_text or not _EVENT_ID.fullmatch(event_id):
        return False
    if not ts_text.isdigit() or len(ts_text) > 12:
        return False
    timestamp = int(ts_text)
    if abs(now - timestamp) > tolerance:
        return False
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [
        sign_v2(body=body, secret=s, event_id=event_id, timestamp=timestamp).encode("ascii")
        for s in candidates
    ]
    ok = False
    for given in sig_text.split():
        if not given.startswith("v1,"):
            continue
        for want in expected:
            ok |= hmac.compare_digest(given.encode("ascii", "replace"), want)
    return ok
