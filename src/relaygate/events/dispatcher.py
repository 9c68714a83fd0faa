"""The webhook dispatcher: events outbox → one signed POST per event and endpoint, retried.

Each round: fan the new events out into deliveries (``Webhooks.fan_out``, exactly once),
claim due deliveries with a lease, build each body from the event and its message
(``payloads.build_payload``), sign it (``signing.signature_headers``: the current secret, plus
the previous one during a rotation's grace period, which alone makes ``X-SM-Signature`` until the
grace ends), POST it (``sender.post_event``: SSRF checks
again at send time, pinned address, ``[webhooks] timeout``), and record the attempt with the
delivery's next state: ``succeeded`` on a 2xx, else ``pending`` at ``schedule.next_attempt``
(30 s, 5 min, 30 min, 2 h, 6 h after the failed try), else ``abandoned``.

Bounded: at most ``window`` deliveries are leased by one dispatcher at a time, and at most
``[webhooks] concurrency_per_endpoint`` per endpoint across all dispatchers (counted in the
store). A claim only takes what can start at once, so an endpoint that hangs occupies its own
slots until the timeout cuts it, and never the other endpoints'. A backlog of any size lives in
the store, not in memory.

Guarantees (what receivers may rely on):

* **At least once.** A delivery is marked succeeded only after a 2xx; if the process dies
  between the 2xx and the commit, the lease runs out and the event is sent again. Receivers
  de-duplicate on ``X-SM-Event-Id`` (``evt_<n>``, the same for every attempt and replay of one
  event; ``n`` grows in order of occurrence).
* **Order, where possible.** For one endpoint, an event of a message is not sent while an
  earlier event of the same message to that endpoint is in flight or has not been tried yet; so
  while an endpoint answers, it gets each message's events in the order they happened. Once an
  event has failed and waits for its retry, later events of that message go ahead (one bad
  event does not hold the others for hours), so after failures the order is not guaranteed:
  order by ``event_timestamp`` / the event id's number. Events of different messages are not
  ordered.
* **Durable.** Deliveries, their schedule and every attempt live in the store; a restart loses
  no attempt and adds none (except the at-least-once re-send of an attempt cut by a crash).

The retry times are the contract's exactly (no jitter) unless ``rng`` is given.

Trust: secrets reach this module only to sign; nothing here logs a secret, a body, or a URL
(its query may carry a token): log lines name the delivery, webhook and message ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import dns.asyncresolver

from relaygate.clock import Clock, iso
from relaygate.events import schedule
from relaygate.events.payloads import build_domain_payload, build_payload
from relaygate.events.sender import SendOutcome, SendResult, post_event
from relaygate.events.signing import signature_headers
from relaygate.owners import is_dead_local_owner, new_owner
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.ids import delivery_ref
from relaygate.store.models import AttemptResult, ClaimedDelivery

log = logging.getLogger("relaygate.webhooks")

DEFAULT_WINDOW = 100
#: A delivery failing this long (seconds since its first failed try) is logged as a warning.
FAILING_WARNING = 3600.0
IDLE_WAIT = 0.5
MIN_ROUND = 0.05
"""Wake-ups closer together than this are coalesced into one round: a relay recording a few
hundred outcomes a second wakes the dispatcher each time, and each round costs a fan-out
transaction; batching them adds at most 50 ms to a webhook's latency."""


class PostFn(Protocol):
    """``sender.post_event``'s signature (a seam for tests and benchmarks)."""

    def __call__(
        self,
        *,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        resolver: dns.asyncresolver.Resolver,
        allow_private: bool,
        timeout: float,
        ca_context: ssl.SSLContext | None,
        allow_http: bool,
    ) -> Awaitable[SendResult]: ...


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def build_body(d: ClaimedDelivery) -> bytes:
    """The exact JSON body for a claimed delivery. Raises ValueError on unusable event data.

    The type-specific fields come from the event's data under the payload's own names; a
    required one that is missing becomes its neutral value (``None``; for bounces
    ``bounce_type`` "soft" and ``reason`` "undefined"; for clicks ``url`` "").
    """
    data = d.event_data
    if d.event_type.startswith("domain_"):
        since = data.get("missing_since")
        return build_domain_payload(
            user_id=d.account_id,
            domain=_text(data.get("domain")) or "",
            status=_text(data.get("status")) or d.event_type.removeprefix("domain_"),
            previous_status=_text(data.get("previous_status")) or "",
            reason=_text(data.get("reason")) or "",
            missing_since=float(since) if isinstance(since, int | float) else None,
            event_timestamp=d.event_created_at,
        )
    extra: dict[str, Any] = {}
    if d.event_type == "bounce":
        extra = {
            "bounce_type": _text(data.get("bounce_type")) or "soft",
            "status": _text(data.get("status")),
            "diagnostic": _text(data.get("diagnostic")),
            "reason": _text(data.get("reason")) or "undefined",
        }
    elif d.event_type in ("open", "click"):
        extra = {"user_agent": _text(data.get("user_agent")), "ip": _text(data.get("ip"))}
        if d.event_type == "click":
            extra["url"] = _text(data.get("url")) or ""
        for flag in ("is_proxy", "is_scanner", "first"):
            if isinstance(data.get(flag), bool):
                extra[flag] = data[flag]
    elif d.event_type == "complaint" and "feedback_type" in data:
        extra["feedback_type"] = _text(data["feedback_type"])
    return build_payload(
        event_type=d.event_type,
        user_id=d.account_id,
        sm_mail_id=d.message_id or "",
        message_id=d.header_message_id,
        recipients=d.recipients,
        smtp_response=_text(data.get("smtp_response")) or "",
        event_timestamp=d.event_created_at,
        tags=d.tags,
        extra=extra,
    )


def event_ref(event_id: int) -> str:
    """The ``X-SM-Event-Id`` of an event: ``evt_<n>``."""
    return f"evt_{event_id}"


class WebhookDispatcher:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        resolver: dns.asyncresolver.Resolver,
        *,
        ca_context: ssl.SSLContext | None = None,
        post: PostFn | None = None,
        window: int = DEFAULT_WINDOW,
        rng: Callable[[], float] | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.hooks = store.webhooks
        self.settings = settings
        self.clock = clock
        self.resolver = resolver
        self.ca_context = ca_context
        self._post: PostFn = post or post_event
        self.window = window
        self.rng = rng
        self.owner = owner or new_owner()
        self.lease_seconds = settings.webhooks.timeout + 60.0
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self.max_inflight = 0
        """The most deliveries this dispatcher ever held at once (a test and metrics probe)."""

    # -- lifecycle ------------------------------------------------------------------------------
    def recover(self) -> int:
        """At start-up: release leases held by processes of this host that no longer exist."""
        count = self.hooks.release_dead_owners(is_dead_local_owner)
        if count:
            log.info("released webhook leases of dead processes", extra={"count": count})
        return count

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; let in-flight attempts finish (bounded), give back what is left."""
        self.stopping = True
        self._wake.set()
        tasks = list(self._inflight.values())
        if tasks:
            limit = self.settings.webhooks.timeout + 2.0 if timeout is None else timeout
            await asyncio.wait(tasks, timeout=limit)
        leftover = list(self._inflight)
        for task in self._inflight.values():
            task.cancel()
        if leftover:
            with contextlib.suppress(Exception):
                await self.hooks.release(self.owner, leftover)

    async def run(self) -> None:
        """Fan out, claim and send until ``stop()``; sleeps while nothing is due."""
        loop = asyncio.get_running_loop()
        while not self.stopping:
            last_round = loop.time()
            try:
                started, more = await self._fill()
            except Exception:
                log.exception("webhook dispatch loop error")
                started, more = 0, False
            if started or more or self.stopping:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
            waiters.extend(self._inflight.values())
            await asyncio.wait(
                waiters, timeout=self._idle_wait(), return_when=asyncio.FIRST_COMPLETED
            )
            woken = waiters[0].done()
            waiters[0].cancel()
            pause = last_round + MIN_ROUND - loop.time()
            if woken and pause > 0 and not self.stopping:
                await asyncio.sleep(pause)  # let the wake-ups of the next few ms pile up

    def _idle_wait(self) -> float:
        due = self.hooks.next_due()
        now = self.clock.now()
        if due is None or due <= now:
            # Nothing due, or due but held back (endpoint busy, ordering): a finishing attempt
            # wakes the loop; the poll covers other processes and new events.
            return IDLE_WAIT
        return max(0.01, min(IDLE_WAIT, due - now))

    async def run_once(self) -> int:
        """One round: fan out, claim what is due, send it all, record. Returns deliveries handled."""
        started, _ = await self._fill()
        tasks = list(self._inflight.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return started

    async def drain(self, *, max_rounds: int = 1_000_000) -> int:
        """``run_once`` until a round finds nothing due (tests, tools). Returns the total."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.run_once()
            total += handled
            if handled == 0 and not self.hooks.events_waiting():
                break
        return total

    # -- one round ------------------------------------------------------------------------------
    async def _fill(self) -> tuple[int, bool]:
        """Fan out one batch of events and start as many due deliveries as the window allows."""
        now = self.clock.now()
        more = False
        if self.hooks.events_waiting():
            _, more = await self.hooks.fan_out(now=now)
        free = self.window - len(self._inflight)
        if free <= 0 or self.stopping or not self.hooks.anything_due(now):
            return 0, more
        claimed = await self.hooks.claim(  # leases judged by the store's clock
            self.owner,
            limit=free,
            per_endpoint=self.settings.webhooks.concurrency_per_endpoint,
            lease_seconds=self.lease_seconds,
        )
        for d in claimed:
            self._inflight[d.id] = asyncio.create_task(
                self._run_one(d), name=f"webhook {delivery_ref(d.id)}"
            )
        self.max_inflight = max(self.max_inflight, len(self._inflight))
        return len(claimed), more

    async def _run_one(self, d: ClaimedDelivery) -> None:
        try:
            await self._deliver(d)
        finally:
            self._inflight.pop(d.id, None)

    async def _deliver(self, d: ClaimedDelivery) -> None:
        extra = {
            "delivery_id": delivery_ref(d.id),
            "webhook_id": d.webhook_id,
            "msg_id": d.message_id,
            "event_id": event_ref(d.event_id),
        }
        try:
            body = build_body(d)
        except ValueError as exc:
            log.error("webhook payload cannot be built", extra={**extra, "error": str(exc)})
            await self._record(
                d,
                ok=False,
                status=None,
                outcome="invalid",
                error=f"payload: {exc}",
                duration=0.0,
                final=True,
                extra=extra,
            )
            return
        headers = signature_headers(
            body=body,
            secrets=list(d.secrets),
            event_id=event_ref(d.event_id),
            timestamp=int(self.clock.now()),
        )
        w = self.settings.webhooks
        try:
            result = await self._post(
                url=d.url,
                body=body,
                headers=headers,
                resolver=self.resolver,
                allow_private=w.allow_private,
                timeout=w.timeout,
                ca_context=self.ca_context,
                allow_http=w.allow_private,
            )
        except Exception as exc:  # post_event does not raise; a test double might
            log.exception("webhook sender error", extra=extra)
            result = SendResult(
                ok=False,
                status=None,
                error=f"local error: {type(exc).__name__}",
                duration=0.0,
                outcome=SendOutcome.CONNECT,
            )
        await self._record(
            d,
            ok=result.ok,
            status=result.status,
            outcome=str(result.outcome),
            error=result.error or "",
            duration=result.duration,
            final=False,
            extra=extra,
            response=result.response_excerpt,
        )

    async def _record(
        self,
        d: ClaimedDelivery,
        *,
        ok: bool,
        status: int | None,
        outcome: str,
        error: str,
        duration: float,
        final: bool,
        extra: dict[str, Any],
        response: str = "",
    ) -> None:
        now = self.clock.now()
        next_at = (
            None
            if ok or final
            else schedule.next_attempt(attempts_made=d.attempts + 1, now=now, rng=self.rng)
        )
        result = AttemptResult(
            delivery_id=d.id,
            ok=ok,
            status=status,
            outcome=outcome,
            error=error,
            duration_ms=int(duration * 1000),
            next_attempt_at=next_at,
            response=response,
        )
        try:
            recorded = await self.hooks.record(self.owner, result, now=now)
        except Exception:
            log.exception("webhook attempt not recorded", extra=extra)
            return
        info = {**extra, "attempt": d.attempts + 1, "status": status, "outcome": outcome}
        if not recorded:
            log.warning("webhook lease lost", extra=info)
        elif ok:
            log.info("webhook delivered", extra=info)
        elif next_at is None:
            log.warning("webhook abandoned", extra={**info, "error": error})
        elif schedule.failing_for(d.attempts + 1) >= FAILING_WARNING:
            # What an operator must act on (API.md §14): an endpoint failing for an hour.
            log.warning(
                "webhook failing", extra={**info, "error": error, "next_attempt_at": iso(next_at)}
            )
        else:
            log.info(
                "webhook deferred", extra={**info, "error": error, "next_attempt_at": iso(next_at)}
            )
