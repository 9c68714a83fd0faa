"""VERP return paths: one signed envelope sender per (message, recipient).

Owns the address format ``b-<32 hex message id>-<recipient id base36>-<mac>@<return-path domain>``
and its verification. The local part is lower-case only (MTAs may case-fold it), at most 62
characters, and carries a 65-bit truncation of HMAC-SHA256 over a version label, the message id
and the recipient id (13 base32 characters), so a forged or altered bounce address is ignored.
The domain is not signed: renaming the return-path domain keeps old bounces valid as long as the
old domain is still listed in `domains`.

Recipient id 0 is the message-level token that multi-recipient transactions carried before every
recipient got a transaction of its own: it decodes (so a report can be attributed to its account)
but binds no recipient, because every recipient of that transaction held it.

Holds a secret: the secret is only used for HMAC and never appears in output, logs or errors.
Trusts nothing in the addresses it decodes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from relaygate.bounces.mimeparts import addresses

_PREFIX = "b-"
_LABEL = b"relaygate-verp-v1"
_MAC_CHARS = 13  # 13 base32 characters = 65 bits
_MAX_RECIPIENT_ID = 2**64 - 1
_MESSAGE_ID_RE = re.compile(r"^msg_([0-9a-f]{32})$")
_LOCAL_RE = re.compile(r"^b-([0-9a-f]{32})-([0-9a-z]{1,13})-([a-z2-7]{13})$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, kw_only=True)
class VerpRef:
    """The message and recipient a VERP address stands for."""

    message_id: str
    recipient_id: int


def _b36(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def _mac(secret: bytes, message_id: str, recipient_id: int) -> str:
    data = b"\x00".join((_LABEL, message_id.encode("ascii"), str(recipient_id).encode("ascii")))
    digest = hmac.new(secret, data, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_CHARS]


def _norm_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def encode(*, message_id: str, recipient_id: int, secret: bytes, domain: str) -> str:
    """The VERP return path for one recipient of one message.

    Raises ValueError for a message id that is not ``msg_`` + 32 lower-case hex characters, a
    recipient id outside [0, 2**64), an empty secret or an empty domain.
    """
    m = _MESSAGE_ID_RE.match(message_id)
    if m is None:
        raise ValueError("message_id must be 'msg_' followed by 32 lower-case hex characters")
    if isinstance(recipient_id, bool) or not 0 <= recipient_id <= _MAX_RECIPIENT_ID:
        raise ValueError("recipient_id must be an integer in [0, 2**64)")
    if not secret:
        raise ValueError("secret must not be empty")
    host = _norm_domain(domain)
    if not host:
        raise ValueError("domain must not be empty")
    local = f"{_PREFIX}{m.group(1)}-{_b36(recipient_id)}-{_mac(secret, message_id, recipient_id)}"
    return f"{local}@{host}"


def decode(address: str, *, secret: bytes, domains: Collection[str]) -> VerpRef | None:
    """The VerpRef an address stands for, or None if it is foreign, malformed or forged.

    The local part and domain are compared case-insensitively; a trailing dot on the domain and
    surrounding angle brackets are tolerated.
    """
    if not secret or not isinstance(address, str) or len(address) > 512:
        return None
    addr = address.strip().strip("<>").strip()
    local, sep, host = addr.rpartition("@")
    if not sep:
        return None
    allowed = {_norm_domain(d) for d in domains}
    if _norm_domain(host) not in allowed:
        return None
    m = _LOCAL_RE.match(local.lower())
    if m is None:
        return None
    hex_id, rid_text, mac = m.groups()
    recipient_id = int(rid_text, 36)
    if recipient_id > _MAX_RECIPIENT_ID or _b36(recipient_id) != rid_text:
        return None
    message_id = f"msg_{hex_id}"
    if not hmac.compare_digest(mac, _mac(secret, message_id, recipient_id)):
        return None
    return VerpRef(message_id=message_id, recipient_id=recipient_id)


def verified(
    candidates: Iterable[str], *, secret: bytes, domains: Collection[str]
) -> tuple[list[VerpRef], bool]:
    """The distinct references among ``candidates`` that verify, in order, and whether any
    candidate had the shape of a VERP address at one of ``domains`` but did not verify (forged,
    altered, or signed with another secret). Each candidate may be a bare address or a header
    value holding addresses."""
    found: list[VerpRef] = []
    bad = False
    allowed = {_norm_domain(d) for d in domains}
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate:
            continue
        for addr in dict.fromkeys([candidate, *addresses(candidate)]):
            ref = decode(addr, secret=secret, domains=domains)
            if ref is not None:
                if ref not in found:
                    found.append(ref)
            elif _looks_like(addr, allowed):
                bad = True
    return found, bad


def _looks_like(address: str, allowed: set[str]) -> bool:
    local, sep, host = address.strip().strip("<>").strip().rpartition("@")
    return bool(sep) and _norm_domain(host) in allowed and local.lower().startswith(_PREFIX)
