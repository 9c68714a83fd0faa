"""Domains over the management API against a loopback DNS server: add → records, read with
each record found / missing / different, verify now, DKIM rotation, delete, and who holds a
domain when two accounts claim it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.http import HttpApi
from relaygate.settings import Settings, from_mapping
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer

from .conftest import Tenant, detail, tenant


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer({}) as server:
        yield server


@pytest.fixture
def dsettings(tmp_path: Path, dns: DNSServer) -> Settings:
    return from_mapping(
        {
            "state_dir": str(tmp_path / "state"),
            "hostname": "relay.test",
            "dns": {"nameservers": [dns.nameserver], "timeout": 0.3},
        },
        path=tmp_path / "relaygate.toml",
    )


@pytest.fixture
async def dclient(
    store: Store, dsettings: Settings, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    api = HttpApi(
        store=store,
        admission=Admission(store=store, settings=dsettings, clock=clock),
        max_request_bytes=1 << 20,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app()), base_url="http://relay.test"
    ) as c:
        yield c


def publish(dns: DNSServer, records: list[dict[str, Any]]) -> None:
    for r in records:
        if r["required"]:
            dns.set(r["name"], r["type"], [r["strings"]])


async def test_add_read_verify_rotate_delete(
    dclient: httpx.AsyncClient, store: Store, admin: Tenant, dns: DNSServer
) -> None:
    r = await dclient.post("/v1/domains", headers=admin.headers, json={"domain": "Shop.Example"})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["domain"] == "shop.example" and added["status"] == "pending"
    purposes = {x["purpose"] for x in added["records"]}
    assert {"verification", "dkim", "spf", "dmarc"} <= purposes
    r = await dclient.get("/v1/domains/shop.example", headers=admin.headers)
    assert r.status_code == 200, r.text
    checks = {x["purpose"]: x["check"] for x in r.json()["records"] if x["required"]}
    assert checks == {"verification": "missing", "dkim": "missing"}
    verification = next(x for x in added["records"] if x["purpose"] == "verification")
    dns.set(verification["name"], "TXT", [["relaygate-verification=wrong"]])
    r = await dclient.get("/v1/domains/shop.example", headers=admin.headers)
    checks = {x["purpose"]: x["check"] for x in r.json()["records"] if x["required"]}
    assert checks == {"verification": "different", "dkim": "missing"}
    assert r.json()["status"] == "pending"  # reading changes nothing
    publish(dns, added["records"])
    r = await dclient.get("/v1/domains/shop.example", headers=admin.headers)
    checks = {x["purpose"]: x["check"] for x in r.json()["records"] if x["required"]}
    assert checks == {"verification": "found", "dkim": "found"} and r.json()["status"] == "pending"
    r = await dclient.post("/v1/domains/shop.example/verify", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    assert store.identities.sender_allowed(admin.account_id, "app@shop.example")
    listed = (await dclient.get("/v1/domains", headers=admin.headers)).json()["data"]
    assert {d["domain"]: d["status"] for d in listed}["shop.example"] == "verified"
    r = await dclient.post("/v1/domains/shop.example/dkim/rotate", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert [k["state"] for k in r.json()["created"]] == ["pending"]
    r = await dclient.delete("/v1/domains/shop.example", headers=admin.headers)
    assert r.status_code == 200 and r.json() == {"domain": "shop.example", "deleted": True}
    assert not store.identities.sender_allowed(admin.account_id, "app@shop.example")
    r = await dclient.get("/v1/domains/shop.example", headers=admin.headers)
    assert r.status_code == 404
    actions = [e.action for e in store.audit.list(admin.account_id)]
    assert actions == [
        "domain.delete",
        "domain.dkim_rotate",
        "domain.verify",
        "domain.add",
    ]


async def test_a_pending_claim_blocks_nobody_and_a_verified_domain_is_409(
    dclient: httpx.AsyncClient, store: Store, admin: Tenant, dns: DNSServer
) -> None:
    rival = tenant(store, "rival", "account:admin")
    r = await dclient.post("/v1/domains", headers=rival.headers, json={"domain": "shop.example"})
    assert r.status_code == 201  # a claim, pending: it holds nothing
    r = await dclient.post("/v1/domains", headers=admin.headers, json={"domain": "shop.example"})
    assert r.status_code == 201, r.text
    publish(dns, r.json()["records"])
    r = await dclient.post("/v1/domains/shop.example/verify", headers=admin.headers)
    assert r.json()["status"] == "verified"
    r = await dclient.post("/v1/domains/shop.example/verify", headers=rival.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    late = tenant(store, "late", "account:admin")
    r = await dclient.post("/v1/domains", headers=late.headers, json={"domain": "shop.example"})
    assert r.status_code == 409 and "verified by another account" in detail(r)
    assert str(admin.account_id) not in detail(r)
    r = await dclient.post("/v1/domains/shop.example/dkim/rotate", headers=rival.headers)
    assert r.status_code == 409 and "verify it first" in detail(r)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "domain"),
        ({"domain": 3}, "domain"),
        ({"domain": "a@b.test"}, "domain"),
        ({"domain": "no spaces.test"}, "domain"),
        ({"domain": "x", "y": 1}, "y"),
    ],
)
async def test_bad_domains_name_the_field(
    dclient: httpx.AsyncClient, store: Store, admin: Tenant, body: Any, field: str
) -> None:
    before = store.identities.details(admin.account_id)
    r = await dclient.post("/v1/domains", headers=admin.headers, json=body)
    assert r.status_code == 400 and field in detail(r), r.text
    assert store.identities.details(admin.account_id) == before
