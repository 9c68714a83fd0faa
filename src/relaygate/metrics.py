"""Prometheus metrics: the counters relaygate keeps and the ``GET /metrics`` body.

Owns: one private ``prometheus_client.CollectorRegistry`` per ``Metrics`` object (never the
global one, so tests and several app instances can each build their own), the metric names,
their help texts and their label sets, and the scrape-time queue gauges.

Label policy (cardinality is bounded by construction):

- ``channel``: ``http`` | ``smtp`` (a ``Channel``; anything else is a programming error).
- ``reason`` (bounces): one of ``BOUNCE_REASONS``; any other value is counted as ``other``.
- ``bounce_type``: ``hard`` | ``soft`` (anything else → ``other``).
- ``state`` (queue depth): whatever states the store's snapshot reports (a small fixed enum).
- ``event_type`` (webhooks): ``WEBHOOK_EVENT_TYPES``, others → ``other``.
- ``rtype``/``kind`` (DNS errors) and ``direction``/``tls`` (SMTP sessions): small fixed sets.
- Never a label: recipient domain, account, address, message id, URL. Per-domain figures belong
  in logs and the read API, not in a time series per domain.

Trusts: its callers. ``channel`` and ``direction`` are chosen by relaygate's own code, so a wrong
one is a programming error (``ValueError``); labels derived from outside data (reasons, event
types, DNS and TLS details) are folded into ``other``, never rejected (a metric must not break
delivery). The queue snapshot callable is called during a scrape;
if it raises, the scrape still succeeds and ``relaygate_queue_snapshot_up`` is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from relaygate import __version__
from relaygate.clock import Clock, SystemClock

__all__ = [
    "BOUNCE_REASONS",
    "QUEUE_STATES",
    "WEBHOOK_EVENT_TYPES",
    "Channel",
    "Metrics",
    "QueueSnapshot",
]

log = logging.getLogger(__name__)

#: Bounce reasons kept as distinct label values: the classifier's vocabulary (Sisimai's reasons,
#: relaygate.bounces.classify.REASONS; a unit test holds the two equal, since the foundation
#: layer may not import the bounces package) plus ``suppressed`` (not sent: on the suppression
#: list). Anything else counts as ``other``.
BOUNCE_REASONS: frozenset[str] = frozenset(
    {
        "authfailure",
        "badreputation",
        "blocked",
        "contenterror",
        "exceedlimit",
        "expired",
        "failedstarttls",
        "filtered",
        "hasmoved",
        "hostunknown",
        "mailboxfull",
        "mailererror",
        "mesgtoobig",
        "networkerror",
        "norelaying",
        "notaccept",
        "notcompliantrfc",
        "onhold",
        "policyviolation",
        "rejected",
        "requireptr",
        "securityerror",
        "spamdetected",
        "speeding",
        "suspend",
        "syntaxerror",
        "systemerror",
        "systemfull",
        "toomanyconn",
        "undefined",
        "userunknown",
        "virusdetected",
        "suppressed",
        "other",
    }
)

#: States that always appear in ``relaygate_queue_recipients`` (0 when the snapshot omits them).
QUEUE_STATES: tuple[str, ...] = ("queued", "active", "deferred", "held")

WEBHOOK_EVENT_TYPES: frozenset[str] = frozenset(
    {"delivery", "bounce", "open", "click", "complaint", "domain", "other"}
)
_BOUNCE_TYPES = frozenset({"hard", "soft", "other"})
_DNS_RTYPES = frozenset({"MX", "A", "AAAA", "TXT", "PTR", "other"})
_DNS_KINDS = frozenset({"timeout", "servfail", "nxdomain", "nonameservers", "other"})
_DIRECTIONS = frozenset({"inbound", "outbound"})
_TLS_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3", "none", "other"})
_ATTEMPT_OUTCOMES = frozenset({"delivered", "deferred", "bounced", "other"})

#: Accepted → delivered, seconds: from sub-second (capture, warm MX) to the 5-day lifetime.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    24 * 3600.0,
    5 * 24 * 3600.0,
)
#: One SMTP delivery attempt (connect → QUIT), seconds.
ATTEMPT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Channel(StrEnum):
    """The ways a message can be accepted."""

    HTTP = "http"
    SMTP = "smtp"


@dataclass(frozen=True, kw_only=True)
class QueueSnapshot:
    """What the store reports at scrape time.

    ``by_state``: recipient count per state (non-terminal states at least).
    ``oldest_queued_at``: epoch seconds at which the oldest still-undelivered recipient
    (queued, active or deferred) was accepted, or None when there is none.
    """

    by_state: Mapping[str, int] = field(default_factory=dict)
    oldest_queued_at: float | None = None


def _fold(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class _QueueCollector(Collector):
    """Computes the queue gauges from the store when Prometheus scrapes."""

    def __init__(self, snapshot: Callable[[], QueueSnapshot], clock: Clock) -> None:
        self._snapshot = snapshot
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        # Describing without calling the store keeps registration free of I/O.
        return self._families(QueueSnapshot(), up=True)

    def collect(self) -> Iterable[Metric]:
        try:
            snap = self._snapshot()
        except Exception:
            log.exception("queue snapshot for /metrics failed")
            return self._families(QueueSnapshot(), up=False)
        return self._families(snap, up=True)

    def _families(self, snap: QueueSnapshot, *, up: bool) -> list[Metric]:
        up_family = GaugeMetricFamily(
            "relaygate_queue_snapshot_up",
            "1 when the queue gauges below were read from the store in this scrape, 0 when that failed.",
            value=1 if up else 0,
        )
        if not up:
            return [up_family]
        depth = GaugeMetricFamily(
            "relaygate_queue_recipients",
            "Recipients in the spool by state, read from the store at scrape time.",
            labels=["state"],
        )
        counts = dict.fromkeys(QUEUE_STATES, 0)
        counts.update({str(k): int(v) for k, v in snap.by_state.items()})
        for state in sorted(counts):
            depth.add_metric([state], counts[state])
        oldest = GaugeMetricFamily(
            "relaygate_queue_oldest_age_seconds",
            "Age of the oldest recipient not yet delivered, bounced or expired; 0 when the queue is empty.",
            value=(
                0.0
                if snap.oldest_queued_at is None
                else max(0.0, self._clock.now() - snap.oldest_queued_at)
            ),
        )
        return [up_family, depth, oldest]


class _WithoutCreated(Collector):
    """The registry's metrics minus the ``*_created`` samples, which only double the output."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():
            created = metric.name + "_created"
            if not any(sample.name == created for sample in metric.samples):
                yield metric
                continue
            trimmed = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            trimmed.samples = [sample for sample in metric.samples if sample.name != created]
            yield trimmed


class Metrics:
    """relaygate's metrics on a private registry. Record with the methods; serve ``render()``.

    ``queue_snapshot`` (optional, or set later with ``set_queue_snapshot``) is called on every
    scrape to produce ``relaygate_queue_recipients{state}`` and
    ``relaygate_queue_oldest_age_seconds``. ``process=True`` adds the standard ``process_*`` and
    ``python_info`` collectors (Linux /proc based) to this registry.
    """

    def __init__(
        self,
        *,
        queue_snapshot: Callable[[], QueueSnapshot] | None = None,
        clock: Clock | None = None,
        process: bool = True,
        role: str = "all",
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock: Clock = clock or SystemClock()
        self._queue_collector: _QueueCollector | None = None
        self._exposed = _WithoutCreated(self.registry)
        reg = self.registry

        info = Info(
            "relaygate_build", "relaygate version and the role(s) this process runs.", registry=reg
        )
        info.info({"version": __version__, "role": role})

        self._accepted: dict[str, tuple[Counter, Counter]] = {}
        self.messages_accepted = Counter(
            "relaygate_messages_accepted",
            "Messages accepted (committed to the spool), by the channel they came in on.",
            ["channel"],
            registry=reg,
        )
        self.recipients_accepted = Counter(
            "relaygate_recipients_accepted",
            "Recipients accepted (to+cc+bcc of accepted messages), by channel.",
            ["channel"],
            registry=reg,
        )
        self.recipients_delivered = Counter(
            "relaygate_recipients_delivered",
            "Recipients whose delivery was accepted with a 2xx by the next hop (or captured).",
            registry=reg,
        )
        self.recipients_deferred = Counter(
            "relaygate_recipients_deferred",
            "Delivery attempts that ended in a temporary failure (4xx, network, DNS) and were rescheduled.",
            registry=reg,
        )
        self.recipients_bounced = Counter(
            "relaygate_recipients_bounced",
            "Recipients that bounced (5xx, no route, late DSN, suppressed), by bounce type and reason.",
            ["bounce_type", "reason"],
            registry=reg,
        )
        self.recipients_expired = Counter(
            "relaygate_recipients_expired",
            "Recipients still undelivered at the end of the queue lifetime.",
            registry=reg,
        )
        self.delivery_latency = Histogram(
            "relaygate_delivery_latency_seconds",
            "Time from acceptance to successful delivery of a recipient.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.delivery_attempt_duration = Histogram(
            "relaygate_delivery_attempt_duration_seconds",
            "Duration of one outbound SMTP delivery attempt, by outcome.",
            ["outcome"],
            buckets=ATTEMPT_BUCKETS,
            registry=reg,
        )
        self.webhook_attempts = Counter(
            "relaygate_webhook_attempts",
            "Webhook POSTs attempted, by event type.",
            ["event_type"],
            registry=reg,
        )
        self.webhook_failures = Counter(
            "relaygate_webhook_failures",
            "Webhook POSTs that did not get a 2xx within the timeout, by event type.",
            ["event_type"],
            registry=reg,
        )
        self.webhook_abandoned = Counter(
            "relaygate_webhook_abandoned",
            "Webhook deliveries given up after the last retry, by event type.",
            ["event_type"],
            registry=reg,
        )
        self.dns_errors = Counter(
            "relaygate_dns_errors",
            "DNS lookups that failed, by record type and kind of failure.",
            ["rtype", "kind"],
            registry=reg,
        )
        self.smtp_sessions = Counter(
            "relaygate_smtp_sessions",
            "SMTP sessions by direction (inbound submission / outbound delivery) and TLS version ('none' = plaintext).",
            ["direction", "tls"],
            registry=reg,
        )
        for channel in Channel:
            self.messages_accepted.labels(channel.value)
            self.recipients_accepted.labels(channel.value)

        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
        if queue_snapshot is not None:
            self.set_queue_snapshot(queue_snapshot)

    # -- the scrape-time hook ------------------------------------------------------------------

    def set_queue_snapshot(self, snapshot: Callable[[], QueueSnapshot]) -> None:
        """Install (or replace) the callable that reports queue depth at scrape time."""
        if self._queue_collector is not None:
            self.registry.unregister(self._queue_collector)
        self._queue_collector = _QueueCollector(snapshot, self._clock)
        self.registry.register(self._queue_collector)

    # -- recording ---------------------------------------------------------------------------

    def accepted(self, channel: Channel | str, *, recipients: int) -> None:
        """One message with ``recipients`` recipients was committed to the spool."""
        children = self._accepted.get(channel)
        if children is None:  # once per channel: labels() is a lock and a lookup per call
            ch = Channel(channel).value
            children = (self.messages_accepted.labels(ch), self.recipients_accepted.labels(ch))
            self._accepted[channel] = children
        messages, recipients_counter = children
        messages.inc()
        if recipients > 0:
            recipients_counter.inc(recipients)

    def delivered(self, *, latency_seconds: float | None = None) -> None:
        """One recipient delivered; ``latency_seconds`` = delivered_at - accepted_at."""
        self.recipients_delivered.inc()
        if latency_seconds is not None and latency_seconds >= 0:
            self.delivery_latency.observe(latency_seconds)

    def deferred(self) -> None:
        """One recipient's attempt failed temporarily and was rescheduled."""
        self.recipients_deferred.inc()

    def bounced(self, reason: str, *, bounce_type: str = "hard") -> None:
        """One recipient bounced. ``reason`` outside ``BOUNCE_REASONS`` counts as ``other``."""
        self.recipients_bounced.labels(
            _fold(bounce_type, _BOUNCE_TYPES), _fold(reason, BOUNCE_REASONS)
        ).inc()

    def expired(self) -> None:
        """One recipient reached the end of the queue lifetime undelivered."""
        self.recipients_expired.inc()

    def delivery_attempt(self, outcome: str, seconds: float) -> None:
        """One outbound SMTP attempt finished (``delivered`` | ``deferred`` | ``bounced``)."""
        self.delivery_attempt_duration.labels(_fold(outcome, _ATTEMPT_OUTCOMES)).observe(
            max(0.0, seconds)
        )

    def webhook_attempt(self, event_type: str, *, ok: bool) -> None:
        """One webhook POST made; ``ok`` False also counts a failure."""
        et = _fold(event_type, WEBHOOK_EVENT_TYPES)
        self.webhook_attempts.labels(et).inc()
        if not ok:
            self.webhook_failures.labels(et).inc()

    def webhook_given_up(self, event_type: str) -> None:
        """One webhook delivery abandoned after its last retry."""
        self.webhook_abandoned.labels(_fold(event_type, WEBHOOK_EVENT_TYPES)).inc()

    def dns_error(self, rtype: str, kind: str) -> None:
        """One failed DNS lookup (``kind``: timeout | servfail | nxdomain | nonameservers | other)."""
        self.dns_errors.labels(_fold(rtype.upper(), _DNS_RTYPES), _fold(kind, _DNS_KINDS)).inc()

    def smtp_session(self, direction: str, tls_version: str | None) -> None:
        """One SMTP session; ``tls_version`` as ``ssl.SSLObject.version()`` gives it, None = plaintext."""
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be inbound or outbound, not {direction!r}")
        tls = "none" if tls_version is None else _fold(tls_version, _TLS_VERSIONS)
        self.smtp_sessions.labels(direction, tls).inc()

    # -- exposition --------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The ``GET /metrics`` body and its Content-Type.

        ``accept`` is the request's Accept header: Prometheus text format 0.0.4 by default,
        OpenMetrics when the scraper asks for it. Calls the queue snapshot (blocking): from an
        async handler, run it in a thread (``starlette.concurrency.run_in_threadpool``).
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._exposed), content_type  # type: ignore[arg-type]
