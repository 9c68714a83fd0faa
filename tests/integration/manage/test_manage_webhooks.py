"""Webhooks over the management API: register (secret once), read, change, rotate, remove, the
attempt log (time, HTTP status, error, response, next try) and replays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import make_settings  # type: ignore[import-not-found]

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.http import HttpApi
from relaygate.settings import Settings
from relaygate.store.models import AttemptResult, Outcome
from relaygate.store.sqlite import SqliteStore as Store

from .conftest import Tenant, admit, detail

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def wsettings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, webhooks={"allow_private": True})


@pytest.fixture
async def wclient(
    store: Store, wsettings: Settings, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    api = HttpApi(
        store=store,
        admission=Admission(store=store, settings=wsettings, clock=clock),
        max_request_bytes=1 << 20,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app()), base_url="http://relay.test"
    ) as c:
        yield c


async def test_register_read_change_rotate_remove(
    wclient: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    r = await wclient.post(
        "/v1/webhooks", headers=admin.headers, json={"url": URL, "events": ["delivery", "bounce"]}
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert len(made["secret"]) >= 32 and made["events"] == ["delivery", "bounce"]
    assert store.webhooks.reveal_secret(made["id"]) == made["secret"]
    listed = (await wclient.get("/v1/webhooks", headers=admin.headers)).json()["data"]
    assert made["id"] in [w["id"] for w in listed] and made["secret"] not in str(listed)
    r = await wclient.get(f"/v1/webhooks/{made['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["deliveries"]["pending"] == 0
    assert "secret" not in r.json()
    r = await wclient.patch(
        f"/v1/webhooks/{made['id']}", headers=admin.headers, json={"events": []}
    )
    assert r.status_code == 200 and len(r.json()["events"]) == 6  # empty: every type
    r = await wclient.post(f"/v1/webhooks/{made['id']}/rotate-secret", headers=admin.headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"] != made["secret"] and rotated["previous_secret_expires_at"]
    assert store.webhooks.live_secrets(made["id"]) == (rotated["secret"], made["secret"])
    r = await wclient.delete(f"/v1/webhooks/{made['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json() == {"id": made["id"], "deleted": True}
    r = await wclient.get(f"/v1/webhooks/{made['id']}", headers=admin.headers)
    assert r.status_code == 404
    actions = [e.action for e in store.audit.list(admin.account_id)]
    assert actions == [
        "webhook.delete",
        "webhook.rotate_secret",
        "webhook.update",
        "webhook.create",
    ]
    assert made["secret"] not in str(store.audit.list(admin.account_id))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://x.test/"}, "url"),
        ({"url": URL, "events": ["sent"]}, "events"),
        ({"url": URL, "events": "delivery"}, "events"),
        ({"url": URL, "secret": "mine"}, "secret"),
    ],
)
async def test_bad_webhooks_name_the_field(
    wclient: httpx.AsyncClient, store: Store, admin: Tenant, body: Any, field: str
) -> None:
    before = store.webhooks.all(account_id=admin.account_id)
    r = await wclient.post("/v1/webhooks", headers=admin.headers, json=body)
    assert r.status_code == 400 and field in detail(r), r.text
    assert store.webhooks.all(account_id=admin.account_id) == before


async def _attempts(store: Store, clock: FakeClock, admin: Tenant) -> str:
    """A webhook with two deliveries: one succeeded, one failed twice then abandoned."""
    hook = store.webhooks.create(account_id=admin.account_id, url=URL, events=[], secret="x" * 32)
    for rcpt in ("a@dest.test", "b@dest.test"):  # two delivery events after the webhook exists
        admit(store, admin.account_id, rcpt)
    leased = store.queue.claim_sync("relay", limit=100, lease_seconds=60)
    store.queue.record_sync(
        "relay",
        [
            Outcome(recipient_id=c.id, state="delivered", response="250 ok")
            for c in leased
            if c.address in ("a@dest.test", "b@dest.test")
        ],
    )
    store.webhooks.fan_out_sync()
    claimed = await store.webhooks.claim("w", limit=10, per_endpoint=10, lease_seconds=60)
    ours = sorted((d for d in claimed if d.webhook_id == hook.id), key=lambda d: d.id)
    assert len(ours) == 2
    ok, bad = ours
    store.webhooks.record_sync(
        "w",
        AttemptResult(
            delivery_id=ok.id,
            ok=True,
            status=200,
            outcome="ok",
            error="",
            duration_ms=5,
            next_attempt_at=None,
            response="thanks " + "x" * 600,
        ),
    )
    store.webhooks.record_sync(
        "w",
        AttemptResult(
            delivery_id=bad.id,
            ok=False,
            status=500,
            outcome="http_error",
            error="HTTP 500",
            duration_ms=7,
            next_attempt_at=clock.now() + 30,
            response="boom",
        ),
    )
    clock.advance(31)
    await store.webhooks.claim("w", limit=10, per_endpoint=10, lease_seconds=60)
    store.webhooks.record_sync(
        "w",
        AttemptResult(
            delivery_id=bad.id,
            ok=False,
            status=None,
            outcome="timeout",
            error="timed out",
            duration_ms=10_000,
            next_attempt_at=None,
        ),
    )
    return hook.id


async def test_the_attempt_log_and_replays(
    wclient: httpx.AsyncClient, store: Store, admin: Tenant, clock: FakeClock
) -> None:
    hook_id = await _attempts(store, clock, admin)
    r = await wclient.get(f"/v1/webhooks/{hook_id}/attempts", headers=admin.headers)
    assert r.status_code == 200, r.text
    log = r.json()["data"]
    assert [(a["status"], a["error"]) for a in log] == [
        (None, "timed out"),
        (500, "HTTP 500"),
        (200, ""),
    ]
    assert log[1]["response"] == "boom" and log[1]["next_attempt_at"].endswith("Z")
    assert log[0]["next_attempt_at"] is None  # abandoned: no next try
    assert log[2]["response"].startswith("thanks") and len(log[2]["response"].encode()) == 512
    assert all(a["at"].endswith("Z") for a in log)
    page = (
        await wclient.get(f"/v1/webhooks/{hook_id}/attempts?limit=2", headers=admin.headers)
    ).json()
    rest = (
        await wclient.get(
            f"/v1/webhooks/{hook_id}/attempts?limit=2&cursor={page['next_cursor']}",
            headers=admin.headers,
        )
    ).json()
    assert [a["id"] for a in page["data"] + rest["data"]] == [a["id"] for a in log]
    # the chosen attempt's delivery (succeeded) is due again
    r = await wclient.post(
        f"/v1/webhooks/{hook_id}/replay",
        headers=admin.headers,
        json={"attempt_ids": [log[2]["id"]]},
    )
    assert r.status_code == 200 and r.json()["replayed"] == 1, r.text
    assert store.webhooks.delivery(int(r.json()["deliveries"][0][4:])).state == "pending"  # type: ignore[union-attr]
    # a delivery that is not finished is not replayed; nothing changes
    r = await wclient.post(
        f"/v1/webhooks/{hook_id}/replay",
        headers=admin.headers,
        json={"attempt_ids": [log[2]["id"]]},
    )
    assert r.status_code == 409 and "pending" in detail(r)
    r = await wclient.post(
        f"/v1/webhooks/{hook_id}/replay", headers=admin.headers, json={"status": "abandoned"}
    )
    assert r.json()["replayed"] == 1
    assert store.webhooks.counts(hook_id)["abandoned"] == 0
    for body, field in (
        ({}, "attempt_ids"),
        ({"attempt_ids": ["x"]}, "attempt_ids"),
        ({"status": "failed"}, "status"),
        ({"attempt_ids": [1], "status": "abandoned"}, "attempt_ids"),
    ):
        r = await wclient.post(f"/v1/webhooks/{hook_id}/replay", headers=admin.headers, json=body)
        assert r.status_code == 400 and field in detail(r), body
    r = await wclient.post(
        f"/v1/webhooks/{hook_id}/replay", headers=admin.headers, json={"attempt_ids": [999999]}
    )
    assert r.status_code == 404
