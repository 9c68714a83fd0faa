"""The /metrics body, read back with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relaygate.clock import FakeClock
from relaygate.metrics import Channel, Metrics, QueueSnapshot


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = m.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(m: Metrics) -> dict[str, str]:
    body, _ = m.render()
    return {f.name: f.type for f in text_string_to_metric_families(body.decode())}


EXPECTED_FAMILIES = {
    "relaygate_build": "info",
    "relaygate_messages_accepted": "counter",
    "relaygate_recipients_accepted": "counter",
    "relaygate_recipients_delivered": "counter",
    "relaygate_recipients_deferred": "counter",
    "relaygate_recipients_bounced": "counter",
    "relaygate_recipients_expired": "counter",
    "relaygate_delivery_latency_seconds": "histogram",
    "relaygate_delivery_attempt_duration_seconds": "histogram",
    "relaygate_webhook_attempts": "counter",
    "relaygate_webhook_failures": "counter",
    "relaygate_webhook_abandoned": "counter",
    "relaygate_dns_errors": "counter",
    "relaygate_smtp_sessions": "counter",
    "relaygate_queue_snapshot_up": "gauge",
    "relaygate_queue_recipients": "gauge",
    "relaygate_queue_oldest_age_seconds": "gauge",
}


def test_every_family_is_exposed_with_its_type() -> None:
    m = Metrics(queue_snapshot=QueueSnapshot, process=False)
    found = families(m)
    for name, kind in EXPECTED_FAMILIES.items():
        # The 0.0.4 text parser reports info metrics as gauges named *_info.
        if kind == "info":
            assert found.get(name + "_info") == "gauge", name
        else:
            assert found.get(name) == kind, name


def test_recorded_values_come_back() -> None:
    clock = FakeClock(1_000_000.0)
    m = Metrics(
        queue_snapshot=lambda: QueueSnapshot(
            by_state={"queued": 7, "deferred": 2}, oldest_queued_at=1_000_000.0 - 125
        ),
        clock=clock,
        process=False,
        role="relay",
    )
    m.accepted(Channel.HTTP, recipients=3)
    m.accepted("http", recipients=1)
    m.accepted("smtp", recipients=2)
    m.delivered(latency_seconds=0.3)
    m.delivered(latency_seconds=7200)
    m.delivered()
    m.deferred()
    m.bounced("userunknown")
    m.bounced("userunknown")
    m.bounced("mailboxfull", bounce_type="soft")
    m.bounced("the mailbox of bob@example.com is gone", bounce_type="weird")
    m.expired()
    m.delivery_attempt("delivered", 0.2)
    m.webhook_attempt("delivery", ok=True)
    m.webhook_attempt("bounce", ok=False)
    m.webhook_attempt("https://evil.example/hook", ok=False)
    m.webhook_given_up("bounce")
    m.dns_error("mx", "servfail")
    m.dns_error("SRV", "lame delegation")
    m.smtp_session("inbound", "TLSv1.3")
    m.smtp_session("outbound", None)
    m.smtp_session("outbound", "SSLv3")

    s = samples(m)
    assert s[("relaygate_build_info", (("role", "relay"), ("version", "0.1.0")))] == 1
    assert s[("relaygate_messages_accepted_total", (("channel", "http"),))] == 2
    assert s[("relaygate_messages_accepted_total", (("channel", "smtp"),))] == 1
    assert s[("relaygate_recipients_accepted_total", (("channel", "http"),))] == 4
    assert s[("relaygate_recipients_accepted_total", (("channel", "smtp"),))] == 2
    assert s[("relaygate_recipients_delivered_total", ())] == 3
    assert s[("relaygate_recipients_deferred_total", ())] == 1
    assert s[("relaygate_recipients_expired_total", ())] == 1
    bounced = "relaygate_recipients_bounced_total"
    assert s[(bounced, (("bounce_type", "hard"), ("reason", "userunknown")))] == 2
    assert s[(bounced, (("bounce_type", "soft"), ("reason", "mailboxfull")))] == 1
    assert s[(bounced, (("bounce_type", "other"), ("reason", "other")))] == 1
    lat = "relaygate_delivery_latency_seconds"
    assert s[(lat + "_count", ())] == 2
    assert s[(lat + "_sum", ())] == 7200.3
    assert s[(lat + "_bucket", (("le", "0.5"),))] == 1
    assert s[(lat + "_bucket", (("le", "14400.0"),))] == 2
    assert (
        s[("relaygate_delivery_attempt_duration_seconds_count", (("outcome", "delivered"),))] == 1
    )
    assert s[("relaygate_webhook_attempts_total", (("event_type", "delivery"),))] == 1
    assert s[("relaygate_webhook_attempts_total", (("event_type", "bounce"),))] == 1
    assert s[("relaygate_webhook_attempts_total", (("event_type", "other"),))] == 1
    assert s[("relaygate_webhook_failures_total", (("event_type", "bounce"),))] == 1
    assert ("relaygate_webhook_failures_total", (("event_type", "delivery"),)) not in s
    assert s[("relaygate_webhook_abandoned_total", (("event_type", "bounce"),))] == 1
    assert s[("relaygate_dns_errors_total", (("kind", "servfail"), ("rtype", "MX")))] == 1
    assert s[("relaygate_dns_errors_total", (("kind", "other"), ("rtype", "other")))] == 1
    sessions = "relaygate_smtp_sessions_total"
    assert s[(sessions, (("direction", "inbound"), ("tls", "TLSv1.3")))] == 1
    assert s[(sessions, (("direction", "outbound"), ("tls", "none")))] == 1
    assert s[(sessions, (("direction", "outbound"), ("tls", "other")))] == 1
    # Scrape-time gauges, computed from the snapshot and the injected clock.
    assert s[("relaygate_queue_snapshot_up", ())] == 1
    assert s[("relaygate_queue_recipients", (("state", "queued"),))] == 7
    assert s[("relaygate_queue_recipients", (("state", "deferred"),))] == 2
    assert s[("relaygate_queue_recipients", (("state", "active"),))] == 0
    assert s[("relaygate_queue_oldest_age_seconds", ())] == 125
    clock.advance(60)
    assert samples(m)[("relaygate_queue_oldest_age_seconds", ())] == 185
    # No per-domain or per-address label ever appears.
    for _name, labels in s:
        assert all("example" not in v and "@" not in v for _k, v in labels)
    # The *_created series are left out of the exposition.
    assert not any(name.endswith("_created") for name, _ in s)


def test_snapshot_called_at_scrape_time_and_failure_does_not_break_the_scrape() -> None:
    calls: list[int] = []
    state = {"fail": False}

    def snapshot() -> QueueSnapshot:
        calls.append(1)
        if state["fail"]:
            raise RuntimeError("database is locked")
        return QueueSnapshot(by_state={"queued": len(calls)})

    m = Metrics(process=False)
    assert ("relaygate_queue_recipients", (("state", "queued"),)) not in samples(m)
    m.set_queue_snapshot(snapshot)
    assert calls == []  # registering does not touch the store
    assert samples(m)[("relaygate_queue_recipients", (("state", "queued"),))] == 1
    assert samples(m)[("relaygate_queue_recipients", (("state", "queued"),))] == 2
    state["fail"] = True
    s = samples(m)
    assert s[("relaygate_queue_snapshot_up", ())] == 0
    assert ("relaygate_queue_recipients", (("state", "queued"),)) not in s
    assert s[("relaygate_messages_accepted_total", (("channel", "http"),))] == 0


def test_empty_queue_has_zero_age_and_registries_are_private() -> None:
    a = Metrics(queue_snapshot=QueueSnapshot, process=False)
    b = Metrics(queue_snapshot=QueueSnapshot, process=False)
    a.accepted("smtp", recipients=1)
    assert samples(a)[("relaygate_messages_accepted_total", (("channel", "smtp"),))] == 1
    assert samples(b)[("relaygate_messages_accepted_total", (("channel", "smtp"),))] == 0
    assert samples(a)[("relaygate_queue_oldest_age_seconds", ())] == 0


def test_process_collectors_and_openmetrics_negotiation() -> None:
    m = Metrics()
    assert "process_resident_memory_bytes" in families(m)
    body, content_type = m.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_programming_errors_on_fixed_labels() -> None:
    m = Metrics(process=False)
    with pytest.raises(ValueError):
        m.accepted("ftp", recipients=1)
    with pytest.raises(ValueError):
        m.smtp_session("sideways", None)
