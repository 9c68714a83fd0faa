"""Delivery modes ``mx`` and ``smarthost``: the network transport behind the scheduler.

Routes each batch (one message, one destination domain), hands each of its SMTP transactions
(one per envelope sender: with VERP, one per recipient, like Postfix's XVERP) to the SMTP
client in turn over one connection, and maps the client's per-recipient verdicts back to
recipient ids. A destination whose every host just
failed at the connection level is remembered as dead for a short while, so its other queued
mail is deferred at once instead of tying up workers on connection time-outs.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable

import dns.asyncresolver
import dns.resolver

from relaygate.dnsresolver import make_resolver
from relaygate.idn import ascii_address
from relaygate.metrics import Metrics
from relaygate.relay.client import DeliveryResult, SessionCache, Timeouts, deliver_via, wire_data
from relaygate.relay.routing import (
    MxRouter,
    Route,
    RouteError,
    RouteFailed,
    Router,
    SmarthostRouter,
    SmarthostSecurity,
)
from relaygate.relay.tlspolicy import TlsMode, TlsPolicies, TlsPolicy
from relaygate.relay.transport import Batch, RecipientResult
from relaygate.settings import Settings, parse_hostport
from relaygate.store.models import Claimed


class NetworkTransport:
    def __init__(
        self,
        *,
        router: Router,
        resolver: dns.asyncresolver.Resolver,
        helo: str,
        timeouts: Timeouts | None = None,
        dead_for: float = 60.0,
        per_domain: int = 10,
        monotonic: Callable[[], float] | None = None,
        sessions: SessionCache | None = None,
    ) -> None:
        self.router = router
        self.resolver = resolver
        self.helo = helo
        self.timeouts = timeouts
        self.dead_for = dead_for
        self.per_domain = per_domain
        #: Idle sessions reused by the next batch to the same host (None: a connection each).
        self.sessions = sessions
        self._dead: dict[str, tuple[float, str]] = {}
        self.metrics: Metrics | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._monotonic = monotonic or asyncio.get_event_loop_policy().get_event_loop().time

    async def deliver(self, batch: Batch) -> list[RecipientResult]:
        domain = batch.domain
        dead = self._dead_text(domain)
        if dead is not None:
            return self._all(batch.recipients, "deferred", None, "4.4.1", dead)
        try:
            route = await self.router.route(domain)
        except RouteError as exc:
            outcome = "bounced" if isinstance(exc, RouteFailed) else "deferred"
            if self.metrics is not None:
                kind = {"5.1.2": "nxdomain", "5.1.10": "nullmx", "5.4.4": "nodata"}.get(
                    exc.status, "servfail"
                )
                self.metrics.dns_error("MX", kind)
            return self._all(batch.recipients, outcome, None, exc.status, exc.diagnostic)
        transactions = batch.transactions()
        # One transaction per envelope sender, one after the other on one connection: the shared
        # cache hands the session on; without one, a cache of this batch's own does.
        sessions = self.sessions
        own: SessionCache | None = None
        if sessions is None and len(transactions) > 1:
            sessions = own = SessionCache(idle_seconds=60.0)
        out: list[RecipientResult] = []
        wire = wire_data(batch.data)  # once for all the transactions
        slot = self._slots.setdefault(domain, asyncio.Semaphore(self.per_domain))
        try:
            async with slot:
                for sender, rcpts in transactions:
                    dead = self._dead_text(domain)
                    if dead is not None:  # the previous transaction found every host down
                        out += self._all(rcpts, "deferred", None, "4.4.1", dead)
                        continue
                    out += await self._transaction(
                        domain, route, sender, rcpts, batch.data, wire, sessions
                    )
        finally:
            if own is not None:
                await own.aclose()
        if len(self._slots) > 10_000:
            self._slots = {d: s for d, s in self._slots.items() if s.locked()}
        return out

    def _dead_text(self, domain: str) -> str | None:
        dead = self._dead.get(domain)
        if dead is not None and dead[0] > self._monotonic():
            return f"destination recently unreachable: {dead[1]}"
        return None

    async def _transaction(
        self,
        domain: str,
        route: Route,
        sender: str,
        rcpts: tuple[Claimed, ...],
        data: bytes,
        wire: bytes,
        sessions: SessionCache | None,
    ) -> list[RecipientResult]:
        started = self._monotonic()
        result = await deliver_via(
            route,
            helo=self.helo,
            mail_from=sender,
            recipients=[_wire(r.address) for r in rcpts],
            data=data,
            wire=wire,
            resolver=self.resolver,
            timeouts=self.timeouts,
            sessions=sessions,
        )
        self._note_dead(domain, result)
        if self.metrics is not None:
            if result.remote_host and not result.reused:
                self.metrics.smtp_session("outbound", result.tls.version if result.tls else None)
            worst = (
                "delivered"
                if all(r.outcome.value == "delivered" for r in result.recipients)
                else (
                    "bounced"
                    if all(r.outcome.value == "bounced" for r in result.recipients)
                    else "deferred"
                )
            )
            self.metrics.delivery_attempt(worst, self._monotonic() - started)
        by_addr = {r.recipient: r for r in result.recipients}
        out = []
        for c in rcpts:
            r = by_addr.get(_wire(c.address))
            if r is None:
                out.append(
                    RecipientResult(
                        recipient_id=c.id,
                        outcome="deferred",
                        code=None,
                        status="4.3.0",
                        text="no result from the SMTP client",
                    )
                )
                continue
            out.append(
                RecipientResult(
                    recipient_id=c.id,
                    outcome=r.outcome.value,
                    code=r.code,
                    status=r.status,
                    text=r.smtp_response,
                    remote=r.remote_host or result.remote_host or "",
                    command=r.command,
                )
            )
        return out

    async def aclose(self) -> None:
        if self.sessions is not None:
            await self.sessions.aclose()

    def _note_dead(self, domain: str, result: DeliveryResult) -> None:
        if result.recipients and all(
            r.code is None and r.outcome.value == "deferred" for r in result.recipients
        ):
            self._dead[domain] = (
                self._monotonic() + self.dead_for,
                result.recipients[0].text[:200],
            )
            if len(self._dead) > 10_000:
                now = self._monotonic()
                self._dead = {d: v for d, v in self._dead.items() if v[0] > now}
        else:
            self._dead.pop(domain, None)

    @staticmethod
    def _all(
        rcpts: tuple[Claimed, ...], outcome: str, code: int | None, status: str, text: str
    ) -> list[RecipientResult]:
        return [
            RecipientResult(
                recipient_id=c.id,
                outcome=outcome,
                code=code,
                status=status,
                text=f"{status} {text}",
            )
            for c in rcpts
        ]


def _wire(address: str) -> str:
    """The envelope form of a stored address: its domain in A-labels (mail stored before the
    one normaliser may still hold a Unicode domain); only a non-ASCII local part needs SMTPUTF8."""
    try:
        return ascii_address(address)
    except ValueError:
        return address


def make_network_transport(
    settings: Settings,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    rng: random.Random | None = None,
) -> NetworkTransport:
    d = settings.delivery
    res = resolver
    if res is None:
        res = make_resolver(settings)
        # Every delivery looks up MX, A and AAAA: keep answers for their TTL (bounded LRU).
        res.cache = dns.resolver.LRUCache(10_000)
    router: Router
    if d.mode == "smarthost":
        host, port = parse_hostport(d.smarthost)
        auth = (d.smarthost_user, d.smarthost_password) if d.smarthost_user else None
        trust = (
            ssl.create_default_context(cafile=d.smarthost_ca_file) if d.smarthost_ca_file else None
        )
        router = SmarthostRouter(
            host, port, security=SmarthostSecurity(d.smarthost_tls), auth=auth, trust=trust
        )
    else:
        policies = TlsPolicies(
            default=TlsPolicy(mode=TlsMode(d.tls)),
            per_domain={k.lower(): TlsPolicy(mode=TlsMode(v)) for k, v in d.tls_policies.items()},
        )
        router = MxRouter(res, port=d.mx_port, tls=policies, rng=rng)
    return NetworkTransport(
        router=router,
        resolver=res,
        helo=settings.hostname,
        per_domain=d.per_domain_concurrency,
        sessions=SessionCache(idle_seconds=d.connection_cache_seconds)
        if d.connection_cache_seconds > 0
        else None,
    )
