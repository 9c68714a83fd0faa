"""The failed-authentication throttle, for SMTP AUTH and the HTTP ``X-API-Key`` alike.

Failures (an unknown or revoked key) are counted per client: an IPv4 address, or an IPv6 /64
(one host's allocation: counting single IPv6 addresses would let anyone rotate through them).
After ``failures`` failures within ``window`` seconds, every further *failed* attempt from that
client is answered as throttled — SMTP ``454 4.7.0``, HTTP ``429`` with ``Retry-After`` — and
counted too, so a client that keeps guessing stays throttled; ``Retry-After`` is the time until
its failures in the window fall under the limit again.

A key that authenticates is never refused by the throttle. The issue asks for a throttle "per IP
and user" so that a stranger cannot lock out a legitimate client; but here the user name is
ignored (or ``apikey``) and the password *is* the key, so a failed attempt has no user to be
charged to, and a per-(IP, user) count degenerates to per IP — which locks out everyone behind
the same NAT, proxy or host as the stranger. What a lockout would protect against is guessing,
and a key is 40 random base62 characters (~238 bits): no number of attempts finds one. So the
user of a correct key is the key's own account, which did nothing wrong, and it goes through;
the throttle slows and flags the guesser (and a client with a stale key, which is told to back
off instead of hammering) without handing a stranger a denial of service.

The numbers (10 failures in 300 s by default, ``[smtp]``/``[http]`` ``auth_failure_limit`` and
``auth_failure_window``): a key is pasted by a program, not typed by a person, so a few
failures mean a stale key or a guesser; fail2ban's default jail (5 in 10 min) and Dovecot's
auth penalty (which starts at the first failure) are stricter, but they lock out a password's
owner too, which this throttle never does.

Memory: at most ``max_clients`` clients, each with at most ``failures`` timestamps; the client
that failed least recently is forgotten first. Time comes from the injected clock.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass

from relaygate.clock import Clock

__all__ = ["AuthLimits", "FailedAuthThrottle", "client_of"]


@dataclass(frozen=True, kw_only=True)
class AuthLimits:
    failures: int = 10
    window: float = 300.0
    max_clients: int = 10_000


def client_of(ip: str) -> str:
    """The unit failures are counted per: the IPv4 address (also when IPv4-mapped), the IPv6
    /64, or the text as given when it is no address (a Unix socket peer, a test transport)."""
    try:
        addr = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class FailedAuthThrottle:
    """Counts failed authentications per client in a sliding window (see the module docstring)."""

    def __init__(self, clock: Clock, limits: AuthLimits | None = None) -> None:
        self.clock = clock
        self.limits = limits or AuthLimits()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def limit(self) -> int:
        return self.limits.failures

    def retry_after(self, ip: str) -> float:
        """Seconds until ``ip``'s next failure would not be throttled (0.0: not throttled)."""
        times = self._failures.get(client_of(ip))
        return self._wait(times, self.clock.now()) if times is not None else 0.0

    def failed(self, ip: str) -> float:
        """Count one failure of ``ip``. Returns 0.0 when it came under the limit (answer it as
        a plain failure), else the seconds the client should wait (answer it as throttled)."""
        client = client_of(ip)
        now = self.clock.now()
        times = self._failures.pop(client, None)
        if times is None:
            times = deque(maxlen=self.limits.failures)
        throttled = self._wait(times, now) > 0
        times.append(now)
        self._failures[client] = times  # most recently failed last
        while len(self._failures) > self.limits.max_clients:
            self._failures.popitem(last=False)
        return self._wait(times, now) if throttled else 0.0

    def _wait(self, times: deque[float], now: float) -> float:
        """With the last ``failures`` failure times: how long until the oldest leaves the window."""
        if len(times) < self.limits.failures:
            return 0.0
        return max(0.0, times[0] + self.limits.window - now)
