"""Where a webhook may be sent: URL validation and address checks against SSRF.

Faces the network on behalf of customers, and trusts nothing a customer supplies: the URL, the
name's DNS answers, and every address inside them are checked here. Three layers:

* ``is_forbidden_address(ip)``: pure. Why an address may not be contacted, or None.
* ``validate_url(url)``: pure. Scheme, userinfo, port, host syntax; IP-literal hosts are checked
  at once, and numeric hosts in the forms only some parsers read as IPv4 (``2130706433``,
  ``0x7f.1``, ``017700000001``, ``127.1``) are refused outright, whatever ``allow_private`` says.
* ``resolve_and_check(host)``: resolves A and AAAA with the injected dnspython resolver and
  refuses the name if ANY address is forbidden. The sender then connects to one of exactly these
  addresses, never re-resolving (a second lookup is how DNS rebinding gets in).

``allow_private`` (operator configuration) admits loopback, RFC 1918, CGNAT, link-local and
unique-local addresses and ``localhost`` names. It never admits addresses no endpoint can have
(unspecified, multicast, broadcast, reserved, documentation, benchmarking) nor the cloud metadata
addresses (169.254.169.254, 169.254.170.2, 100.100.100.200, fd00:ec2::254).

dnspython's exceptions are translated here: a refused target raises ``UnsafeTarget`` (permanent),
DNS trouble raises ``relaygate.errors.DeliveryDeferred``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.resolver

from relaygate.errors import DeliveryDeferred, PermanentError
from relaygate.idn import ascii_domain

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class UnsafeTarget(PermanentError):
    """The webhook URL or one of its addresses must not be contacted. ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _nets(
    *pairs: tuple[str, str],
) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in pairs)


_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)

# Never allowed, whatever the operator says. Checked before _PRIVATE.
_NEVER = _nets(
    ("0.0.0.0/32", "unspecified address"),
    ("255.255.255.255/32", "broadcast address"),
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("192.0.0.0/24", "IETF protocol assignment (192.0.0.0/24)"),
    ("192.0.2.0/24", "documentation range (192.0.2.0/24)"),
    ("198.51.100.0/24", "documentation range (198.51.100.0/24)"),
    ("203.0.113.0/24", "documentation range (203.0.113.0/24)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (192.88.99.0/24)"),
    ("198.18.0.0/15", "benchmarking range (198.18.0.0/15)"),
    ("224.0.0.0/4", "multicast address"),
    ("240.0.0.0/4", "reserved address (240.0.0.0/4)"),
    ("::/128", "unspecified address"),
    ("ff00::/8", "multicast address"),
    ("100::/64", "discard-only prefix (100::/64)"),
    ("2001::/32", "Teredo tunnel address"),
    ("2001::/23", "IETF protocol assignment (2001::/23)"),
    ("2001:db8::/32", "documentation range (2001:db8::/32)"),
    ("3fff::/20", "documentation range (3fff::/20)"),
    ("64:ff9b:1::/48", "local-use NAT64 prefix (64:ff9b:1::/48)"),
    ("fec0::/10", "deprecated site-local address"),
)

# Refused unless allow_private.
_PRIVATE = _nets(
    ("127.0.0.0/8", "loopback address"),
    ("10.0.0.0/8", "private address (10.0.0.0/8)"),
    ("172.16.0.0/12", "private address (172.16.0.0/12)"),
    ("192.168.0.0/16", "private address (192.168.0.0/16)"),
    ("100.64.0.0/10", "carrier-grade NAT address (100.64.0.0/10)"),
    ("169.254.0.0/16", "link-local address"),
    ("::1/128", "loopback address"),
    ("fc00::/7", "unique-local address (fc00::/7)"),
    ("fe80::/10", "link-local address"),
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address a v6 address carries and is routed to, if any."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _check(ip: IPAddress, allow_private: bool) -> str | None:
    if ip in _METADATA:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "IPv6 address with a zone index"
        if ip in _V4_COMPATIBLE and int(ip) > 1:
            v4 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return f"deprecated IPv4-compatible address (embeds {v4})"
        embedded = _embedded_v4(ip)
        if embedded is not None:
            kind, v4 = embedded
            inner = _check(v4, allow_private)
            return f"{kind} address embeds {v4}: {inner}" if inner else None
    for net, reason in _NEVER:
        if ip in net:
            return reason
    for net, reason in _PRIVATE:
        if ip in net:
            return None if allow_private else reason
    if not ip.is_global:
        return "not a globally routable address"
    return None


def parse_ip(text: str) -> IPAddress:
    """An IP address in canonical text form (dotted quad, or IPv6 with or without brackets)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return ipaddress.ip_address(text)


def is_forbidden_address(ip: str, *, allow_private: bool = False) -> str | None:
    """Why ``ip`` must not be contacted, or None if it may be. ValueError if it is not an IP."""
    return _check(parse_ip(ip), allow_private)


# -- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ParsedTarget:
    """A validated webhook URL, split the way the sender needs it."""

    url: str
    """Normalised URL (lower-case scheme and host, punycode, no fragment)."""
    scheme: str
    host: str
    """Host name (punycode, lower case, no trailing dot) or IP literal without brackets."""
    port: int
    """Effective port (443/80 when the URL gives none)."""
    explicit_port: bool
    target: str
    """Path and query, as sent on the request line (at least ``/``)."""
    ip: str | None
    """The address when the host is an IP literal, else None (resolve with resolve_and_check)."""

    @property
    def host_header(self) -> str:
        """The Host header value: the host as written (bracketed if IPv6), with a given port."""
        host = f"[{self.host}]" if self.ip is not None and ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


def _normalise_host(raw: str, allow_private: bool) -> tuple[str, str | None]:
    if not raw:
        raise UnsafeTarget("the URL has no host")
    if "%" in raw:
        raise UnsafeTarget("percent-encoded or zone-indexed host")
    try:
        ip = parse_ip(raw)
    except ValueError:
        ip = None
    if ip is not None:
        reason = _check(ip, allow_private)
        if reason:
            raise UnsafeTarget(f"host {ip}: {reason}")
        return str(ip), str(ip)
    if ":" in raw or "[" in raw or "]" in raw:
        raise UnsafeTarget("malformed IPv6 literal")
    host = raw.rstrip(".") if raw.endswith(".") and not raw.endswith("..") else raw
    if not host.isascii():
        try:
            host = ascii_domain(host)
        except ValueError:
            raise UnsafeTarget("host is not a valid internationalised domain name") from None
    host = host.lower()
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeTarget("host is not a valid DNS name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise UnsafeTarget(
            "numeric host that is not a canonical IPv4 address (e.g. 2130706433, 0x7f.1, 127.1)"
        )
    if (host == "localhost" or host.endswith(".localhost")) and not allow_private:
        raise UnsafeTarget("localhost name")
    return host, None


def validate_url(url: str, *, allow_private: bool, allow_http: bool) -> ParsedTarget:
    """Check a webhook URL without any I/O. Raises UnsafeTarget with the reason."""
    if not isinstance(url, str) or not url:
        raise UnsafeTarget("empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in url):
        raise UnsafeTarget("URL contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("URL cannot be parsed (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeTarget("URL scheme must be https")
    if scheme == "http" and not allow_http:
        raise UnsafeTarget("URL scheme must be https (http is not allowed by configuration)")
    netloc = parts.netloc
    if "@" in netloc or parts.username is not None or parts.password is not None:
        raise UnsafeTarget("URL must not contain user information")
    if port is not None and not 1 <= port <= 65535:
        raise UnsafeTarget("URL port out of range")
    hostport = netloc
    raw_host = hostport
    if hostport.startswith("["):
        end = hostport.find("]")
        raw_host = hostport[: end + 1]
    elif ":" in hostport:
        raw_host = hostport.rsplit(":", 1)[0]
    if hostport.endswith(":"):
        raise UnsafeTarget("URL has an empty port")
    host, ip = _normalise_host(raw_host, allow_private)
    effective = port if port is not None else (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    shown = f"[{host}]" if ip is not None and ":" in host else host
    normal = f"{scheme}://{shown}{':' + str(port) if port is not None else ''}{target}"
    return ParsedTarget(
        url=normal,
        scheme=scheme,
        host=host,
        port=effective,
        explicit_port=port is not None,
        target=target,
        ip=ip,
    )


# -- DNS -------------------------------------------------------------------------------------


async def _lookup(resolver: dns.asyncresolver.Resolver, host: str, rdtype: str) -> list[str]:
    try:
        answer = await resolver.resolve(host, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        raise DeliveryDeferred(f"DNS: {host} does not exist (NXDOMAIN)") from None
    except dns.resolver.NoNameservers:
        raise DeliveryDeferred(f"DNS: no server could answer for {host} ({rdtype})") from None
    except dns.exception.Timeout:
        raise DeliveryDeferred(f"DNS: timed out resolving {host} ({rdtype})") from None
    except dns.exception.DNSException as exc:
        raise DeliveryDeferred(f"DNS: {type(exc).__name__} resolving {host} ({rdtype})") from None
    return [rr.to_text() for rr in answer] if answer.rrset is not None else []


async def resolve_and_check(
    host: str, resolver: dns.asyncresolver.Resolver, *, allow_private: bool
) -> list[str]:
    """The addresses to connect to for ``host``: IPv4 first, then IPv6, all of them allowed.

    ``host`` is a name from ``ParsedTarget.host`` (an IP literal is only checked). Raises
    UnsafeTarget if ANY address is forbidden, DeliveryDeferred if DNS fails or finds nothing.
    """
    try:
        literal: IPAddress | None = parse_ip(host)
    except ValueError:
        literal = None
    if literal is not None:
        reason = _check(literal, allow_private)
        if reason:
            raise UnsafeTarget(f"{literal}: {reason}")
        return [str(literal)]
    results = await asyncio.gather(
        _lookup(resolver, host, "A"), _lookup(resolver, host, "AAAA"), return_exceptions=True
    )
    addresses: list[str] = []
    errors: list[BaseException] = []
    for result in results:
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            addresses.extend(result)
    # One family failing (e.g. AAAA SERVFAIL) while the other answered is still trouble: we
    # cannot check what we could not see, so we do not use a partial answer.
    for err in errors:
        if not isinstance(err, DeliveryDeferred):
            raise err
    if errors:
        raise errors[0]
    unique = list(dict.fromkeys(str(parse_ip(a)) for a in addresses))
    if not unique:
        raise DeliveryDeferred(f"DNS: {host} has no A or AAAA records")
    for address in unique:
        reason = _check(parse_ip(address), allow_private)
        if reason:
            raise UnsafeTarget(f"{host} resolves to {address}: {reason}")
    return unique
