"""Mailboxes: parsing one address a client gave us, and the domain it belongs to.

Owns the rules for what relaygate accepts as an address in ``from_email``, ``to``, ``cc``,
``bcc`` and ``reply_to``: either a bare ``addr-spec`` (``a@example.com``) or a name-addr
(``Name <a@example.com>`` / ``"Name" <a@example.com>``), one address per string.

Trusts nothing: every input comes from an HTTP client. Anything that does not parse raises
:class:`AddressError` (a ``ValueError``) whose message names the problem; nothing else escapes.

Deliberately stricter than RFC 5322, because every address here ends up in an SMTP envelope:

* the local part is a dot-atom of printable ASCII (no quoted local parts, no SMTPUTF8 local
  parts), at most 64 octets;
* the domain is a host name of at least two labels; internationalised (U-label) domains are
  accepted, validated with IDNA 2008 (UTS 46 mapping) and kept as given, the A-label form is
  available from :attr:`Mailbox.ascii_addr_spec` and :func:`domain_of`; no address literals;
* the whole address is at most 254 octets (in its A-label form);
* no comments, no groups, no obsolete syntax, no control characters anywhere;
* the display name may be any Unicode text without control characters (at most 256
  characters); its whitespace is normalised (runs of whitespace, including tabs and no-break
  spaces, become one space; leading and trailing whitespace is dropped), which is how RFC 5322
  readers treat a phrase anyway; unquoted it may not contain ``<>@,;:"[]()\\``, quoted it may contain anything
  (``\\"`` and ``\\\\`` are unescaped).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import idna

from relaygate.errors import PermanentError
from relaygate.idn import ascii_domain

__all__ = ["AddressError", "Mailbox", "domain_of", "parse_mailbox"]

MAX_ADDRESS_OCTETS = 254
MAX_LOCAL_OCTETS = 64
MAX_DISPLAY_NAME_CHARS = 256

# RFC 5322 atext, used for dot-atom local parts.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL_RE = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_LDH_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_UNQUOTED_NAME_FORBIDDEN = set('<>@,;:"[]()\\')
_WHITESPACE_RE = re.compile(r"\s")  # exactly the characters for which str.isspace() is true


class AddressError(PermanentError, ValueError):
    """An address is not acceptable. ``detail`` says why, naming the address."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True, kw_only=True)
class Mailbox:
    """One parsed address: an optional display name and the ``local@domain`` addr-spec.

    ``addr_spec`` keeps the domain as the client gave it (possibly a U-label);
    :attr:`ascii_addr_spec` is the form for SMTP envelopes and message headers.
    """

    display_name: str
    addr_spec: str

    @property
    def local_part(self) -> str:
        return self.addr_spec.rpartition("@")[0]

    @property
    def domain(self) -> str:
        """The domain as given (case preserved, possibly non-ASCII)."""
        return self.addr_spec.rpartition("@")[2]

    @property
    def ascii_addr_spec(self) -> str:
        """``local@domain`` with the domain in A-label (punycode) form, case preserved."""
        local, _, domain = self.addr_spec.rpartition("@")
        if domain.isascii():
            return self.addr_spec
        return f"{local}@{_to_ascii(domain)}"


def _shown(value: str) -> str:
    """The value as quoted in an error message: repr-ish, bounded."""
    text = value if len(value) <= 80 else value[:77] + "..."
    return repr(text)


def _check_characters(value: str, what: str) -> None:
    if value.isprintable():  # no Cc, Cs, Zl or Zp character, so nothing to refuse
        return
    for ch in value:
        if ch in "\r\n":
            raise AddressError(f"{what} contains a line break")
        cat = unicodedata.category(ch)
        if cat == "Cc" and ch != "\t":
            raise AddressError(f"{what} contains the control character U+{ord(ch):04X}")
        if cat in ("Cs", "Zl", "Zp"):
            raise AddressError(f"{what} contains the invalid character U+{ord(ch):04X}")


def _to_ascii(domain: str) -> str:
    """A-label form of an already validated domain (``relaygate.idn``, the one normaliser)."""
    return ascii_domain(domain)


def _validate_domain(domain: str, address: str) -> str:
    """Validate ``domain`` and return its lowercase A-label form."""
    where = f"in address {_shown(address)}"
    if not domain:
        raise AddressError(f"missing domain after '@' {where}")
    if domain.startswith("["):
        raise AddressError(f"address literals are not accepted {where}")
    if domain.endswith("."):
        raise AddressError(f"domain {_shown(domain)} must not end with a dot {where}")
    if domain.isascii():
        labels = domain.split(".")
        for label in labels:
            if not label:
                raise AddressError(f"domain {_shown(domain)} has an empty label {where}")
            if not _LDH_LABEL_RE.match(label):
                raise AddressError(
                    f"domain label {_shown(label)} is invalid {where}: labels are 1-63 "
                    "letters, digits or hyphens, not starting or ending with a hyphen"
                )
            if label[2:4] == "--" and label[:4].lower() == "xn--":
                try:
                    idna.decode(label)
                except (idna.IDNAError, UnicodeError):
                    raise AddressError(
                        f"domain label {_shown(label)} is not a valid IDNA A-label {where}"
                    ) from None
    else:
        try:
            a_labels = ascii_domain(domain)
        except ValueError as exc:
            raise AddressError(f"{exc} {where}") from None
        labels = a_labels.split(".")
        return _check_labels(domain, labels, a_labels, where)
    return _check_labels(domain, labels, domain.lower(), where)


def _check_labels(domain: str, labels: list[str], a_labels: str, where: str) -> str:
    if len(labels) < 2:
        raise AddressError(f"domain {_shown(domain)} needs at least two labels {where}")
    if labels[-1].isdigit():
        raise AddressError(f"domain {_shown(domain)} has a numeric top-level label {where}")
    if len(a_labels) > 253:
        raise AddressError(f"domain {_shown(domain)} is longer than 253 octets {where}")
    return a_labels


def _validate_addr_spec(addr: str, original: str) -> str:
    where = f"in address {_shown(original)}"
    if not addr:
        raise AddressError(f"empty address in {_shown(original)}")
    if _WHITESPACE_RE.search(addr):
        raise AddressError(f"address {_shown(addr)} contains whitespace")
    if addr.count("@") == 0:
        raise AddressError(f"address {_shown(addr)} has no '@'")
    if addr.count("@") > 1:
        raise AddressError(f"address {_shown(addr)} has more than one '@'")
    local, _, domain = addr.partition("@")
    if not local:
        raise AddressError(f"address {_shown(addr)} has an empty local part")
    if local.startswith('"'):
        raise AddressError(f"quoted local parts are not accepted {where}")
    if not local.isascii():
        raise AddressError(f"non-ASCII local part {_shown(local)} is not accepted {where}")
    if len(local) > MAX_LOCAL_OCTETS:
        raise AddressError(f"local part is longer than {MAX_LOCAL_OCTETS} octets {where}")
    if not _LOCAL_RE.match(local):
        if local.startswith(".") or local.endswith(".") or ".." in local:
            raise AddressError(
                f"local part {_shown(local)} has a misplaced dot {where} "
                "(no leading, trailing or consecutive dots)"
            )
        bad = next(ch for ch in local if ch != "." and not re.match(rf"[{_ATEXT}]", ch))
        raise AddressError(f"local part {_shown(local)} contains {bad!r} {where}")
    ascii_domain = _validate_domain(domain, original)
    if len(local) + 1 + len(ascii_domain) > MAX_ADDRESS_OCTETS:
        raise AddressError(f"address is longer than {MAX_ADDRESS_OCTETS} octets {where}")
    return addr


def _unquote_name(quoted: str, original: str) -> tuple[str, str]:
    """Split a leading quoted-string off ``quoted``; return (unescaped text, remainder)."""
    out: list[str] = []
    i = 1
    n = len(quoted)
    while i < n:
        ch = quoted[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(quoted[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), quoted[i + 1 :]
        out.append(ch)
        i += 1
    raise AddressError(f"unterminated quoted display name in {_shown(original)}")


def _parse_display_name(raw: str, original: str) -> str:
    raw = raw.strip(" \t")
    if not raw:
        return ""
    if raw.startswith('"'):
        quoted, rest = _unquote_name(raw, original)
        if rest.strip(" \t"):
            raise AddressError(
                f"unexpected text {_shown(rest.strip())} after the quoted display name "
                f"in {_shown(original)}"
            )
        name = " ".join(quoted.split())
    else:
        bad = sorted(set(raw) & _UNQUOTED_NAME_FORBIDDEN)
        if bad:
            if "," in bad or ";" in bad:
                raise AddressError(
                    f"{_shown(original)} looks like more than one address (found "
                    f"{bad[0]!r}); give one address per string, or quote the display name"
                )
            raise AddressError(
                f"display name in {_shown(original)} contains {bad[0]!r}; quote the display name"
            )
        name = " ".join(raw.split())
    if len(name) > MAX_DISPLAY_NAME_CHARS:
        raise AddressError(
            f"display name is longer than {MAX_DISPLAY_NAME_CHARS} characters in {_shown(original)}"
        )
    return name


def parse_mailbox(value: str) -> Mailbox:
    """Parse one address (``a@b.c``, ``Name <a@b.c>`` or ``"Name" <a@b.c>``).

    Surrounding spaces and tabs are ignored. Raises :class:`AddressError` for anything else.
    Results are cached (a sender's address recurs on every request); refusals are not.
    """
    if not isinstance(value, str):
        raise AddressError(f"an address must be a string, not {type(value).__name__}")
    return _parse_mailbox(value)


@functools.lru_cache(maxsize=4096)
def _parse_mailbox(value: str) -> Mailbox:
    _check_characters(value, f"address {_shown(value)}")
    text = value.strip(" \t")
    if not text:
        raise AddressError("empty address")
    if len(text) > MAX_ADDRESS_OCTETS + MAX_DISPLAY_NAME_CHARS * 2 + 8:
        raise AddressError(f"address {_shown(text)} is too long")
    if text.endswith(">"):
        lt = text.rfind("<")
        if lt < 0:
            raise AddressError(f"unmatched '>' in {_shown(value)}")
        name = _parse_display_name(text[:lt], value)
        addr = text[lt + 1 : -1].strip(" \t")
        if "<" in addr or ">" in addr:
            raise AddressError(f"unexpected angle bracket in {_shown(value)}")
        return Mailbox(display_name=name, addr_spec=_validate_addr_spec(addr, value))
    if "<" in text or ">" in text:
        raise AddressError(f"unbalanced angle brackets in {_shown(value)}")
    if "," in text or ";" in text:
        raise AddressError(f"{_shown(value)} contains more than one address; give one per string")
    if "(" in text or ")" in text:
        raise AddressError(f"comments are not accepted in addresses ({_shown(value)})")
    if '"' in text:
        raise AddressError(f"quoted local parts are not accepted in address {_shown(value)}")
    return Mailbox(display_name="", addr_spec=_validate_addr_spec(text, value))


def domain_of(addr_spec: str) -> str:
    """The domain of ``local@domain``, lowercased, in A-label (ASCII) form.

    This is the canonical form for comparisons (verified domains), DNS lookups and DKIM.
    Raises :class:`AddressError` when the address is not valid.
    """
    if not isinstance(addr_spec, str):
        raise AddressError(f"an address must be a string, not {type(addr_spec).__name__}")
    return _domain_of(addr_spec)


@functools.lru_cache(maxsize=4096)
def _domain_of(addr_spec: str) -> str:
    _check_characters(addr_spec, f"address {_shown(addr_spec)}")
    _validate_addr_spec(addr_spec, addr_spec)
    return _validate_domain(addr_spec.rpartition("@")[2], addr_spec)
