"""The scheduler: claims due recipients with a lease, groups them into per-message, per-domain
batches, hands each batch to the transport, and records per-recipient outcomes.

Bounded: at most ``batch_size`` recipients are leased per claim and at most ``concurrency``
transactions run at once, so a backlog of a million queued recipients never grows memory.
A crash loses nothing: leases expire and the work is claimed again.

Leases (API.md §14): while a transaction runs, its recipients' leases are renewed every third of
``lease_seconds`` (judged by the injected clock, looked at every ``renew_tick`` seconds), so a
slow receiver — a tarpit taking the full 600 s to answer DATA — never lets another worker claim
and deliver the same message again; and this worker's own claims never put back what it still
has in flight, even past a lease's end (a clock jump, a store too busy to renew). Expiry itself
is the store's to judge (``Queue.claim`` / ``Queue.renew`` use the store's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Callable

from relaygate.bounces import verp
from relaygate.bounces.changes import outcome_suppression
from relaygate.bounces.classify import classify, classify_expired
from relaygate.clock import Clock
from relaygate.owners import is_dead_local_owner, new_owner
from relaygate.relay.backoff import RetryPolicy
from relaygate.relay.signing import Body, BodySource
from relaygate.relay.transport import Batch, RecipientResult, Transport
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import Claimed, Outcome

log = logging.getLogger("relaygate.relay")

#: A recipient waiting this long (seconds since it was queued) makes the queue "behind": a warning.
QUEUE_AGE_WARNING = 3600.0
#: How often (seconds, by the injected clock) a worker looks, and so repeats the warning.
QUEUE_AGE_EVERY = 300.0


def transactions(claimed: list[Claimed]) -> list[list[Claimed]]:
    """Claimed recipients → SMTP transactions: one per (message, destination domain), and one
    per recipient for a tracked message (each recipient has a body of its own)."""
    groups: dict[tuple[str, str, int], list[Claimed]] = defaultdict(list)
    for c in claimed:
        groups[(c.message_id, c.domain, c.ordinal if c.tracked else -1)].append(c)
    return list(groups.values())


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
        bodies: BodySource | None = None,
        rng: random.Random | None = None,
    ) -> None:
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
        #: Signs on the first attempt (MessageSigner); None sends the stored body as it is.
        self._bodies = bodies
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.delivery.concurrency)
        self.stopping = False
        self.drain_timeout = 20.0
        #: Recipients in flight in this worker: renewed, and never reclaimed by its own claims.
        self._held: set[int] = set()
        self._renewer: asyncio.Task[None] | None = None
        #: Real seconds between looks at the clock for a due renewal.
        self.renew_tick = 1.0
        self.renewals = 0
        self._next_age_check = 0.0
        #: Called after outcomes are committed (e.g. wakes the webhook dispatcher in this process).
        self.on_record: Callable[[], None] | None = None

    async def check_queue_age(self) -> float | None:
        """At most every ``QUEUE_AGE_EVERY`` seconds: how long the oldest recipient waiting for
        delivery has waited, and a warning when that is ``QUEUE_AGE_WARNING`` or more (API.md
        §14: the queue falling behind is for an operator to act on). None when not looked."""
        now = self.clock.now()
        if now < self._next_age_check:
            return None
        self._next_age_check = now + QUEUE_AGE_EVERY
        oldest = await asyncio.to_thread(self.store.queue.oldest_pending)
        age = 0.0 if oldest is None else max(0.0, now - oldest)
        if age >= QUEUE_AGE_WARNING:
            log.warning(
                "queue behind: the oldest waiting recipient was queued %d minutes ago",
                age // 60,
                extra={"oldest_age_seconds": round(age)},
            )
        return age

    def recover(self) -> int:
        """At start-up: release leases held by processes of this host that no longer exist."""
        count = self.store.queue.release_dead_owners(is_dead_local_owner)
        if count:
            log.info("released leases of dead processes", extra={"count": count})
        return count

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until ``stop()``, keeping up to ``concurrency`` transactions in flight.

        It claims again as soon as enough slots are free, so a slow destination (a tarpit) holds
        only the slots of its own transactions and never stalls the loop for everyone else.
        On stop, in-flight transactions get ``drain_timeout`` seconds to finish; the rest are
        cancelled and their leases released.
        """
        d = self.settings.delivery
        refill = max(1, min(d.batch_size, d.concurrency) // 5)
        inflight: set[asyncio.Task[list[Outcome]]] = set()
        try:
            while not self.stopping:
                free = d.concurrency - len(inflight)
                if free < refill and inflight:
                    await self._wait_for_slot(inflight)
                    continue
                self._wake.clear()
                try:
                    handled = await self._claim_and_start(min(d.batch_size, free), inflight)
                except Exception:
                    log.exception("delivery loop error")
                    handled = 0
                if handled == 0:
                    try:
                        await self.check_queue_age()
                    except Exception:
                        log.exception("queue age check failed")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self._idle_wait())
        finally:
            await self._drain(inflight)
            await self.transport.aclose()

    async def _claim_and_start(self, limit: int, inflight: set[asyncio.Task[list[Outcome]]]) -> int:
        d = self.settings.delivery
        claimed = await self.store.queue.claim(
            self.owner,
            limit=limit,
            lease_seconds=d.lease_seconds,
            max_lease_losses=d.max_lease_losses,
            keep=frozenset(self._held),
        )
        for rcpts in transactions(claimed):
            task = asyncio.create_task(self._deliver_group(rcpts))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        return len(claimed)

    async def _wait_for_slot(self, inflight: set[asyncio.Task[list[Outcome]]]) -> None:
        """Until a transaction finishes or ``stop()`` is called."""
        self._wake.clear()
        woken = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({woken, *inflight}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()

    async def _drain(self, inflight: set[asyncio.Task[list[Outcome]]]) -> None:
        if not inflight:
            return
        _done, pending = await asyncio.wait(set(inflight), timeout=self.drain_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    def _idle_wait(self) -> float:
        due = self.store.queue.next_due()
        if due is None:
            return 1.0
        return max(0.02, min(1.0, due - self.clock.now()))

    async def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def run_once(self) -> int:
        """One claim-deliver-record round. Returns how many recipients were handled."""
        d = self.settings.delivery
        claimed = await self.store.queue.claim(
            self.owner,
            limit=d.batch_size,
            lease_seconds=d.lease_seconds,
            max_lease_losses=d.max_lease_losses,
            keep=frozenset(self._held),
        )
        if not claimed:
            return 0
        await asyncio.gather(*(self._deliver_group(rcpts) for rcpts in transactions(claimed)))
        return len(claimed)

    async def deliver_now(self, message_id: str) -> list[Outcome]:
        """Synchronous hand-off (smarthost_sync): deliver one message now and return its outcomes.

        Nothing is retried: a recipient the upstream did not take is recorded as bounced
        (reason ``rejected``; the client owns the retry), so the 502 and the store agree.
        """
        claimed = await self.store.queue.claim_message(
            self.owner,
            message_id,
            lease_seconds=self.settings.delivery.lease_seconds,
            keep=frozenset(self._held),
        )
        results = await asyncio.gather(
            *(self._deliver_group(rcpts, sync=True) for rcpts in transactions(claimed))
        )
        return [o for group in results for o in group]

    async def _deliver_group(self, rcpts: list[Claimed], *, sync: bool = False) -> list[Outcome]:
        ids = [r.id for r in rcpts]
        self._held.update(ids)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_loop(), name="lease-renewal")
        try:
            return await self._deliver_and_record(rcpts, sync=sync)
        except asyncio.CancelledError:
            # Shutting down mid-transaction: give the leases back (a no-op for any recipient
            # whose outcome was recorded already) so a restart or another worker sends at once.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.queue.release(self.owner, [r.id for r in rcpts]))
            raise
        except Exception:
            log.exception("delivery error", extra={"msg_id": rcpts[0].message_id})
            return []
        finally:
            self._held.difference_update(ids)
            if not self._held and self._renewer is not None:
                self._renewer.cancel()  # nothing left to renew
                self._renewer = None

    async def renew_leases(self) -> int:
        """Renew the leases of every recipient in flight now; returns how many were renewed."""
        ids = sorted(self._held)
        if not ids:
            return 0
        renewed = await self.store.queue.renew(
            self.owner, ids, lease_seconds=self.settings.delivery.lease_seconds
        )
        self.renewals += 1
        lost = len(set(ids) & self._held) - len(renewed)
        if lost > 0:
            log.warning("leases lost while in flight", extra={"count": lost})
        return len(renewed)

    async def _renew_loop(self) -> None:
        """While anything is in flight: renew every third of the lease, by the injected clock
        (a look every ``renew_tick`` real seconds; a clock that jumps renews at the next look).
        A store that cannot take the renewal now is asked again at the next look."""
        every = self.settings.delivery.lease_seconds / 3
        due = self.clock.now() + every
        while self._held:
            await asyncio.sleep(self.renew_tick)
            if not self._held or self.clock.now() < due:
                continue
            try:
                await self.renew_leases()
            except Exception as exc:
                log.warning(
                    "lease renewal failed; trying again", extra={"error": type(exc).__name__}
                )
                continue
            due = self.clock.now() + every

    async def _deliver_and_record(
        self, rcpts: list[Claimed], *, sync: bool = False
    ) -> list[Outcome]:
        first = rcpts[0]
        body: Body | None = None
        async with self._sem:
            try:
                if self._bodies is not None:
                    body = await self._bodies.prepare(first)
                else:
                    body = Body(
                        data=self.store.messages.body_for_delivery(
                            first.message_id, first.ordinal if first.tracked else None
                        )[0]
                    )
                batch = Batch(
                    message_id=first.message_id,
                    account_id=first.account_id,
                    domain=first.domain,
                    senders=self.envelope_senders(rcpts),
                    data=body.data,
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
        save = body.save if body is not None else None
        lost = await self.store.queue.record(self.owner, outcomes, prepared=save)
        if save is not None and self._bodies is not None:
            self._bodies.saved(save)
        if self.on_record is not None:
            self.on_record()
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

    def envelope_senders(self, rcpts: list[Claimed]) -> tuple[str, ...]:
        """Each recipient's envelope sender: its own VERP return path, signed for this message
        and this recipient, so a DSN that comes back to it can change no other recipient (the
        transport sends one transaction per distinct sender). Without a secret, ``bounces@``."""
        if self._mail_from is not None:
            return tuple(self._mail_from(r) for r in rcpts)
        domain = self.settings.return_path_domain
        if self.verp_secret is None:
            return tuple(f"bounces@{domain}" for _ in rcpts)
        return tuple(
            verp.encode(
                message_id=r.message_id, recipient_id=r.id, secret=self.verp_secret, domain=domain
            )
            for r in rcpts
        )

    def _outcome(self, c: Claimed, res: RecipientResult) -> Outcome:
        data = {"status": res.status, "remote": res.remote, "code": res.code}
        response = res.text
        if res.outcome == "delivered":
            return Outcome(recipient_id=c.id, state="delivered", response=response, data=data)
        if res.outcome == "bounced":
            verdict = self._classify(res)
            return Outcome(
                recipient_id=c.id,
                state="bounced",
                response=response,
                data={**data, **verdict},
                suppress=outcome_suppression("bounced", verdict["bounce_type"], verdict["reason"]),
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
            # The reply answered this command: RCPT (about the address) or DATA (about the
            # content); "" for relaygate's own verdicts (no route, too big, no SMTPUTF8).
            command=res.command or "",
        )
        return {"bounce_type": c.bounce_type, "reason": c.reason, "diagnostic": res.text}
