"""The DNS side of a DKIM key: record name, TXT value, its character-strings, the zone-file line.

Pure functions of a DkimKey (public material only). ``record_matches`` compares a TXT value read
from DNS (untrusted text) with the key we hold, tolerating the whitespace and tag order that DNS
providers and RFC 6376 tag-lists allow.
"""

from __future__ import annotations

import re

from relaygate.dkim.keys import DkimKey

TXT_STRING_LIMIT = 255
"""A DNS TXT character-string holds at most 255 bytes (RFC 1035 §3.3)."""


def dns_name(key: DkimKey) -> str:
    """The name the key is published under: ``<selector>._domainkey.<domain>``."""
    return f"{key.selector}._domainkey.{key.domain}"


def dkim_txt_value(key: DkimKey) -> str:
    """The TXT record value, e.g. ``v=DKIM1; k=rsa; p=MIIBIjANBg...``."""
    return f"v=DKIM1; k={key.algorithm}; p={key.public_key_b64}"


def split_txt(value: str, limit: int = TXT_STRING_LIMIT) -> list[str]:
    """``value`` cut into character-strings of at most ``limit`` bytes (UTF-8), in order.

    Joining the pieces gives ``value`` back; a multi-byte character is never cut in two.
    An empty value is one empty string.
    """
    if not 1 <= limit <= TXT_STRING_LIMIT:
        raise ValueError(f"limit must be between 1 and {TXT_STRING_LIMIT}, not {limit}")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in value:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    chunks.append("".join(current))
    return chunks


def zone_file_line(key: DkimKey, *, ttl: int = 3600) -> str:
    """The record in BIND zone-file form, one line, value split into quoted strings.

    e.g. ``sel._domainkey.example.com. 3600 IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...AQAB"``
    """
    if ttl < 0:
        raise ValueError("ttl must not be negative")
    strings = " ".join(_quote(part) for part in split_txt(dkim_txt_value(key)))
    return f"{dns_name(key)}. {ttl} IN TXT {strings}"


def record_matches(txt_value: str, key: DkimKey) -> bool:
    """Whether a published TXT value (character-strings already joined) publishes ``key``.

    Tags may come in any order with any whitespace; ``k=`` defaults to rsa (RFC 6376 §3.6.1);
    a ``v=`` tag, if present, must be ``DKIM1``; the ``p=`` value is compared without whitespace.
    """
    tags: dict[str, str] = {}
    for part in txt_value.split(";"):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        if not sep:
            return False
        tags[name.strip()] = val.strip()
    if tags.get("v", "DKIM1") != "DKIM1":
        return False
    if tags.get("k", "rsa") != key.algorithm:
        return False
    return re.sub(r"\s+", "", tags.get("p", "")) == key.public_key_b64


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
