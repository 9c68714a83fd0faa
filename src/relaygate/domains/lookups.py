"""DNS lookups for domain checks (TXT, MX), and the one place their dnspython errors are translated.

Trusts nothing it reads: TXT character-strings are decoded leniently (invalid UTF-8 is replaced),
and answers are only compared with what relaygate expects, never executed or followed beyond the
CNAME chain the resolver itself follows. A name that does not exist (NXDOMAIN) or has no record of
the type asked (NoAnswer) is simply "no records"; SERVFAIL, timeouts and network errors are a
``DnsTemporaryFailure`` (the caller leaves state unchanged and tries again later).
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from relaygate.errors import TransientError

Resolver = dns.asyncresolver.Resolver


class DnsTemporaryFailure(TransientError):
    """A lookup failed in a way that may work later (SERVFAIL, timeout, network)."""

    def __init__(self, name: str, rtype: str, why: str) -> None:
        self.name = name
        self.rtype = rtype
        self.why = why
        super().__init__(f"temporary DNS failure: {name} {rtype}: {why}")


def _translate(exc: BaseException, name: str, rtype: str) -> DnsTemporaryFailure | None:
    """None for "no records" (NXDOMAIN, NoAnswer, an impossible name); else the failure."""
    if isinstance(exc, dns.resolver.NXDOMAIN | dns.resolver.NoAnswer):
        return None
    if isinstance(
        exc,
        dns.name.NameTooLong
        | dns.name.LabelTooLong
        | dns.name.EmptyLabel
        | dns.name.BadEscape
        | dns.name.IDNAException
        | UnicodeError,
    ):
        return None  # such a name cannot hold a record
    if isinstance(exc, dns.resolver.NoNameservers):
        return DnsTemporaryFailure(name, rtype, "SERVFAIL")
    if isinstance(exc, dns.exception.Timeout):
        return DnsTemporaryFailure(name, rtype, "timed out")
    if isinstance(exc, dns.exception.DNSException | OSError):
        return DnsTemporaryFailure(name, rtype, type(exc).__name__)
    raise exc  # not a DNS problem: a bug, let it surface


async def _resolve(resolver: Resolver, name: str, rtype: str) -> dns.resolver.Answer | None:
    try:
        return await resolver.resolve(name, rtype, search=False)
    except (dns.exception.DNSException, UnicodeError, OSError) as exc:
        failure = _translate(exc, name, rtype)
        if failure is None:
            return None
        raise failure from exc


async def txt(resolver: Resolver, name: str) -> list[str]:
    """The TXT records at ``name`` (after CNAMEs), each record's character-strings joined."""
    answer = await _resolve(resolver, name, "TXT")
    if answer is None:
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


async def mx(resolver: Resolver, name: str) -> list[tuple[int, str]]:
    """The MX records at ``name`` as (preference, exchange without the final dot, lower case)."""
    answer = await _resolve(resolver, name, "MX")
    if answer is None:
        return []
    return sorted(
        (int(r.preference), r.exchange.to_text(omit_final_dot=True).lower()) for r in answer
    )
