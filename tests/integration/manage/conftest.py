"""The management API on a real store: an account with an ``account:admin`` key (``admin``),
another account with objects of its own (``other``), and a client for the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from relaygate.clock import FakeClock
from relaygate.compose.templates import Template
from relaygate.gateway.admission import Admission
from relaygate.gateway.http import HttpApi
from relaygate.settings import Settings
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store


@dataclass
class Tenant:
    account_id: int
    secret: str
    key_id: str
    message_id: str
    domain: str
    webhook_id: str
    template: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.secret}


def admit(store: Store, account_id: int, *rcpts: str) -> str:
    mid = new_message_id()
    body = (
        b"From: app@example.com\r\nTo: r@dest.test\r\nSubject: hello\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi there\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi there</p>\r\n--b--\r\n"
    )
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account_id,
            channel="http",
            from_addr="app@example.com",
            sender_domain="example.com",
            subject="hello",
            header_message_id=f"<{mid}@example.com>",
            tags=(),
            body=body,
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=True,
        ),
        limits=False,
    )
    return mid


def tenant(store: Store, name: str, *scopes: str, rate_limit: int = 1000) -> Tenant:
    account = store.accounts.create(name, plan="paid", daily_quota=10_000, rate_limit=rate_limit)
    key, secret = store.keys.create(account.id, scopes=list(scopes or ["account:admin"]))
    mid = admit(store, account.id, "r1@dest.test", "r2@dest.test")
    domain = f"{name.replace(':', '-')}.test"
    store.identities.add(account.id, domain)
    hook = store.webhooks.create(
        account_id=account.id, url=f"https://hooks.{domain}/in", events=[], secret="s" * 32
    )
    slug = f"own-{account.id}"
    store.templates.save(
        account.id, Template(slug=slug, subject="Hi {{ name }}", html="<p>{{ name }}</p>", text="")
    )
    return Tenant(
        template=slug,
        account_id=account.id,
        secret=secret,
        key_id=key.id,
        message_id=mid,
        domain=domain,
        webhook_id=hook.id,
    )


@pytest.fixture
def admin(store: Store) -> Tenant:
    """An account whose key holds every scope."""
    return tenant(store, "acme", "account:admin", "email:send", "email:read")


@pytest.fixture
def other(store: Store) -> Tenant:
    """Another account, with a key, a message and a suppressed address of its own."""
    t = tenant(store, "other", "account:admin", "email:send", "email:read")
    store.suppressions.add(t.account_id, "theirs@dest.test", reason="manual", source="operator")
    return t


@pytest.fixture
async def client(
    store: Store, settings: Settings, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    api = HttpApi(
        store=store,
        admission=Admission(store=store, settings=settings, clock=clock),
        max_request_bytes=1024 * 1024,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app(), client=("203.0.113.9", 4000)),
        base_url="http://relay.test",
    ) as c:
        yield c


def detail(r: httpx.Response) -> str:
    data: Any = r.json()
    assert isinstance(data, dict) and set(data) == {"detail"}, data
    return str(data["detail"])
