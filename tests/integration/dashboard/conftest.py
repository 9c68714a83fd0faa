"""The dashboard under Starlette's TestClient: the HTTP API's app with the dashboard's routes,
over the real SQLite store and the fake clock; users made as the command line makes them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relaygate.clock import FakeClock
from relaygate.compose.renderer import Renderer
from relaygate.dashboard import dashboard_routes, passwords
from relaygate.dashboard.throttle import SignInLimits, SignInThrottle
from relaygate.settings import Settings
from relaygate.store.models import Account, User
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def make_app(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    limits: SignInLimits | None = None,
    renderer: Renderer | None = None,
) -> Starlette:
    return Starlette(
        routes=dashboard_routes(
            store=store,
            settings=settings,
            clock=clock,
            throttle=SignInThrottle(clock, limits),
            renderer=renderer,
        )
    )


@pytest.fixture
def dash_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(store: Store, dash_settings: Settings, clock: FakeClock) -> Starlette:
    return make_app(store, dash_settings, clock)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def acme(store: Store) -> Account:
    account = store.accounts.create("acme", plan="paid", daily_quota=1000, rate_limit=50)
    store.identities.add(account.id, "example.com", verified=True)
    return account


@pytest.fixture
def other(store: Store) -> Account:
    return store.accounts.create("other", plan="trial", daily_quota=100, rate_limit=5)


@pytest.fixture
def make_user(store: Store) -> Callable[..., User]:
    def make(email: str, *, account: Account | None = None, password: str = PASSWORD) -> User:
        return store.users.create(
            email,
            account_id=account.id if account else None,
            operator=account is None,
            password_hash=passwords.hash_password(password),
        )

    return make


def sign_in(client: TestClient, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    return client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf": csrf_of(page.text), **extra},
    )


@pytest.fixture
def ann(make_user: Callable[..., User], acme: Account) -> User:
    return make_user("ann@acme.test", account=acme)


@pytest.fixture
def root(make_user: Callable[..., User]) -> User:
    return make_user("root@ops.test")


@pytest.fixture
def signed_in(client: TestClient, ann: User) -> TestClient:
    r = sign_in(client, ann.email)
    assert r.status_code == 303, r.text
    return client


def page_csrf(client: TestClient, path: str = "/dashboard") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)
