"""Connection caps for the SMTP listeners: per listener, and per client address.

Postfix's model: a service runs at most ``default_process_limit`` (100) smtpd processes, and one
client may hold at most ``smtpd_client_connection_count_limit`` (50) of them, except the
networks in ``smtpd_client_event_limit_exceptions`` (``$mynetworks``). A client over a cap is
greeted with ``421 4.7.0`` and disconnected. Here the defaults are the same (``[smtp]
max_connections`` per listener, ``max_connections_per_client`` per address across the SMTP
listeners), and the exempt networks are the trusted ones (``[smtp] trusted_networks``, our
``mynetworks``); the listener cap has no exception. What the caps bound is memory: an SMTP
session holds its message (up to ``max_message_bytes``) while DATA is read.

Addresses are counted as the socket reports them (as Postfix does; an IPv6 client can use many,
which the listener cap still bounds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from relaygate.clock import Clock

__all__ = ["ConnectionSlots", "Listener"]

log = logging.getLogger("relaygate.smtp")

#: Seconds between two log lines about refused connections (each line counts the refusals).
LOG_EVERY = 60.0


@dataclass(kw_only=True)
class Listener:
    """One listening socket's open connections."""

    limit: int
    name: str = ""
    open: int = 0


@dataclass(kw_only=True)
class _Refusals:
    count: int = 0
    logged_at: float | None = None
    per: dict[str, int] = field(default_factory=dict)


class ConnectionSlots:
    """Hands out a slot per connection, or says which cap refuses it."""

    def __init__(self, *, per_client: int, exempt: Callable[[str], bool], clock: Clock) -> None:
        self.per_client = per_client
        self.exempt = exempt
        self.clock = clock
        self.clients: dict[str, int] = {}
        self._refused = _Refusals()

    def take(self, listener: Listener, ip: str) -> str | None:
        """Count a new connection from ``ip`` on ``listener``: None when it may stay, else which
        cap is full ("listener" or "client"; nothing is counted then)."""
        if listener.open >= listener.limit:
            self._note("listener", listener, ip)
            return "listener"
        held = self.clients.get(ip, 0)
        if held >= self.per_client and not self.exempt(ip):
            self._note("client", listener, ip)
            return "client"
        listener.open += 1
        self.clients[ip] = held + 1
        return None

    def give_back(self, listener: Listener, ip: str) -> None:
        """A connection ``take`` counted has closed."""
        listener.open -= 1
        held = self.clients.get(ip, 0) - 1
        if held > 0:
            self.clients[ip] = held
        else:
            self.clients.pop(ip, None)

    def _note(self, cap: str, listener: Listener, ip: str) -> None:
        """One log line a minute at most (a client can open connections faster than anyone
        reads lines), with the count since the last one: a full listener is a warning (the
        operator may need more capacity), one busy client is information."""
        refused = self._refused
        refused.count += 1
        refused.per[cap] = refused.per.get(cap, 0) + 1
        now = self.clock.now()
        if refused.logged_at is not None and now - refused.logged_at < LOG_EVERY:
            return
        log.log(
            logging.WARNING if cap == "listener" else logging.INFO,
            "connections refused",
            extra={
                "cap": cap,
                "listener": listener.name,
                "peer": ip,
                "refused": refused.count,
                "by_listener_cap": refused.per.get("listener", 0),
                "by_client_cap": refused.per.get("client", 0),
            },
        )
        self._refused = _Refusals(logged_at=now)
