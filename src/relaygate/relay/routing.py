"""Where mail for a domain goes: MX lookup over DNS, a fixed smarthost, or local capture.

The only importer of dnspython on the delivery path: every dnspython exception is translated
here, into ``RouteFailed`` (permanent: bounce) or ``RouteDeferred`` (transient: retry), each
carrying an RFC 3463 enhanced ``status`` and a ``diagnostic`` text in Postfix's wording:

    NXDOMAIN for the domain                     RouteFailed   5.1.2  (hostunknown)
    malformed domain name                       RouteFailed   5.1.2
    null MX ``0 .`` (RFC 7505)                  RouteFailed   5.1.10
    no MX and no A/AAAA                         RouteFailed   5.4.4
    SERVFAIL, timeout, no nameserver answered   RouteDeferred 4.4.3

MX hosts come back in try-order: ascending preference, equal preferences shuffled with the
injected ``rng`` (RFC 5321 §5.1). A domain without MX records but with an address is its own
implicit MX. A null MX mixed with real MX records is ignored and the real ones are used (RFC 7505
leaves that case undefined; delivering beats bouncing on a misconfiguration that still names a
host). Address lookups return IPv4 first, then IPv6.

It trusts the DNS answers it gets (no DNSSEC) and the configuration given to it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from relaygate.errors import DeliveryDeferred, DeliveryFailed, RelaygateError
from relaygate.relay.tlspolicy import TlsMode, TlsPolicies, TlsPolicy

# -- errors ----------------------------------------------------------------------------------------


class RouteError(RelaygateError):
    """No route now: ``status`` is the enhanced status code, ``diagnostic`` the reason."""

    def __init__(self, status: str, diagnostic: str) -> None:
        self.status = status
        self.diagnostic = diagnostic
        super().__init__(f"{status} {diagnostic}")


class RouteDeferred(RouteError, DeliveryDeferred):
    """DNS trouble that may clear up: defer the recipients."""


class RouteFailed(RouteError, DeliveryFailed):
    """The domain cannot receive mail: bounce the recipients."""


# -- DNS -------------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def _translate(exc: BaseException, name: str, rtype: str) -> RouteError:
    """The one place a dnspython (or resolver-side) exception becomes a relaygate error."""
    where = f"Name service error for name={name} type={rtype}"
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return RouteFailed("5.1.2", f"Host or domain name not found. {where}: Host not found")
    if isinstance(exc, dns.resolver.NoNameservers):
        return RouteDeferred(
            "4.4.3", f"Host or domain name not found. {where}: Host not found, try again"
        )
    if isinstance(exc, dns.exception.Timeout):
        return RouteDeferred("4.4.3", f"Host or domain name not found. {where}: timed out")
    if isinstance(
        exc, dns.name.NameTooLong | dns.name.LabelTooLong | dns.name.EmptyLabel | dns.name.BadEscape
    ):
        return RouteFailed("5.1.2", f"Bad domain name syntax: {name}")
    if isinstance(exc, dns.name.IDNAException | UnicodeError):
        return RouteFailed("5.1.2", f"Bad domain name syntax: {name}")
    if isinstance(exc, dns.exception.DNSException | OSError):
        return RouteDeferred(
            "4.4.3", f"Host or domain name not found. {where}: {type(exc).__name__}"
        )
    raise exc  # not a DNS problem: a bug, let it surface


async def _query(
    resolver: dns.asyncresolver.Resolver, name: str, rtype: str
) -> dns.resolver.Answer | None:
    """The answer, None for NoAnswer (name exists, no records of that type), or a RouteError."""
    try:
        return await resolver.resolve(name, rtype, search=False)
    except dns.resolver.NoAnswer:
        return None
    except (dns.exception.DNSException, UnicodeError, OSError) as exc:
        raise _translate(exc, name, rtype) from exc


def _ip_literal(host: str) -> str | None:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


async def resolve_addresses(
    host: str, resolver: dns.asyncresolver.Resolver, *, ipv6: bool = True
) -> list[str]:
    """A then AAAA addresses of ``host`` (an IP literal is returned as is).

    Empty when the name exists without addresses. Raises RouteFailed (5.1.2) when the name does
    not exist, RouteDeferred (4.4.3) when a lookup failed and the other found nothing.
    """
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    name = _norm(host)
    rtypes = ["A", "AAAA"] if ipv6 else ["A"]
    results = await asyncio.gather(
        *(_query(resolver, name, rtype) for rtype in rtypes), return_exceptions=True
    )
    addresses: list[str] = []
    errors: list[RouteError] = []
    for result in results:
        if isinstance(result, RouteError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
        elif result is not None:
            addresses.extend(str(rr.address) for rr in result)
    if addresses:
        return list(dict.fromkeys(addresses))
    if errors:
        # a transient error wins over NXDOMAIN: one of the two lookups may yet succeed
        transient = [e for e in errors if isinstance(e, RouteDeferred)]
        raise transient[0] if transient else errors[0]
    return []


MxCache = dict[str, tuple[float, list[tuple[int, str]]]]
"""domain → (expiry as ``time.time()``, its real MX records): answers kept for their TTL."""


async def resolve_mx(
    domain: str,
    resolver: dns.asyncresolver.Resolver,
    *,
    rng: random.Random,
    cache: MxCache | None = None,
) -> list[str]:
    """MX host names of ``domain`` in try-order (see the module docstring for errors).

    With ``cache``, a domain's MX records are kept until their TTL runs out, so the next
    message to it skips the resolver (the try-order is still shuffled per call); failures and
    implicit MX answers are not kept.
    """
    name = _norm(domain)
    if not name:
        raise RouteFailed("5.1.2", "Bad domain name syntax: empty domain")
    literal = _ip_literal(domain)
    if literal is not None:
        return [literal]
    if cache is not None:
        hit = cache.get(name)
        if hit is not None and hit[0] > time.time():
            return order_hosts(hit[1], rng)
    answer = await _query(resolver, name, "MX")
    if answer is None:
        addresses = await resolve_addresses(name, resolver)
        if not addresses:
            raise RouteFailed(
                "5.4.4",
                f"Host or domain name not found. Name service error for name={name} "
                "type=A: Host found but no data record of requested type",
            )
        return [name]
    records = [(int(rr.preference), _norm(rr.exchange.to_text())) for rr in answer]
    real = [(pref, host) for pref, host in records if host]
    if not real:
        raise RouteFailed(
            "5.1.10", f"Recipient address rejected: Domain {name} does not accept mail (nullMX)"
        )
    if cache is not None and answer.expiration > time.time():
        if len(cache) >= 10_000:
            cache.clear()
        cache[name] = (answer.expiration, real)
    return order_hosts(real, rng)


# -- routes ----------------------------------------------------------------------------------------


class RouteMode(StrEnum):
    MX = "mx"
    SMARTHOST = "smarthost"
    CAPTURE = "capture"


class SmarthostSecurity(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Route:
    """Where to deliver mail for one domain: hosts in try-order, port, TLS and AUTH settings."""

    mode: RouteMode
    domain: str
    hosts: tuple[str, ...] = ()
    port: int = 25
    tls: TlsPolicy = field(default_factory=TlsPolicy)
    implicit_tls: bool = False
    auth: tuple[str, str] | None = field(default=None, repr=False)


class Router(Protocol):
    """Answers "where do I send mail for this domain?" (may raise RouteFailed/RouteDeferred)."""

    async def route(self, domain: str) -> Route: ...


class MxRouter:
    """Delivers to the domain's MX hosts (``port`` is 25 in production, the sink's in tests)."""

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        *,
        port: int = 25,
        tls: TlsPolicies | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = resolver
        self.port = port
        self.tls = tls or TlsPolicies()
        self.rng = rng or random.Random()
        self.cache: MxCache = {}

    async def route(self, domain: str) -> Route:
        hosts = await resolve_mx(domain, self.resolver, rng=self.rng, cache=self.cache)
        return Route(
            mode=RouteMode.MX,
            domain=_norm(domain),
            hosts=tuple(hosts),
            port=self.port,
            tls=self.tls.for_domain(domain),
        )


class SmarthostRouter:
    """Sends everything to one upstream host:port, over STARTTLS, implicit TLS or plaintext.

    With TLS the upstream certificate is verified (against ``trust``, or the system store)
    unless ``verify`` is False, in which case TLS is still required. AUTH credentials are only
    ever sent over TLS, or over plaintext when ``security`` is ``none`` (an explicit choice).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: SmarthostSecurity = SmarthostSecurity.STARTTLS,
        auth: tuple[str, str] | None = None,
        verify: bool = True,
        trust: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = SmarthostSecurity(security)
        self.auth = auth
        if self.security is SmarthostSecurity.NONE:
            self.tls = TlsPolicy(mode=TlsMode.NONE)
        else:
            mode = TlsMode.VERIFIED if verify else TlsMode.REQUIRED
            self.tls = TlsPolicy(mode=mode, trust=trust)

    async def route(self, domain: str) -> Route:
        return Route(
            mode=RouteMode.SMARTHOST,
            domain=_norm(domain),
            hosts=(self.host,),
            port=self.port,
            tls=self.tls,
            implicit_tls=self.security is SmarthostSecurity.IMPLICIT,
            auth=self.auth,
        )


class CaptureRouter:
    """Capture mode: no network; the caller writes the message to its capture directory."""

    async def route(self, domain: str) -> Route:
        return Route(mode=RouteMode.CAPTURE, domain=_norm(domain))


def order_hosts(records: Sequence[tuple[int, str]], rng: random.Random) -> list[str]:
    """MX (preference, host) pairs → try-order: ascending preference, ties shuffled by ``rng``.

    Each tie group is sorted before shuffling, so the order depends only on the rng, not on the
    order the DNS server listed the records in. A host listed twice keeps its best preference.
    """
    by_pref: dict[int, list[str]] = {}
    for pref, host in records:
        group = by_pref.setdefault(pref, [])
        if host not in group:
            group.append(host)
    ordered: list[str] = []
    for pref in sorted(by_pref):
        group = sorted(by_pref[pref])
        rng.shuffle(group)
        ordered.extend(h for h in group if h not in ordered)
    return ordered
