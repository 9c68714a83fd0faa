"""Shared fixtures: a fake clock, settings for a temp state dir, an open store with its writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.settings import Settings, from_mapping
from relaygate.store.spool import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_790_000_000.0)


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {"state_dir": str(tmp_path / "state"), "hostname": "relay.test"}
    data.update({"delivery": {"mode": "capture", "capture_dir": str(tmp_path / "capture")}})
    for name, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(name, {}).update(values)
        else:
            data[name] = values
    return from_mapping(data, path=tmp_path / "relaygate.toml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = Store(tmp_path / "state" / "relaygate.sqlite3", clock=clock).open()
    s.start_writer()
    yield s
    s.close()


@pytest.fixture
def sender(store: Store) -> dict[str, Any]:
    """A paid account with a verified domain and a send+read key."""
    account = store.create_account("acme", plan="paid", daily_quota=1000, rate_limit=50)
    store.add_identity(account.id, "example.com", verified=True)
    key, secret = store.create_key(account.id, scopes=["email:send", "email:read"])
    return {"account": account, "key": key, "secret": secret}
