"""With the roles split into processes (as relaygate.target runs them), the http role's
/metrics counts the relay role's deliveries (issue 21: it counted 0 of 5), and a role without
the HTTP API serves its own process metrics on [metrics] listen."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from relaygate.testing.process import RelaygateProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> Samples:
    body = httpx.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def test_the_http_role_counts_what_the_relay_role_delivered(tmp_path: Path) -> None:
    relay_metrics = f"127.0.0.1:{free_port()}"
    http = RelaygateProcess(tmp_path, roles=["http"], metrics={"listen": {"relay": relay_metrics}})
    relay = RelaygateProcess(tmp_path, roles=["relay"])  # the same config and state dir
    http.init()
    http.cli("account", "create", "acme", "--plan", "paid")
    http.cli("identity", "add", "--account", "1", "example.com", "--verified")
    secret = http.cli("key", "create", "--account", "1")["key"]
    with http, relay:
        sent = httpx.post(
            http.http_url + "/v1/send",
            headers={"X-API-Key": secret},
            json={
                "from_email": "app@example.com",
                "to": [f"r{i}@dest.test" for i in range(5)],
                "subject": "five",
                "text": "hi",
            },
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 30
        while True:
            s = scrape(http.http_url + "/metrics")
            if s[("relaygate_recipients_delivered_total", ())] == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert s[("relaygate_recipients_delivered_total", ())] == 5
        assert s[("relaygate_recipients_accepted_total", (("channel", "http"),))] == 5
        assert s[("relaygate_messages_accepted_total", (("channel", "http"),))] == 1
        assert s[("relaygate_delivery_latency_seconds_count", ())] == 5
        assert s[("relaygate_queue_recipients", (("state", "queued"),))] == 0
        assert s[("relaygate_build_info", (("role", "http"), ("version", "0.1.0")))] == 1

        # the relay role's own listener: its process metrics, not the store's
        assert relay.info["metrics"] == relay_metrics
        own = scrape(f"http://{relay_metrics}/metrics")
        assert own[("relaygate_build_info", (("role", "relay"), ("version", "0.1.0")))] == 1
        assert not any(name.startswith("relaygate_recipients_") for name, _ in own)
        assert httpx.post(f"http://{relay_metrics}/v1/send", timeout=10).status_code == 404

    # counted from the store, the totals outlive the processes
    with RelaygateProcess(tmp_path, roles=["http"]) as again:
        s = scrape(again.http_url + "/metrics")
        assert s[("relaygate_recipients_delivered_total", ())] == 5
