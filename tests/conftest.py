"""Shared fixtures: a fake clock, settings for a temp state dir, an open store with its writer;
``require_tool`` for tests that need a program from a Debian package."""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.settings import Settings, from_mapping
from relaygate.store.sqlite import SqliteStore as Store


def _natural(path: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def require_tool(name: str, env: str, *, package: str, search: Sequence[str] = ()) -> str:
    """The path of program ``name``, or skip the test saying which Debian package has it.

    ``search``: directory glob patterns tried after ``PATH`` (PostgreSQL's server binaries live
    in ``/usr/lib/postgresql/<version>/bin``; the highest version wins). When the environment
    variable ``env`` is ``1`` — ``.ci/run`` sets it once it has installed ``package`` — a missing
    program fails the test instead: CI must never turn green by skipping what it was meant to run.
    """
    found = shutil.which(name)
    for pattern in search:
        if found is not None:
            break
        for directory in sorted(glob.glob(pattern), key=_natural, reverse=True):
            candidate = os.path.join(directory, name)
            if os.access(candidate, os.X_OK):
                found = candidate
                break
    if found is not None:
        return found
    reason = f"{name} is not installed (Debian package: {package})"
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason}, and {env}=1 says this run must have it", pytrace=False)
    pytest.skip(reason)


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
    account = store.accounts.create("acme", plan="paid", daily_quota=1000, rate_limit=50)
    store.identities.add(account.id, "example.com", verified=True)
    key, secret = store.keys.create(account.id, scopes=["email:send", "email:read"])
    return {"account": account, "key": key, "secret": secret}
