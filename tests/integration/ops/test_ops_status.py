"""``relaygate status``: the summary's numbers over a real store, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from relaygate.clock import FakeClock
from relaygate.commands.status import render
from relaygate.ops.status import collect
from relaygate.store.ids import new_message_id
from relaygate.store.models import AttemptResult, NewMessage, NewRecipient, Outcome
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.process import RelaygateProcess


def admit(store: Store, account_id: int, *rcpts: str) -> str:
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account_id,
            channel="http",
            from_addr="a@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@relay.test>",
            tags=(),
            body=b"Subject: s\r\n\r\nhello\r\n",
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=False,
        ),
        limits=False,
    )
    return mid


async def test_status_counts_queue_windows_webhooks_and_domains(
    store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    acct = sender["account"].id
    # Two days ago: 3 accepted and delivered (outside the 24 h window).
    old = admit(store, acct, "a@old.test", "b@old.test", "c@old.test")
    got = store.queue.claim_sync("w", limit=10, lease_seconds=60)
    store.queue.record_sync(
        "w", [Outcome(recipient_id=c.id, state="delivered", response="250 ok") for c in got]
    )
    clock.advance(2 * 86400 - 7200)  # now 2 h before "now"
    # Two hours ago: one message to big.test x4, one to small.test; 2 delivered, 1 bounced.
    two_hours = admit(store, acct, "1@big.test", "2@big.test", "3@big.test", "4@big.test")
    admit(store, acct, "x@small.test")
    # Webhooks registered now receive the outcomes below: one endpoint fails, one works.
    hooks = store.webhooks
    bad = hooks.create(account_id=acct, url="https://hooks.example/bad", events=[], secret="s1")
    good = hooks.create(account_id=acct, url="https://hooks.example/ok", events=[], secret="s2")
    got = store.queue.claim_sync("w", limit=3, lease_seconds=600)
    assert [c.address for c in got] == ["1@big.test", "2@big.test", "3@big.test"]
    clock.advance(7000)  # now 200 s before "now": inside the 5 m window
    store.queue.record_sync(
        "w",
        [
            Outcome(recipient_id=got[0].id, state="delivered", response="250 ok"),
            Outcome(recipient_id=got[1].id, state="delivered", response="250 ok"),
            Outcome(
                recipient_id=got[2].id,
                state="bounced",
                response="550 5.1.1 unknown",
                data={"bounce_type": "hard", "reason": "invalid"},
            ),
        ],
    )
    deferred = store.queue.claim_sync("w", limit=1, lease_seconds=600)
    store.queue.record_sync(
        "w",
        [
            Outcome(
                recipient_id=deferred[0].id,
                state="deferred",
                response="451 later",
                next_attempt_at=clock.now() + 600,
            )
        ],
    )
    # A pending and a failed domain.
    store.identities.add(acct, "pending.example")
    failing = store.identities.add(acct, "failing.example")
    store.identities.set_status(failing.id, "failed")
    admit(store, acct, "y@small.test")
    hooks.fan_out_sync(now=clock.now())
    claimed = await hooks.claim("d", now=clock.now(), limit=10, per_endpoint=5, lease_seconds=60)
    assert {c.webhook_id for c in claimed} == {bad.id, good.id}
    for c in claimed:
        ok = c.webhook_id == good.id
        await hooks.record(
            "d",
            AttemptResult(
                delivery_id=c.id,
                ok=ok,
                status=200 if ok else 500,
                outcome="ok" if ok else "http_status",
                error="" if ok else "server error",
                duration_ms=5,
                next_attempt_at=None,  # the failing one is abandoned
            ),
            now=clock.now(),
        )
    clock.advance(200)
    now = clock.now()

    data = collect(store, now=now)

    assert {k: v for k, v in data["queue"]["by_state"].items() if v} == {
        "delivered": 5,
        "bounced": 1,
        "queued": 2,
        "deferred": 1,
    }
    assert data["queue"]["pending"] == 3
    by_domain = {d["domain"]: d for d in data["queue"]["by_domain"]}
    assert list(by_domain) == ["small.test", "big.test"]  # 2 pending before 1
    assert by_domain["small.test"]["by_state"] == {"queued": 2}
    assert by_domain["big.test"]["by_state"] == {"deferred": 1}
    assert by_domain["big.test"]["oldest_age_seconds"] == 7200
    assert data["oldest_pending"]["message_id"] == two_hours
    assert data["oldest_pending"]["age_seconds"] == 7200
    assert data["outcomes"]["24h"] == {
        "accepted": 6,
        "delivered": 2,
        "deferred": 1,
        "bounced": 1,
        "expired": 0,
        "suppressed": 0,
        "complained": 0,
    }
    assert data["outcomes"]["5m"]["delivered"] == 2 and data["outcomes"]["5m"]["accepted"] == 1
    assert data["outcomes"]["1h"]["accepted"] == 1
    assert data["rates_per_second"]["delivered"] == round(2 / 300, 2)
    [hook] = data["failing_webhooks"]
    assert hook["id"] == bad.id and hook["failed_attempts"] == 1 and hook["abandoned"] == 1
    assert "500" in hook["last_error"] and "server error" in hook["last_error"]
    assert [(d["domain"], d["status"]) for d in data["unverified_domains"]] == [
        ("failing.example", "failed"),
        ("pending.example", "pending"),
    ]
    text = render({**data, "roles": []})
    assert "small.test" in text and bad.id in text and "failing.example" in text
    assert len(text.splitlines()) < 40  # one screen
    assert old not in text


def test_first_event_since_finds_the_window_start(store: Store, clock: FakeClock) -> None:
    acct = store.accounts.create("a").id
    times = []
    for _ in range(37):
        admit(store, acct, "r@x.test")
        times.append(clock.now())
        clock.advance(10)
    ids = [e.id for e in store.messages.events_after(0)]
    assert store.status.first_event_since(times[0] - 1) == ids[0]
    assert store.status.first_event_since(times[20]) == ids[20]
    assert store.status.first_event_since(times[20] - 5) == ids[20]
    assert store.status.first_event_since(times[-1] + 1) == ids[-1] + 1
    assert store.status.outcome_counts(since=times[30])["accepted"] == 7


def test_status_cli_json_and_text(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    rg.cli("identity", "add", "--account", "1", "pending.example")
    data = rg.cli("status")
    assert data["queue"]["pending"] == 0 and data["oldest_pending"] is None
    assert {r["role"]: r["state"] for r in data["roles"]} == dict.fromkeys(
        ("http", "smtp", "relay", "webhooks"), "stopped"
    )
    assert [d["domain"] for d in data["unverified_domains"]] == ["pending.example"]
    # --json after the subcommand works too; the human form fits a screen.
    proc = subprocess.run(
        [sys.executable, "-m", "relaygate", "--config", str(rg.config), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["queue"]["pending"] == 0
    proc = subprocess.run(
        [sys.executable, "-m", "relaygate", "--config", str(rg.config), "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "none running" in proc.stdout and "pending.example" in proc.stdout
