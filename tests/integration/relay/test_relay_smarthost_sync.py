"""Smarthost mode with STARTTLS + AUTH, and its synchronous hand-off (502 when the upstream refuses)."""

from __future__ import annotations

import random
import ssl
from pathlib import Path
from typing import Any

import httpx
import trustme

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.http import HttpApi
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.smtp_sink import SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]


async def test_smarthost_starttls_auth_and_sync_502(
    tmp_path: Path,
    store: Store,
    clock: FakeClock,
    sender: dict[str, Any],
    ca: trustme.CA,
    server_tls: ssl.SSLContext,
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    dns_server = DNSServer({"smarthost.test": {"A": ["127.0.0.1"]}})
    dns_server.start()
    async with SmtpSink(
        hostname="smarthost.test",
        tls_context=server_tls,
        auth=("relayuser", "s3cret"),
        auth_required=True,
        rcpt={
            "refused@dest.test": "550 5.7.1 relaying denied",
            "later@dest.test": "451 4.3.0 try again",
        },
    ) as sink:
        settings = make_settings(
            tmp_path,
            delivery={
                "mode": "smarthost",
                "smarthost": f"smarthost.test:{sink.port}",
                "smarthost_tls": "starttls",
                "smarthost_user": "relayuser",
                "smarthost_password": "s3cret",
                "smarthost_sync": True,
                "smarthost_ca_file": str(ca_file),
            },
            dns={"nameservers": ["127.0.0.1:1"]},
        )
        # "smarthost.test" must reach the sink on loopback without any DNS: route the name through the
        # transport's resolver override (an IP literal host would defeat certificate verification).
        transport = make_network_transport(settings, rng=random.Random(1))
        transport.router.host = "127.0.0.1"  # type: ignore[attr-defined]
        worker = DeliveryWorker(
            store=store, settings=settings, clock=clock, transport=transport, rng=random.Random(1)
        )
        api = HttpApi(
            store=store,
            admission=Admission(store=store, settings=settings, clock=clock),
            max_request_bytes=1 << 20,
            sync_deliver=worker.deliver_now,
        )
        headers = {"X-API-Key": sender["secret"]}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api.app()), base_url="http://r.test"
        ) as client:
            ok = await client.post(
                "/v1/send",
                headers=headers,
                json={
                    "from_email": "a@example.com",
                    "to": ["fine@dest.test"],
                    "subject": "s",
                    "text": "hello",
                },
            )
            assert ok.status_code == 200, ok.text
            assert [r.state for r in store.messages.recipients(ok.json()["id"])] == ["delivered"]
            got = sink.messages[-1]
            assert (
                got.tls
                and got.auth == ("relayuser", "s3cret")
                and got.rcpt_tos == ("fine@dest.test",)
            )
            for rcpt, code in (("refused@dest.test", "550"), ("later@dest.test", "451")):
                r = await client.post(
                    "/v1/send",
                    headers=headers,
                    json={
                        "from_email": "a@example.com",
                        "to": [rcpt],
                        "subject": "s",
                        "text": "hello",
                    },
                )
                assert (
                    r.status_code == 502
                    and code in r.json()["detail"]
                    and "not retried" in r.json()["detail"]
                )
                mid = r.json()["detail"].split("(")[1].split(",")[0]
                assert [x.state for x in store.messages.recipients(mid)] == ["bounced"]
            assert await worker.run_once() == 0  # nothing left to retry: the client owns the retry
        await transport.aclose()
    dns_server.stop()
