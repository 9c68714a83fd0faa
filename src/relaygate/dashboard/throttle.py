"""Failed dashboard sign-ins, slowed per user and per client address.

A password is typed by a person and can be guessed, unlike an API key (see
``gateway.authlimit``), so here both counts matter: per e-mail address (a guesser spread over
many addresses) and per client (one address trying many users; IPv6 per /64). Within ``window``
seconds the first ``free`` failures cost nothing; after that each attempt must wait, after the
last failure, twice as long as the one before (1 s, 2 s, 4 s … at most ``ceiling``). An attempt
made while it must wait is refused before the password is looked at (429 with Retry-After),
so a guesser gets a handful of tries an hour while the user who mistyped twice never notices.
A right password clears its user's count (not the address's: a guesser who knows one password
does not buy more guesses at others).

Counts live in this process (the http role); a restart forgets them. Time is the injected clock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from relaygate.clock import Clock
from relaygate.gateway.authlimit import client_of

__all__ = ["SignInLimits", "SignInThrottle"]


@dataclass(frozen=True, kw_only=True)
class SignInLimits:
    user_free: int = 5
    client_free: int = 20
    window: float = 900.0
    ceiling: float = 900.0
    max_entries: int = 20_000


class SignInThrottle:
    def __init__(self, clock: Clock, limits: SignInLimits | None = None) -> None:
        self.clock = clock
        self.limits = limits or SignInLimits()
        self._lock = threading.Lock()
        # key → (failures in the window, time of the first, time of the last)
        self._seen: OrderedDict[str, tuple[int, float, float]] = OrderedDict()

    def wait(self, email: str, ip: str) -> float:
        """Seconds before the next attempt for ``email`` from ``ip`` may be tried (0: now)."""
        now = self.clock.now()
        with self._lock:
            return max(
                self._wait(f"u:{email.strip().lower()}", self.limits.user_free, now),
                self._wait(f"c:{client_of(ip)}", self.limits.client_free, now),
            )

    def failed(self, email: str, ip: str) -> None:
        now = self.clock.now()
        with self._lock:
            self._count(f"u:{email.strip().lower()}", now)
            self._count(f"c:{client_of(ip)}", now)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._seen.pop(f"u:{email.strip().lower()}", None)

    def _wait(self, key: str, free: int, now: float) -> float:
        entry = self._seen.get(key)
        if entry is None:
            return 0.0
        count, first, last = entry
        if now - first > self.limits.window or count < free:
            return 0.0
        delay = min(self.limits.ceiling, 2.0 ** (count - free))
        return max(0.0, last + delay - now)

    def _count(self, key: str, now: float) -> None:
        count, first, _ = self._seen.pop(key, (0, now, now))
        if now - first > self.limits.window:
            count, first = 0, now
        self._seen[key] = (count + 1, first, now)
        while len(self._seen) > self.limits.max_entries:
            self._seen.popitem(last=False)
