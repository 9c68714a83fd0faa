"""Prometheus metrics: what relaygate counts and the ``GET /metrics`` body.

Owns: one private ``prometheus_client.CollectorRegistry`` per ``Metrics`` object (never the
global one, so tests and several app instances can each build their own), the metric names,
their help texts and their label sets.

Two kinds of metrics, by where the truth lives:

* **Read from the store at scrape time** (``status=``, given to the process that serves the HTTP
  API): messages and recipients accepted, delivered, deferred, bounced by reason, expired,
  complained; delivery latency; webhook attempts and failures; the queue by state and its
  oldest age; webhook deliveries waiting or abandoned. Whatever role did the work (split roles
  run in separate processes, later on separate nodes), it is in the store, so every role's work
  is counted wherever ``/metrics`` is scraped, survives restarts, and several instances report
  the same values (aggregate them with ``max``, not ``sum``). The counters are kept up to date
  incrementally: each scrape reads only what was recorded after the previous one (the store's
  ``Status.totals`` cursor); the first read counts the whole history once
  (``Metrics.refresh`` does it at start-up, off the event loop).
* **Kept by this process** (the recording methods below): DNS errors, SMTP sessions and their
  TLS, the duration of each outbound attempt, ``process_*``. They describe one process; with
  split roles each role serves its own (``[metrics] listen``), with ``relaygate_build_info``'s
  ``role`` label saying whose.

Label policy (cardinality is bounded by construction):

- ``channel``: ``http`` | ``smtp`` (others → ``other``).
- ``reason`` (bounces): one of ``BOUNCE_REASONS``; any other value is counted as ``other``.
- ``bounce_type``: ``hard`` | ``soft`` (anything else → ``other``).
- ``state``: ``QUEUE_STATES`` (recipients), ``WEBHOOK_STATES`` (webhook deliveries).
- ``event_type`` (webhooks): ``WEBHOOK_EVENT_TYPES``, others → ``other``.
- ``rtype``/``kind`` (DNS errors) and ``direction``/``tls`` (SMTP sessions): small fixed sets.
- Never a label: recipient domain, account, address, message id, URL. Per-domain figures belong
  in logs and the read API, not in a time series per domain.

Trusts: its callers. ``direction`` is chosen by relaygate's own code, so a wrong one is a
programming error (``ValueError``); labels derived from outside data (reasons, event types, DNS
and TLS details) are folded into ``other``, never rejected (a metric must not break delivery).
If the store cannot be read during a scrape, the scrape still succeeds with the counters as
last read and ``relaygate_queue_snapshot_up`` 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from relaygate import __version__
from relaygate.clock import Clock, SystemClock

__all__ = [
    "BOUNCE_REASONS",
    "LATENCY_BUCKETS",
    "QUEUE_STATES",
    "WEBHOOK_EVENT_TYPES",
    "WEBHOOK_STATES",
    "Metrics",
    "StatusReader",
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

#: States that always appear in ``relaygate_queue_recipients`` (0 when the store has none).
QUEUE_STATES: tuple[str, ...] = ("queued", "active", "deferred", "held")
#: States that always appear in ``relaygate_webhook_deliveries``.
WEBHOOK_STATES: tuple[str, ...] = ("pending", "active", "abandoned")

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


_CHANNELS = frozenset({"http", "smtp", "other"})


class BacklogView(Protocol):
    """What ``StatusReader.backlog`` answers (``relaygate.store.models.Backlog``)."""

    @property
    def recipients(self) -> Mapping[str, int]: ...
    @property
    def oldest_queued_at(self) -> float | None: ...
    @property
    def webhook_deliveries(self) -> Mapping[str, int]: ...


class TotalsView(Protocol):
    """What ``StatusReader.totals`` answers (``relaygate.store.models.Totals``)."""

    @property
    def cursor(self) -> Any: ...
    @property
    def messages_accepted(self) -> Mapping[str, int]: ...
    @property
    def recipients_accepted(self) -> Mapping[str, int]: ...
    @property
    def delivered(self) -> int: ...
    @property
    def deferred(self) -> int: ...
    @property
    def bounced(self) -> Mapping[tuple[str, str], int]: ...
    @property
    def expired(self) -> int: ...
    @property
    def complained(self) -> int: ...
    @property
    def latency(self) -> Sequence[int]: ...
    @property
    def latency_sum(self) -> float: ...
    @property
    def webhook_attempts(self) -> Mapping[str, int]: ...
    @property
    def webhook_failures(self) -> Mapping[str, int]: ...


class StatusReader(Protocol):
    """The store's read-only views the metrics need (``relaygate.store.api.Status``)."""

    def backlog(self) -> BacklogView: ...
    def totals(self, after: Any, *, latency_buckets: Sequence[float]) -> TotalsView: ...


def _fold(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


def _event_type(event_type: str) -> str:
    """A webhook's event type as a label: domain_* events (§14) are ``domain``."""
    return "domain" if event_type.startswith("domain_") else _fold(event_type, WEBHOOK_EVENT_TYPES)


def _add(into: dict[Any, int], key: Any, n: int) -> None:
    if n:
        into[key] = into.get(key, 0) + n


class _StoreCollector(Collector):
    """The store-derived families: running totals advanced by each scrape, and the backlog."""

    def __init__(self, status: StatusReader, clock: Clock) -> None:
        self._status = status
        self._clock = clock
        self._lock = threading.Lock()
        self._cursor: Any = None
        self._messages: dict[str, int] = dict.fromkeys(("http", "smtp"), 0)
        self._recipients: dict[str, int] = dict.fromkeys(("http", "smtp"), 0)
        self._outcomes: dict[str, int] = dict.fromkeys(
            ("delivered", "deferred", "expired", "complained"), 0
        )
        self._bounced: dict[tuple[str, str], int] = {}
        self._latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._hooks: dict[str, int] = {}
        self._hook_failures: dict[str, int] = {}

    def refresh(self) -> BacklogView | None:
        """Read what the store recorded since the last read; the backlog, or None on failure."""
        with self._lock:
            try:
                totals = self._status.totals(self._cursor, latency_buckets=LATENCY_BUCKETS)
                backlog = self._status.backlog()
            except Exception:
                log.exception("reading the store for /metrics failed")
                return None
            self._add(totals)
            return backlog

    def _add(self, t: TotalsView) -> None:
        self._cursor = t.cursor
        for channel, n in t.messages_accepted.items():
            _add(self._messages, _fold(channel, _CHANNELS), n)
        for channel, n in t.recipients_accepted.items():
            _add(self._recipients, _fold(channel, _CHANNELS), n)
        for name in self._outcomes:
            self._outcomes[name] += int(getattr(t, name))
        for (bounce_type, reason), n in t.bounced.items():
            _add(
                self._bounced, (_fold(bounce_type, _BOUNCE_TYPES), _fold(reason, BOUNCE_REASONS)), n
            )
        for i, n in enumerate(t.latency[: len(self._latency)]):
            self._latency[i] += n
        self._latency_sum += t.latency_sum
        for event_type, n in t.webhook_attempts.items():
            _add(self._hooks, _event_type(event_type), n)
        for event_type, n in t.webhook_failures.items():
            _add(self._hook_failures, _event_type(event_type), n)

    def describe(self) -> Iterable[Metric]:
        # Describing without calling the store keeps registration free of I/O.
        return self._families(None, up=True)

    def collect(self) -> Iterable[Metric]:
        backlog = self.refresh()
        return self._families(backlog, up=backlog is not None)

    def _families(self, backlog: BacklogView | None, *, up: bool) -> list[Metric]:
        def counter(
            name: str, doc: str, labels: Sequence[str], values: Mapping[Any, int]
        ) -> Metric:
            family = CounterMetricFamily(name, doc, labels=list(labels))
            for key, value in sorted(values.items()):
                family.add_metric(
                    list(key) if isinstance(key, tuple) else ([key] if labels else []), value
                )
            return family

        out: list[Metric] = [
            counter(
                "relaygate_messages_accepted",
                "Messages accepted (committed to the store), by the channel they came in on.",
                ["channel"],
                self._messages,
            ),
            counter(
                "relaygate_recipients_accepted",
                "Recipients of accepted messages (to+cc+bcc, suppressed ones included), by channel.",
                ["channel"],
                self._recipients,
            ),
            counter(
                "relaygate_recipients_delivered",
                "Recipients whose delivery the next hop accepted with a 2xx (or captured).",
                [],
                {(): self._outcomes["delivered"]},
            ),
            counter(
                "relaygate_recipients_deferred",
                "Delivery attempts that failed temporarily (4xx, network, DNS) and were rescheduled.",
                [],
                {(): self._outcomes["deferred"]},
            ),
            counter(
                "relaygate_recipients_bounced",
                "Recipients that bounced (5xx, no route, a DSN after delivery, suppressed at acceptance), by bounce type and reason.",
                ["bounce_type", "reason"],
                self._bounced,
            ),
            counter(
                "relaygate_recipients_expired",
                "Recipients still undelivered at the end of the queue lifetime.",
                [],
                {(): self._outcomes["expired"]},
            ),
            counter(
                "relaygate_recipients_complained",
                "Recipients who reported a message as spam (feedback reports).",
                [],
                {(): self._outcomes["complained"]},
            ),
            counter(
                "relaygate_webhook_attempts",
                "Webhook POSTs made, by event type.",
                ["event_type"],
                self._hooks,
            ),
            counter(
                "relaygate_webhook_failures",
                "Webhook POSTs without a 2xx within the timeout, by event type.",
                ["event_type"],
                self._hook_failures,
            ),
        ]
        latency = HistogramMetricFamily(
            "relaygate_delivery_latency_seconds",
            "Time from acceptance to successful delivery of a recipient.",
        )
        cumulative, buckets = 0, []
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self._latency, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        latency.add_metric([], buckets, sum_value=self._latency_sum)
        out.append(latency)
        out.append(
            GaugeMetricFamily(
                "relaygate_queue_snapshot_up",
                "1 when the store was read in this scrape (the gauges below and the counters are current), 0 when that failed.",
                value=1 if up else 0,
            )
        )
        if backlog is None:
            if up:  # describe(): the families, without values
                backlog = _EMPTY
            else:
                return out
        depth = GaugeMetricFamily(
            "relaygate_queue_recipients",
            "Recipients waiting for delivery by state, read from the store at scrape time.",
            labels=["state"],
        )
        counts = dict.fromkeys(QUEUE_STATES, 0)
        counts.update({k: int(v) for k, v in backlog.recipients.items() if k in counts})
        for state, n in counts.items():
            depth.add_metric([state], n)
        oldest = backlog.oldest_queued_at
        hooks = GaugeMetricFamily(
            "relaygate_webhook_deliveries",
            "Webhook deliveries waiting (pending, active) or given up after the last retry (abandoned; a replay takes them back).",
            labels=["state"],
        )
        for state in WEBHOOK_STATES:
            hooks.add_metric([state], int(backlog.webhook_deliveries.get(state, 0)))
        out += [
            depth,
            GaugeMetricFamily(
                "relaygate_queue_oldest_age_seconds",
                "Age of the oldest recipient not yet delivered, bounced or expired; 0 when the queue is empty.",
                value=0.0 if oldest is None else max(0.0, self._clock.now() - oldest),
            ),
            hooks,
        ]
        return out


class _NoBacklog:
    recipients: Mapping[str, int] = {}
    oldest_queued_at: float | None = None
    webhook_deliveries: Mapping[str, int] = {}


_EMPTY = _NoBacklog()


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

    ``status`` (the store's ``Status`` concern), given to the process that serves ``/metrics``,
    adds the store-derived families (see the module docstring). ``process=True`` adds the
    standard ``process_*`` and ``python_info`` collectors (Linux /proc based).
    """

    def __init__(
        self,
        *,
        status: StatusReader | None = None,
        clock: Clock | None = None,
        process: bool = True,
        role: str = "all",
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock: Clock = clock or SystemClock()
        self._store: _StoreCollector | None = None
        self._exposed = _WithoutCreated(self.registry)
        reg = self.registry

        info = Info(
            "relaygate_build", "relaygate version and the role(s) this process runs.", registry=reg
        )
        info.info({"version": __version__, "role": role})
        self.delivery_attempt_duration = Histogram(
            "relaygate_delivery_attempt_duration_seconds",
            "Duration of one outbound SMTP delivery attempt made by this process, by outcome.",
            ["outcome"],
            buckets=ATTEMPT_BUCKETS,
            registry=reg,
        )
        self.dns_errors = Counter(
            "relaygate_dns_errors",
            "DNS lookups by this process that failed, by record type and kind of failure.",
            ["rtype", "kind"],
            registry=reg,
        )
        self.smtp_sessions = Counter(
            "relaygate_smtp_sessions",
            "SMTP sessions of this process by direction (inbound submission / outbound delivery) and TLS version ('none' = plaintext).",
            ["direction", "tls"],
            registry=reg,
        )
        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
        if status is not None:
            self._store = _StoreCollector(status, self._clock)
            reg.register(self._store)

    def refresh(self) -> None:
        """Read the store now (blocking; the first read counts the whole history), so that a
        scrape only reads what is new. A no-op without ``status``."""
        if self._store is not None:
            self._store.refresh()

    # -- recording ---------------------------------------------------------------------------

    def delivery_attempt(self, outcome: str, seconds: float) -> None:
        """One outbound SMTP attempt finished (``delivered`` | ``deferred`` | ``bounced``)."""
        self.delivery_attempt_duration.labels(_fold(outcome, _ATTEMPT_OUTCOMES)).observe(
            max(0.0, seconds)
        )

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
        OpenMetrics when the scraper asks for it. Reads the store (blocking): from an async
        handler, run it in a thread (``starlette.concurrency.run_in_threadpool``).
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._exposed), content_type  # type: ignore[arg-type]
