"""One webhook POST to a customer's endpoint, pinned to a checked address. The httpx edge.

Faces the network: it trusts neither the URL (``ssrf.validate_url``), nor DNS
(``ssrf.resolve_and_check``: every address is checked), nor the endpoint, which may answer
slowly, trickle bytes, redirect, or send a huge or compressed body.

How the address is pinned: the name is resolved once, here, and the request URL's host is
replaced by the checked IP, so httpx/httpcore connect to that IP and never resolve anything.
The ``Host`` header keeps the customer's host name, and the httpcore request extension
``sni_hostname`` makes TLS send the host name as SNI and verify the certificate against it
(httpcore passes it as ``server_hostname`` to ``start_tls``; the SSL context has
``check_hostname`` on). One client per call: no pooled connection is ever shared between two
host names that happen to share an address. ``trust_env=False``: proxy variables and .netrc are
ignored, so no proxy can be slipped in between the check and the connection.

Success is a 2xx status with the whole exchange (DNS, connect, TLS, request, response headers
and up to ``max_response_bytes`` of body) finished within ``timeout`` seconds in total; a
receiver that trickles bytes is cut at the deadline. Redirects are never followed (a 3xx is a
failure). The body is read raw (no decompression) and only up to the cap.

httpx's exceptions are translated here, into ``SendResult.outcome`` and a short ``error`` text
that holds no secrets (no headers, no body, no URL query). ``post_event`` does not raise.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import httpx

from relaygate.errors import DeliveryDeferred
from relaygate.events.ssrf import ParsedTarget, UnsafeTarget, resolve_and_check, validate_url

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "relaygate-webhooks/1"
_EXCERPT_BYTES = 512


class SendOutcome(StrEnum):
    """What happened to one attempt."""

    OK = "ok"  # 2xx
    HTTP_STATUS = "http_status"  # the endpoint answered 1xx/4xx/5xx
    REDIRECT = "redirect"  # 3xx, not followed
    TIMEOUT = "timeout"  # no complete answer within the deadline
    CONNECT = "connect"  # refused, unreachable, reset, closed early
    TLS = "tls"  # handshake or certificate verification failed
    PROTOCOL = "protocol"  # not HTTP we understand
    DNS = "dns"  # the name could not be resolved (retry later)
    REFUSED = "refused"  # SSRF policy: the URL or an address is forbidden


@dataclass(frozen=True, kw_only=True)
class SendResult:
    ok: bool
    status: int | None
    error: str | None
    duration: float
    """Seconds from the call to the result, DNS included."""
    outcome: SendOutcome
    address: str | None = None
    """The IP address the request went to (None if no connection was attempted)."""
    response_excerpt: str = ""
    """The first 512 bytes of the response body as text (control characters but newline and
    tab made spaces), kept in the attempt log."""


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (text or type(exc).__name__)[:200]


def _has_cause(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _translate(exc: httpx.HTTPError | OSError) -> tuple[SendOutcome, str]:
    if _has_cause(exc, ssl.SSLError):
        return SendOutcome.TLS, f"TLS: {_short(exc)}"
    if isinstance(exc, httpx.TimeoutException):
        return SendOutcome.TIMEOUT, f"timeout: {type(exc).__name__}"
    if isinstance(exc, httpx.ConnectError | OSError):
        return SendOutcome.CONNECT, f"connect: {_short(exc)}"
    if isinstance(exc, httpx.NetworkError):
        return SendOutcome.CONNECT, f"connection lost: {_short(exc)}"
    return SendOutcome.PROTOCOL, f"protocol: {_short(exc)}"


async def _attempt(
    *,
    target: ParsedTarget,
    address: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    ssl_context: ssl.SSLContext,
    max_response_bytes: int,
) -> tuple[int, bytes]:
    """POST to ``address``; the status and up to ``max_response_bytes`` of raw body."""
    request_headers = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
        "Connection": "close",
        **headers,
        "Host": target.host_header,
    }
    extensions: dict[str, object] = {}
    if target.scheme == "https" and target.ip is None:
        extensions["sni_hostname"] = target.host
    url = httpx.URL(target.url).copy_with(host=address)
    async with httpx.AsyncClient(
        verify=ssl_context,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
    ) as client:
        request = client.build_request(
            "POST", url, content=body, headers=request_headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            received = bytearray()
            async for chunk in response.aiter_raw():
                received += chunk
                if len(received) >= max_response_bytes:
                    break
            return response.status_code, bytes(received[:max_response_bytes])
        finally:
            await response.aclose()


async def post_event(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    resolver: dns.asyncresolver.Resolver,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT,
    ca_context: ssl.SSLContext | None = None,
    allow_http: bool = False,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    monotonic: Callable[[], float] = time.monotonic,
) -> SendResult:
    """POST ``body`` with ``headers`` to ``url``; never raises for anything the network does.

    ``ca_context`` replaces the default trust store (certifi, as httpx uses). ``allow_http``
    admits ``http://`` URLs (operator configuration; also used by tests).
    """
    start = monotonic()

    def done(
        outcome: SendOutcome,
        *,
        error: str | None = None,
        status: int | None = None,
        address: str | None = None,
        excerpt: bytes = b"",
    ) -> SendResult:
        text = excerpt[:_EXCERPT_BYTES].decode("utf-8", "ignore")
        printable = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)
        return SendResult(
            ok=outcome is SendOutcome.OK,
            status=status,
            error=error,
            duration=monotonic() - start,
            outcome=outcome,
            address=address,
            response_excerpt=printable,
        )

    try:
        target = validate_url(url, allow_private=allow_private, allow_http=allow_http)
    except UnsafeTarget as exc:
        return done(SendOutcome.REFUSED, error=f"refused: {exc.reason}")

    address: str | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                addresses = await resolve_and_check(
                    target.host, resolver, allow_private=allow_private
                )
            except UnsafeTarget as exc:
                return done(SendOutcome.REFUSED, error=f"refused: {exc.reason}")
            except DeliveryDeferred as exc:
                return done(SendOutcome.DNS, error=str(exc)[:200])
            failure: tuple[SendOutcome, str] = (SendOutcome.CONNECT, "connect: no address")
            for address in addresses:
                try:
                    status, excerpt = await _attempt(
                        target=target,
                        address=address,
                        body=body,
                        headers=headers,
                        timeout=timeout,
                        ssl_context=ca_context or _default_ssl_context(),
                        max_response_bytes=max_response_bytes,
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    failure = _translate(exc)
                    if failure[0] is SendOutcome.TLS:
                        break
                    continue  # try the next checked address
                except (httpx.HTTPError, OSError) as exc:
                    failure = _translate(exc)
                    break
                if 200 <= status < 300:
                    return done(SendOutcome.OK, status=status, address=address, excerpt=excerpt)
                if 300 <= status < 400:
                    return done(
                        SendOutcome.REDIRECT,
                        error=f"HTTP {status}: redirect not followed",
                        status=status,
                        address=address,
                        excerpt=excerpt,
                    )
                return done(
                    SendOutcome.HTTP_STATUS,
                    error=f"HTTP {status}",
                    status=status,
                    address=address,
                    excerpt=excerpt,
                )
            return done(failure[0], error=failure[1], address=address)
    except TimeoutError:
        return done(
            SendOutcome.TIMEOUT,
            error=f"timeout: no complete answer within {timeout:g} s",
            address=address,
        )
