"""``relaygate webhook …`` in-process (``relaygate.cli.main``), against a real store and a real
DNS server on loopback for the registration-time SSRF checks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaygate import cli
from relaygate.store.models import AttemptResult
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.process import write_config


def _sql(store: Store, fn: Any) -> Any:
    """``fn(conn)`` in one transaction on a connection of its own to the store's file (as the
    sqlite3 shell would: these rows have no interface call)."""
    conn = sqlite3.connect(str(store.path), isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN IMMEDIATE")
        result = fn(conn)
        conn.execute("COMMIT")
        return result
    finally:
        conn.close()


@pytest.fixture
def dns_zone() -> Iterator[DNSServer]:
    with DNSServer(
        {
            "hooks.example": {"A": ["93.184.216.34"]},
            "inside.example": {"A": ["10.1.2.3"]},
            "meta.example": {"A": ["169.254.169.254"]},
            "broken.example": "SERVFAIL",
        }
    ) as server:
        yield server


@pytest.fixture
def run(tmp_path: Path, dns_zone: DNSServer, capsys: pytest.CaptureFixture[str]):
    def make(allow_private: bool = False):
        config = tmp_path / f"relaygate-{allow_private}.toml"
        write_config(
            config,
            top={"state_dir": str(tmp_path / "state"), "hostname": "relay.test"},
            delivery={"mode": "capture"},
            dns={"nameservers": [f"127.0.0.1:{dns_zone.port}"], "timeout": 1.0},
            webhooks={"allow_private": allow_private},
        )

        def call(*args: str) -> tuple[int, Any]:
            code = cli.main(["--config", str(config), "--json", *args])
            text = capsys.readouterr().out
            return code, json.loads(text) if text.strip() else None

        return call

    return make


def test_add_list_show_rotate_remove(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rg = run()
    assert rg("init")[0] == 0
    assert rg("account", "create", "acme", "--plan", "paid")[0] == 0
    code, added = rg(
        "webhook",
        "add",
        "--account",
        "1",
        "https://HOOKS.example/in?x=1",
        "--event",
        "bounce",
        "--event",
        "delivery",
    )
    assert code == 0, added
    assert added["url"] == "https://hooks.example/in?x=1"
    assert added["events"] == ["delivery", "bounce"] and added["warnings"] == []
    secret = added["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    code, listed = rg("webhook", "list")
    assert [w["id"] for w in listed] == [added["id"]] and secret not in json.dumps(listed)
    code, shown = rg("webhook", "show", added["id"])
    assert "secret" not in shown and shown["deliveries"]["pending"] == 0
    assert rg("webhook", "show", added["id"], "--reveal")[1]["secret"] == secret
    # both positions of --json work (global and after the subcommand)
    code = cli.main(
        ["--config", str(tmp_path / "relaygate-False.toml"), "webhook", "list", "--json"]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)[0]["id"] == added["id"]
    code, rotated = rg("webhook", "rotate-secret", added["id"], "--grace", "600")
    assert code == 0 and rotated["secret"] != secret and rotated["previous_secret_expires_at"]
    assert rg("webhook", "show", added["id"], "--reveal")[1]["secret"] == rotated["secret"]
    store = Store(tmp_path / "state" / "relaygate.sqlite3").open()
    assert store.webhooks.live_secrets(added["id"]) == (rotated["secret"], secret)
    assert rg("webhook", "remove", added["id"]) == (0, {"id": added["id"], "removed": True})
    assert rg("webhook", "list")[1] == []
    assert len(rg("webhook", "list", "--all")[1]) == 1
    assert rg("webhook", "show", "wh_nope")[0] == 1
    assert rg("webhook", "add", "--account", "9", "https://hooks.example/")[0] == 1


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example/in", "https"),
        ("https://127.0.0.1/in", "loopback"),
        ("https://10.0.0.8/in", "private"),
        ("https://[::1]/in", "loopback"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://inside.example/in", "10.1.2.3"),
        ("https://meta.example/in", "metadata"),
        ("https://localhost/in", "localhost"),
        ("https://2130706433/in", "numeric"),
    ],
)
def test_registration_refuses_private_targets(run, url: str, why: str) -> None:
    rg = run()
    rg("init")
    rg("account", "create", "acme", "--plan", "paid")
    code, answer = rg("webhook", "add", "--account", "1", url)
    assert code == 1 and why in answer["error"], answer
    assert rg("webhook", "list")[1] == []


def test_allow_private_admits_http_and_private_but_never_metadata(run) -> None:
    rg = run(allow_private=True)
    rg("init")
    rg("account", "create", "acme", "--plan", "paid")
    for url in ("http://127.0.0.1:8080/in", "https://inside.example/in", "http://localhost/x"):
        assert rg("webhook", "add", "--account", "1", url)[0] == 0, url
    code, answer = rg("webhook", "add", "--account", "1", "http://meta.example/")
    assert code == 1 and "metadata" in answer["error"]


def test_dns_failure_at_registration_is_a_warning(run) -> None:
    rg = run()
    rg("init")
    rg("account", "create", "acme", "--plan", "paid")
    code, added = rg("webhook", "add", "--account", "1", "https://broken.example/in")
    assert code == 0 and "checked at every send" in added["warnings"][0]


def test_attempts_and_replay(run, tmp_path: Path) -> None:
    rg = run(allow_private=True)
    rg("init")
    rg("account", "create", "acme", "--plan", "paid")
    hook = rg("webhook", "add", "--account", "1", "http://127.0.0.1:9/in")[1]
    store = Store(tmp_path / "state" / "relaygate.sqlite3").open()
    store.start_writer()
    hooks = store.webhooks
    _sql(
        store,
        lambda c: c.execute(
            "INSERT INTO events (account_id, message_id, type, created_at, data) VALUES (1, NULL, 'complaint', 0, '{}')"
        ),
    )
    hooks.fan_out_sync(now=0)
    [d] = hooks.deliveries()
    _sql(
        store,
        lambda c: c.execute(
            "UPDATE webhook_deliveries SET state = 'active', lease_owner = 'cli-test' WHERE id = ?",
            (d.id,),
        ),
    )
    hooks.record_sync(
        "cli-test",
        AttemptResult(
            delivery_id=d.id,
            ok=False,
            status=503,
            outcome="http_status",
            error="HTTP 503",
            duration_ms=12,
            next_attempt_at=None,
        ),
        now=100.0,
    )
    code, shown = rg("webhook", "attempts", f"whd_{d.id}")
    assert code == 0 and shown["delivery"]["state"] == "abandoned"
    assert shown["attempts"] == [
        {
            "id": 1,
            "delivery_id": f"whd_{d.id}",
            "attempt": 1,
            "at": "1970-01-01T00:01:40Z",
            "status": 503,
            "outcome": "http_status",
            "error": "HTTP 503",
            "response": "",
            "next_attempt_at": None,
            "duration_ms": 12,
        }
    ]
    assert rg("webhook", "attempts", hook["id"])[1] == shown["attempts"]
    assert rg("webhook", "replay", f"whd_{d.id}") == (0, {"replayed": 1, "id": f"whd_{d.id}"})
    code, again = rg("webhook", "replay", f"whd_{d.id}")  # pending now: nothing to replay
    assert code == 1 and "pending" in again["error"]
    assert rg("webhook", "replay", "--abandoned") == (0, {"replayed": 0})
    assert hooks.delivery(d.id).state == "pending"  # type: ignore[union-attr]
    assert rg("webhook", "replay")[0] == 1
    store.close()
