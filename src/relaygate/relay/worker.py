"""The scheduler: claims due recipients with a lease, groups them into per-message, per-domain
batches, hands each batch to the transport, and records per-recipient outcomes.

Bounded: at most ``batch_size`` recipients are leased per claim and at most ``concurrency``
transactions run at once, so a backlog of a million queued recipients never grows memory.
A crash loses nothing: leases expire and the work is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable

from relaygate.bounces import verp
from relaygate.bounces.classify import classify, classify_expired
from relaygate.clock import Clock
from relaygate.metrics import Metrics
from relaygate.owners import is_dead_local_owner, new_owner
from relaygate.relay.backoff import RetryPolicy
from relaygate.relay.transport import Batch, RecipientResult, Transport
from relaygate.settings import Settings
from relaygate.store.models import Claimed, Outcome
from relaygate.store.spool import Store

log = logging.getLogger("relaygate.relay")

BodyHook = Callable[[Claimed], Awaitable[bytes]]


class DeliveryWorker:
    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        clock: Clock,
        transport: Transport,
        mail_from: Callable[[Claimed], str] | None = None,
        verp_secret: bytes | None = None,
        prepare: BodyHook | None = None,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.verp_secret = verp_secret
        self.store = store
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self.owner = new_owner()
        self.policy = RetryPolicy(
            min_backoff=settings.delivery.min_backoff,
            max_backoff=settings.delivery.max_backoff,
            lifetime=settings.delivery.lifetime,
        )
        self.rng = rng or random.Random()
        self._mail_from = mail_from
        self._prepare = prepare
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.delivery.concurrency)
        self._queued_at: dict[int, float] = {}
        self.stopping = False

    def recover(self) -> int:
        """At start-up: release leases held by processes of this host that no longer exist."""
        count = self.store.release_dead_owners(is_dead_local_owner)
        if count:
            log.info("released leases of dead processes", extra={"count": count})
        return count

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until ``stop()``; sleeps while nothing is due."""
        while not self.stopping:
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("delivery loop error")
                handled = 0
            if handled == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle_wait())

    def _idle_wait(self) -> float:
        due = self.store.next_due()
        if due is None:
            return 1.0
        return max(0.02, min(1.0, due - self.clock.now()))

    async def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def run_once(self) -> int:
        """One claim-deliver-record round. Returns how many recipients were handled."""
        d = self.settings.delivery
        claimed = await self.store.claim(
            self.owner,
            limit=d.batch_size,
            lease_seconds=d.lease_seconds,
            max_lease_losses=d.max_lease_losses,
        )
        if not claimed:
            return 0
        groups: dict[tuple[str, str, int], list[Claimed]] = defaultdict(list)
        for c in claimed:
            # A tracked message has one body per recipient, so one transaction per recipient.
            groups[(c.message_id, c.domain, c.ordinal if c.tracked else -1)].append(c)
        await asyncio.gather(*(self._deliver_group(rcpts) for rcpts in groups.values()))
        return len(claimed)

    async def deliver_now(self, message_id: str) -> list[Outcome]:
        """Synchronous hand-off (smarthost_sync): deliver one message now and return its outcomes.

        Nothing is retried: a recipient the upstream did not take is recorded as bounced
        (reason ``rejected``; the client owns the retry), so the 502 and the store agree.
        """
        claimed = await self.store.claim_message(
            self.owner, message_id, lease_seconds=self.settings.delivery.lease_seconds
        )
        groups: dict[tuple[str, int], list[Claimed]] = defaultdict(list)
        for c in claimed:
            groups[(c.domain, c.ordinal if c.tracked else -1)].append(c)
        results = await asyncio.gather(
            *(self._deliver_group(rcpts, sync=True) for rcpts in groups.values())
        )
        return [o for group in results for o in group]

    async def _deliver_group(self, rcpts: list[Claimed], *, sync: bool = False) -> list[Outcome]:
        first = rcpts[0]
        async with self._sem:
            try:
                if self._prepare is not None:
                    data = await self._prepare(first)
                else:
                    data = self.store.body_for_delivery(
                        first.message_id, first.ordinal if first.tracked else None
                    )[0]
                batch = Batch(
                    message_id=first.message_id,
                    account_id=first.account_id,
                    domain=first.domain,
                    mail_from=self.envelope_from(rcpts),
                    data=data,
                    recipients=tuple(rcpts),
                )
                results = await self.transport.deliver(batch)
            except Exception as exc:
                log.exception("transport error", extra={"msg_id": first.message_id})
                results = [
                    RecipientResult(
                        recipient_id=r.id,
                        outcome="deferred",
                        code=None,
                        status="4.3.0",
                        text=f"local error: {type(exc).__name__}",
                    )
                    for r in rcpts
                ]
        by_id = {r.id: r for r in rcpts}
        outcomes = [self._outcome(by_id[res.recipient_id], res) for res in results]
        if sync:
            outcomes = [self._not_retried(o) for o in outcomes]
        lost = await self.store.record(self.owner, outcomes)
        if self.metrics is not None:
            self._count(outcomes, lost)
        for o in outcomes:
            if o.recipient_id in lost:
                log.warning(
                    "lease lost", extra={"msg_id": first.message_id, "recipient_id": o.recipient_id}
                )
            else:
                log.info(
                    o.state,
                    extra={
                        "msg_id": first.message_id,
                        "recipient_id": o.recipient_id,
                        "response": o.response[:200],
                    },
                )
        return outcomes

    @staticmethod
    def _not_retried(o: Outcome) -> Outcome:
        if o.state not in ("deferred", "expired"):
            return o
        data = {
            **o.data,
            "bounce_type": "soft",
            "reason": "rejected",
            "diagnostic": o.response,
            "note": "synchronous hand-off refused; not retried (the client owns the retry)",
        }
        return Outcome(recipient_id=o.recipient_id, state="bounced", response=o.response, data=data)

    def envelope_from(self, rcpts: list[Claimed]) -> str:
        """The VERP return path: per recipient when the transaction has one, per message otherwise.

        A multi-recipient transaction shares one MAIL FROM, so its token carries recipient id 0
        and the DSN's Final-Recipient tells which recipient failed.
        """
        if self._mail_from is not None:
            return self._mail_from(rcpts[0])
        domain = self.settings.return_path_domain
        if self.verp_secret is None:
            return f"bounces@{domain}"
        rid = rcpts[0].id if len(rcpts) == 1 else 0
        return verp.encode(
            message_id=rcpts[0].message_id, recipient_id=rid, secret=self.verp_secret, domain=domain
        )

    def _count(self, outcomes: list[Outcome], lost: list[int]) -> None:
        assert self.metrics is not None
        now = self.clock.now()
        for o in outcomes:
            if o.recipient_id in lost:
                continue
            if o.state == "delivered":
                self.metrics.delivered(
                    latency_seconds=now - self._queued_at.get(o.recipient_id, now)
                )
            elif o.state == "deferred":
                self.metrics.deferred()
            elif o.state == "bounced":
                self.metrics.bounced(
                    str(o.data.get("reason", "undefined")),
                    bounce_type=str(o.data.get("bounce_type", "soft")),
                )
            elif o.state == "expired":
                self.metrics.expired()
            self._queued_at.pop(o.recipient_id, None)

    def _outcome(self, c: Claimed, res: RecipientResult) -> Outcome:
        self._queued_at[c.id] = c.queued_at
        data = {"status": res.status, "remote": res.remote, "code": res.code}
        response = res.text
        if res.outcome == "delivered":
            return Outcome(recipient_id=c.id, state="delivered", response=response, data=data)
        if res.outcome == "bounced":
            return Outcome(
                recipient_id=c.id,
                state="bounced",
                response=response,
                data={**data, **self._classify(res)},
            )
        now = self.clock.now()
        nxt = self.policy.next_attempt(queued_at=c.queued_at, now=now, rng=self.rng)
        if nxt is None:
            return Outcome(
                recipient_id=c.id,
                state="expired",
                response=response,
                data={
                    **data,
                    "bounce_type": classify_expired().bounce_type,
                    "reason": classify_expired().reason,
                    "diagnostic": response,
                },
            )
        return Outcome(
            recipient_id=c.id, state="deferred", response=response, next_attempt_at=nxt, data=data
        )

    @staticmethod
    def _classify(res: RecipientResult) -> dict[str, str]:
        c = classify(
            smtp_code=res.code,
            status=res.status or None,
            diagnostic=res.text,
            remote_mta=res.remote or None,
        )
        return {"bounce_type": c.bounce_type, "reason": c.reason, "diagnostic": res.text}
