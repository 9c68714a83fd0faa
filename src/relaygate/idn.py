"""The one domain normaliser: every domain and address relaygate compares, stores or sends.

Owns the canonical form of a domain: UTS-46 mapping with the IDNA-2008 rules (non-transitional,
via the ``idna`` package), A-labels, lower case, no trailing dot. ``straße.de`` is
``xn--strae-oqa.de`` (IDNA-2008 keeps ß; Python's own ``"idna"`` codec is IDNA-2003 and would
make it ``strasse.de``, another domain), ``Bücher.Example`` is ``xn--bcher-kva.example``, final
sigma is kept. An address is canonical when its domain is: the local part is the owner's and is
kept as written (compared case-insensitively where relaygate compares addresses).

Used on every path: HTTP and SMTP admission, suppressions, message search, webhook host checks,
DKIM key lookup and the envelope relaygate sends (outbound SMTP speaks A-labels; only a
non-ASCII local part needs SMTPUTF8).

Trusts nothing: any string in; ``ValueError`` with a sentence naming the problem out.
"""

from __future__ import annotations

import re

import idna

_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

__all__ = ["address_key", "ascii_address", "ascii_domain"]


def ascii_domain(domain: str) -> str:
    """``domain`` in its canonical A-label form, or ValueError saying why it is not a domain."""
    value = domain.strip()
    if value.endswith(".") and not value.endswith(".."):
        value = value[:-1]
    if not value:
        raise ValueError("empty domain")
    if value.isascii():
        lowered = value.lower()
        for label in lowered.split("."):
            if not _ASCII_LABEL.fullmatch(label):
                raise ValueError(f"domain label {label!r} of {value!r} is not a DNS label")
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except (idna.IDNAError, UnicodeError):
                    raise ValueError(f"domain label {label!r} is not a valid A-label") from None
        return lowered
    try:
        return idna.encode(value, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"{value!r} is not a valid internationalised domain: {exc}") from None


def ascii_address(address: str) -> str:
    """``local@domain`` with the domain canonical and the local part as written."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        raise ValueError(f"{address!r} is not an address (local@domain)")
    return f"{local}@{ascii_domain(domain)}"


def address_key(address: str) -> str:
    """The form addresses are compared and keyed in (suppressions, identities): canonical and
    lower case. ValueError when it is not an address."""
    return ascii_address(address).lower()
