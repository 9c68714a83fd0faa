"""550 5.1.1 → hard bounce → suppression → the next send is not attempted; and the HTTP/CLI views."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.http import HttpApi
from relaygate.relay.outbound import make_network_transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.process import RelaygateProcess
from relaygate.testing.smtp_sink import SmtpSink

from ...conftest import make_settings  # type: ignore[import-not-found]


async def test_hard_bounce_suppresses_and_policy_block_does_not(
    tmp_path: Path, store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    zone = {"dest.test": {"MX": [(10, "mx.dest.test")]}, "mx.dest.test": {"A": ["127.0.0.1"]}}
    with DNSServer(zone) as dns:
        async with SmtpSink(
            rcpt={
                "gone@dest.test": "550 5.1.1 <gone@dest.test>: Recipient address rejected: User unknown",
                "blocked@dest.test": "550 5.7.1 Message rejected due to spam content",
            }
        ) as sink:
            settings = make_settings(
                tmp_path,
                delivery={"mode": "mx", "mx_port": sink.port},
                dns={"nameservers": [dns.nameserver]},
            )
            (tmp_path / "state").mkdir(exist_ok=True)
            worker = DeliveryWorker(
                store=store,
                settings=settings,
                clock=clock,
                transport=make_network_transport(settings),
                rng=random.Random(1),
                verp_secret=b"k" * 32,
            )
            api = HttpApi(
                store=store,
                admission=Admission(store=store, settings=settings, clock=clock),
                max_request_bytes=1 << 20,
            )
            headers = {"X-API-Key": sender["secret"]}
            send = {
                "from_email": "a@example.com",
                "to": ["gone@dest.test", "blocked@dest.test"],
                "subject": "s",
                "text": "t",
            }
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=api.app()), base_url="http://r.test"
            ) as client:
                first = (await client.post("/v1/send", headers=headers, json=send)).json()["id"]
                await worker.run_once()
                bounces = {
                    e.data["smtp_response"].split()[2]: e.data
                    for e in store.messages.events_after(0)
                    if e.type == "bounce"
                }
                assert bounces["<gone@dest.test>:"]["bounce_type"] == "hard"
                assert bounces["<gone@dest.test>:"]["reason"] == "userunknown"
                spam = next(d for k, d in bounces.items() if "spam" in d["smtp_response"])
                assert spam["bounce_type"] == "soft"  # a policy/spam block never suppresses
                assert store.suppressions.lookup(
                    sender["account"].id, ["gone@dest.test", "blocked@dest.test"]
                ) == {"gone@dest.test": "userunknown"}
                assert sink.messages == []
                second = (await client.post("/v1/send", headers=headers, json=send)).json()["id"]
                assert second != first
                await worker.run_once()
                states = {r.address: r.state for r in store.messages.recipients(second)}
                assert states == {"gone@dest.test": "suppressed", "blocked@dest.test": "bounced"}
                assert sum("gone@dest.test" in m.rcpt_tos for m in sink.messages) == 0
                sup_event = next(
                    e
                    for e in store.messages.events_after(0)
                    if e.message_id == second and e.state_to == "suppressed"
                )
                assert sup_event.type == "bounce" and sup_event.data["reason"] == "suppressed"
                listed = (await client.get("/v1/suppressions", headers=headers)).json()
                assert [d["address"] for d in listed["data"]] == ["gone@dest.test"]
                assert (
                    await client.delete("/v1/suppressions/gone@dest.test", headers=headers)
                ).status_code == 200
                assert (
                    await client.delete("/v1/suppressions/gone@dest.test", headers=headers)
                ).status_code == 404
                assert store.suppressions.lookup(sender["account"].id, ["gone@dest.test"]) == {}
            await worker.transport.aclose()


def test_suppression_cli(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    assert (
        rg.cli("suppression", "add", "--account", "1", "Bob@Example.com", "--reason", "manual")[
            "address"
        ]
        == "bob@example.com"
    )
    csv_file = tmp_path / "in.csv"
    csv_file.write_text("address,reason\nc@example.com,complaint\nnot-an-address,x\n")
    result = rg.cli("suppression", "import", "--account", "1", str(csv_file), check=False)
    assert result["imported"] == 1 and "line 3" in result["problems"][0]
    assert [r["address"] for r in rg.cli("suppression", "list", "--account", "1")] == [
        "bob@example.com",
        "c@example.com",
    ]
    assert (
        rg.cli("suppression", "remove", "--account", "1", "bob@example.com")["suppressed"] is False
    )
    assert (
        "not on account 1"
        in rg.cli("suppression", "remove", "--account", "1", "bob@example.com", check=False)[
            "error"
        ]
    )
