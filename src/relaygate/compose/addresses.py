"""Mailbox parsing (placeholder until the full compose module lands)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr


class AddressError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Mailbox:
    display_name: str
    addr_spec: str


_ADDR = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def parse_mailbox(value: str) -> Mailbox:
    if not isinstance(value, str) or not value.strip():
        raise AddressError("address is empty")
    if any(ch in value for ch in "\r\n\x00"):
        raise AddressError(f"address {value!r} contains a line break or NUL")
    name, addr = parseaddr(value)
    if not addr or not _ADDR.match(addr) or len(addr) > 254:
        raise AddressError(f"{value!r} is not a valid email address")
    return Mailbox(display_name=name, addr_spec=addr)


def domain_of(addr_spec: str) -> str:
    return addr_spec.rpartition("@")[2].lower()
