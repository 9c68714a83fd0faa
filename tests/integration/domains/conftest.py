"""Fixtures for domain checks: a loopback DNS server, settings pointing at it, a domain helper."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relaygate import domains
from relaygate.clock import FakeClock
from relaygate.dnsresolver import make_resolver
from relaygate.domains.lookups import Resolver
from relaygate.settings import Settings, from_mapping
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer({}) as server:
        yield server


@pytest.fixture
def dsettings(tmp_path: Path, dns_server: DNSServer) -> Settings:
    return from_mapping(
        {
            "state_dir": str(tmp_path / "state"),
            "hostname": "relay.test",
            "delivery": {"mode": "capture", "capture_dir": str(tmp_path / "capture")},
            "dns": {"nameservers": [dns_server.nameserver], "timeout": 0.3},
        },
        path=tmp_path / "relaygate.toml",
    )


@pytest.fixture
def resolver(dsettings: Settings) -> Resolver:
    return make_resolver(dsettings)


@dataclass
class Domain:
    """A domain added to an account, and helpers to publish its records."""

    store: Store
    settings: Settings
    dns: DNSServer
    resolver: Resolver
    clock: FakeClock
    account_id: int
    name: str
    setup: domains.DomainSetup

    def record(self, purpose: str, index: int = 0) -> domains.Record:
        found = [
            r
            for r in domains.domain_records(self.store, self.settings, self.name)
            if r.purpose == purpose
        ]
        return found[index]

    def publish(self, record: domains.Record, value: Any = None) -> None:
        self.dns.set(record.name, record.type, [record.strings] if value is None else value)

    def publish_required(self) -> None:
        for r in domains.domain_records(self.store, self.settings, self.name):
            if r.required:
                self.publish(r)

    async def verify(self) -> domains.VerifyReport:
        return await domains.verify_domain(self.store, self.settings, self.name, self.resolver)

    def events(self) -> list[Any]:
        return [e for e in self.store.messages.events_after(0) if e.message_id is None]


@pytest.fixture
def make_domain(
    store: Store, dsettings: Settings, dns_server: DNSServer, resolver: Resolver, clock: FakeClock
) -> Any:
    account = store.accounts.create("acme", plan="paid")

    def make(name: str = "example.com", **kwargs: Any) -> Domain:
        setup = domains.add_domain(store, dsettings, account.id, name, **kwargs)
        return Domain(store, dsettings, dns_server, resolver, clock, account.id, name, setup)

    return make
