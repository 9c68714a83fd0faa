"""The /metrics body, read back with prometheus_client's own parser: the process's own metrics,
and the store-derived ones added up from a scripted ``Status`` (the seam; the real store's side is
tests/contract/test_contract_totals.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relaygate.clock import FakeClock
from relaygate.metrics import LATENCY_BUCKETS, Metrics
from relaygate.store.models import Backlog, Totals, TotalsCursor

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(m: Metrics) -> Samples:
    body, content_type = m.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(m: Metrics) -> dict[str, str]:
    body, _ = m.render()
    return {f.name: f.type for f in text_string_to_metric_families(body.decode())}


def totals(cursor: int, **counts: Any) -> Totals:
    values: dict[str, Any] = {
        "messages_accepted": {},
        "recipients_accepted": {},
        "delivered": 0,
        "deferred": 0,
        "bounced": {},
        "expired": 0,
        "complained": 0,
        "latency": (0,) * (len(LATENCY_BUCKETS) + 1),
        "latency_sum": 0.0,
        "webhook_attempts": {},
        "webhook_failures": {},
    }
    values.update(counts)
    return Totals(cursor=TotalsCursor(event_id=cursor), **values)


class ScriptedStatus:
    """Answers ``totals`` from a script (one answer per read) and records the cursors asked."""

    def __init__(self, answers: list[Totals], backlog: Backlog | None = None) -> None:
        self.answers = answers
        self.asked: list[Any] = []
        self.backlog_now = backlog or Backlog(
            recipients={}, oldest_queued_at=None, webhook_deliveries={}
        )
        self.fail = False

    def totals(self, after: Any, *, latency_buckets: Sequence[float]) -> Totals:
        assert tuple(latency_buckets) == LATENCY_BUCKETS
        if self.fail:
            raise RuntimeError("database is locked")
        self.asked.append(after)
        return self.answers.pop(0) if self.answers else totals(after.event_id if after else 0)

    def backlog(self) -> Backlog:
        if self.fail:
            raise RuntimeError("database is locked")
        return self.backlog_now


EXPECTED_FAMILIES = {
    "relaygate_build": "info",
    "relaygate_messages_accepted": "counter",
    "relaygate_recipients_accepted": "counter",
    "relaygate_recipients_delivered": "counter",
    "relaygate_recipients_deferred": "counter",
    "relaygate_recipients_bounced": "counter",
    "relaygate_recipients_expired": "counter",
    "relaygate_recipients_complained": "counter",
    "relaygate_delivery_latency_seconds": "histogram",
    "relaygate_delivery_attempt_duration_seconds": "histogram",
    "relaygate_webhook_attempts": "counter",
    "relaygate_webhook_failures": "counter",
    "relaygate_webhook_deliveries": "gauge",
    "relaygate_dns_errors": "counter",
    "relaygate_smtp_sessions": "counter",
    "relaygate_queue_snapshot_up": "gauge",
    "relaygate_queue_recipients": "gauge",
    "relaygate_queue_oldest_age_seconds": "gauge",
}
PROCESS_ONLY = {
    "relaygate_build",
    "relaygate_delivery_attempt_duration_seconds",
    "relaygate_dns_errors",
    "relaygate_smtp_sessions",
}


def test_every_family_is_exposed_with_its_type() -> None:
    m = Metrics(status=ScriptedStatus([]), process=False)
    found = families(m)
    for name, kind in EXPECTED_FAMILIES.items():
        # The 0.0.4 text parser reports info metrics as gauges named *_info.
        if kind == "info":
            assert found.get(name + "_info") == "gauge", name
        else:
            assert found.get(name) == kind, name


def test_without_the_store_only_this_process_s_metrics() -> None:
    found = families(Metrics(process=False))
    assert {n.removesuffix("_info") for n in found} == PROCESS_ONLY


def test_store_totals_are_added_up_scrape_after_scrape() -> None:
    clock = FakeClock(1_000_000.0)
    latency = [0] * (len(LATENCY_BUCKETS) + 1)
    latency[LATENCY_BUCKETS.index(0.5)] = 1
    latency[LATENCY_BUCKETS.index(4 * 3600.0)] = 1
    status = ScriptedStatus(
        [
            totals(
                10,
                messages_accepted={"http": 2, "smtp": 1},
                recipients_accepted={"http": 4, "smtp": 2, "carrier-pigeon": 1},
                delivered=2,
                deferred=1,
                bounced={
                    ("hard", "userunknown"): 2,
                    ("weird", "the mailbox of bob@example.com is gone"): 1,
                },
                expired=1,
                complained=1,
                latency=tuple(latency),
                latency_sum=7200.3,
                webhook_attempts={
                    "delivery": 1,
                    "bounce": 1,
                    "https://evil.example/hook": 1,
                    "domain_at_risk": 2,
                },
                webhook_failures={"bounce": 1, "https://evil.example/hook": 1},
            ),
            totals(12, delivered=1, bounced={("soft", "mailboxfull"): 1}),
        ],
        Backlog(
            recipients={"queued": 7, "deferred": 2, "delivered": 99},
            oldest_queued_at=1_000_000.0 - 125,
            webhook_deliveries={"pending": 3, "abandoned": 1},
        ),
    )
    m = Metrics(status=status, clock=clock, process=False, role="http")
    s = samples(m)
    assert status.asked == [None]  # the first read starts at the beginning
    assert s[("relaygate_build_info", (("role", "http"), ("version", "0.1.0")))] == 1
    assert s[("relaygate_messages_accepted_total", (("channel", "http"),))] == 2
    assert s[("relaygate_messages_accepted_total", (("channel", "smtp"),))] == 1
    assert s[("relaygate_recipients_accepted_total", (("channel", "http"),))] == 4
    assert s[("relaygate_recipients_accepted_total", (("channel", "other"),))] == 1
    assert s[("relaygate_recipients_delivered_total", ())] == 2
    assert s[("relaygate_recipients_deferred_total", ())] == 1
    assert s[("relaygate_recipients_expired_total", ())] == 1
    assert s[("relaygate_recipients_complained_total", ())] == 1
    bounced = "relaygate_recipients_bounced_total"
    assert s[(bounced, (("bounce_type", "hard"), ("reason", "userunknown")))] == 2
    assert s[(bounced, (("bounce_type", "other"), ("reason", "other")))] == 1
    lat = "relaygate_delivery_latency_seconds"
    assert s[(lat + "_count", ())] == 2
    assert s[(lat + "_sum", ())] == 7200.3
    assert s[(lat + "_bucket", (("le", "0.25"),))] == 0
    assert s[(lat + "_bucket", (("le", "0.5"),))] == 1
    assert s[(lat + "_bucket", (("le", "14400.0"),))] == 2
    assert s[(lat + "_bucket", (("le", "+Inf"),))] == 2
    assert s[("relaygate_webhook_attempts_total", (("event_type", "other"),))] == 1
    assert s[("relaygate_webhook_attempts_total", (("event_type", "domain"),))] == 2
    assert s[("relaygate_webhook_failures_total", (("event_type", "bounce"),))] == 1
    assert ("relaygate_webhook_failures_total", (("event_type", "delivery"),)) not in s
    # Scrape-time gauges, computed from the backlog and the injected clock.
    assert s[("relaygate_queue_snapshot_up", ())] == 1
    assert s[("relaygate_queue_recipients", (("state", "queued"),))] == 7
    assert s[("relaygate_queue_recipients", (("state", "active"),))] == 0
    assert ("relaygate_queue_recipients", (("state", "delivered"),)) not in s
    assert s[("relaygate_queue_oldest_age_seconds", ())] == 125
    assert s[("relaygate_webhook_deliveries", (("state", "abandoned"),))] == 1
    assert s[("relaygate_webhook_deliveries", (("state", "active"),))] == 0

    clock.advance(60)
    s = samples(m)
    assert status.asked[1] == TotalsCursor(event_id=10)  # only what is new is read
    assert s[("relaygate_recipients_delivered_total", ())] == 3
    assert s[(bounced, (("bounce_type", "hard"), ("reason", "userunknown")))] == 2
    assert s[(bounced, (("bounce_type", "soft"), ("reason", "mailboxfull")))] == 1
    assert s[("relaygate_queue_oldest_age_seconds", ())] == 185
    # No per-domain or per-address label ever appears; no *_created series.
    for name, labels in s:
        assert all("example" not in v and "@" not in v for _k, v in labels)
        assert not name.endswith("_created")


def test_a_store_that_cannot_be_read_does_not_break_the_scrape() -> None:
    status = ScriptedStatus([totals(5, delivered=4)])
    m = Metrics(status=status, process=False)
    assert status.asked == []  # registering does not touch the store
    assert samples(m)[("relaygate_recipients_delivered_total", ())] == 4
    status.fail = True
    s = samples(m)
    assert s[("relaygate_queue_snapshot_up", ())] == 0
    assert s[("relaygate_recipients_delivered_total", ())] == 4  # as last read
    assert ("relaygate_queue_recipients", (("state", "queued"),)) not in s
    status.fail = False
    assert samples(m)[("relaygate_queue_snapshot_up", ())] == 1
    assert status.asked[-1] == TotalsCursor(event_id=5)  # picks up where it stopped


def test_refresh_reads_ahead_of_the_first_scrape() -> None:
    status = ScriptedStatus([totals(9, delivered=5)])
    m = Metrics(status=status, process=False)
    m.refresh()
    assert status.asked == [None]
    assert samples(m)[("relaygate_recipients_delivered_total", ())] == 5
    assert status.asked == [None, TotalsCursor(event_id=9)]
    Metrics(process=False).refresh()  # without a store: nothing to do


def test_process_metrics_and_private_registries() -> None:
    a, b = Metrics(process=False), Metrics(process=False)
    a.delivery_attempt("delivered", 0.2)
    a.delivery_attempt("exploded", -1)
    a.dns_error("mx", "servfail")
    a.dns_error("SRV", "lame delegation")
    a.smtp_session("inbound", "TLSv1.3")
    a.smtp_session("outbound", None)
    a.smtp_session("outbound", "SSLv3")
    s = samples(a)
    attempt = "relaygate_delivery_attempt_duration_seconds"
    assert s[(attempt + "_count", (("outcome", "delivered"),))] == 1
    assert s[(attempt + "_count", (("outcome", "other"),))] == 1
    assert s[("relaygate_dns_errors_total", (("kind", "servfail"), ("rtype", "MX")))] == 1
    assert s[("relaygate_dns_errors_total", (("kind", "other"), ("rtype", "other")))] == 1
    sessions = "relaygate_smtp_sessions_total"
    assert s[(sessions, (("direction", "inbound"), ("tls", "TLSv1.3")))] == 1
    assert s[(sessions, (("direction", "outbound"), ("tls", "none")))] == 1
    assert s[(sessions, (("direction", "outbound"), ("tls", "other")))] == 1
    assert (sessions, (("direction", "inbound"), ("tls", "TLSv1.3"))) not in samples(b)


def test_process_collectors_and_openmetrics_negotiation() -> None:
    m = Metrics()
    assert "process_resident_memory_bytes" in families(m)
    body, content_type = m.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_programming_errors_on_fixed_labels() -> None:
    with pytest.raises(ValueError):
        Metrics(process=False).smtp_session("sideways", None)
