"""Caps on what a peer may hand in for relaygate's bounce and feedback addresses.

Anyone may mail those addresses without AUTH (a DSN comes from whatever MTA the message reached),
so they are capped per peer: a report may be at most ``max_report_bytes`` (larger: 552 5.3.4,
decided from MAIL's SIZE= at RCPT when given, and while DATA is read otherwise), and a client
may start at most ``reports_per_minute`` report transactions in any 60 seconds (more: 451 4.7.1
at RCPT, before any data is read). The rate counts per IPv4 address and per IPv6 /64 (one
host's share of a network). Peers in ``smtp.trusted_networks`` (a front MTA of the operator's
own, say) are not rate-limited, as Postfix exempts ``$mynetworks``.

Counting is per process, in memory, on the injected clock; memory is bounded by ``max_peers``.
Trusts nothing: the peer address comes from the socket, SIZE= from the client (only ever used
to refuse early).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Sequence

from relaygate.clock import Clock

REPORT_TOO_BIG = "552 5.3.4 Reports to this address may be at most {n} bytes"
REPORTS_THROTTLED = "451 4.7.1 Too many reports from your address; try again later"

_WINDOW = 60.0


def peer_key(ip: str) -> str:
    """The address a rate counts against: the IPv4 address, or the IPv6 /64."""
    try:
        addr = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def declared_size(mail_options: Sequence[str]) -> int | None:
    """MAIL FROM's SIZE= value, when given and well-formed."""
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return None


class ReportLimits:
    def __init__(
        self,
        clock: Clock,
        *,
        max_bytes: int,
        per_minute: int,
        exempt: Callable[[str], bool] = lambda ip: False,
        max_peers: int = 10_000,
    ) -> None:
        self.clock = clock
        self.max_bytes = max_bytes
        self.per_minute = per_minute
        self.exempt = exempt
        self.max_peers = max_peers
        self._seen: dict[str, deque[float]] = {}

    def too_big(self, size: int | None) -> str | None:
        """The refusal for a report of ``size`` bytes (None: unknown or fine)."""
        if size is not None and size > self.max_bytes:
            return REPORT_TOO_BIG.format(n=self.max_bytes)
        return None

    def start(self, ip: str) -> str | None:
        """Count one report transaction from ``ip``; the refusal when it is one too many."""
        if self.exempt(ip):
            return None
        now = self.clock.now()
        key = peer_key(ip)
        times = self._seen.get(key)
        if times is None:
            self._make_room(now)
            times = self._seen[key] = deque()
        while times and times[0] <= now - _WINDOW:
            times.popleft()
        if len(times) >= self.per_minute:
            return REPORTS_THROTTLED
        times.append(now)
        return None

    def _make_room(self, now: float) -> None:
        if len(self._seen) < self.max_peers:
            return
        cutoff = now - _WINDOW
        self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > cutoff}
        while len(self._seen) >= self.max_peers:  # every peer is recent: forget the oldest
            self._seen.pop(next(iter(self._seen)))
