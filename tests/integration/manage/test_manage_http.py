"""The management routes one by one on a real store: what each answers and what it changes."""

from __future__ import annotations

import httpx
import pytest

from relaygate.clock import FakeClock
from relaygate.store.sqlite import SqliteStore as Store

from .conftest import Tenant, admit, detail, tenant


async def test_account_shows_plan_limits_and_todays_use(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    admit_limited = tenant(store, "counted", "account:admin")
    r = await client.get("/v1/account", headers=admin.headers)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["id"] == admin.account_id and data["name"] == "acme" and data["plan"] == "paid"
    assert (data["daily_quota"], data["rate_limit"]) == (10_000, 1000)
    assert data["created_at"].endswith("Z")
    assert data["today"] == {"used": 0, "remaining": 10_000}  # admitted with limits=False
    assert admit_limited.account_id != admin.account_id


async def test_keys_create_list_revoke_over_http(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    r = await client.post(
        "/v1/keys", headers=admin.headers, json={"name": "ci", "scopes": ["email:send"]}
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith("sk_live_") and made["scopes"] == ["email:send"]
    assert made["created_at"].endswith("Z") and made["revoked"] is False
    listed = (await client.get("/v1/keys", headers=admin.headers)).json()["data"]
    assert made["id"] in [k["id"] for k in listed] and made["key"] not in str(listed)
    r = await client.delete(f"/v1/keys/{made['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["revoked"] is True
    r = await client.get("/v1/keys", headers={"X-API-Key": made["key"]})
    assert r.status_code == 401
    audit = (await client.get("/v1/audit", headers=admin.headers)).json()["data"]
    assert [(e["action"], e["target"]) for e in audit] == [
        ("key.revoke", made["id"]),
        ("key.create", made["id"]),
    ]
    assert {e["actor"] for e in audit} == {f"key:{admin.key_id}"}
    assert {e["address"] for e in audit} == {"203.0.113.9"}
    assert made["key"] not in str(audit)


async def test_a_key_creates_keys_only_with_scopes_it_holds(
    client: httpx.AsyncClient, store: Store
) -> None:
    t = tenant(store, "automation", "account:admin", "email:send")
    r = await client.post("/v1/keys", headers=t.headers, json={"scopes": ["email:read"]})
    assert r.status_code == 403 and "email:read" in detail(r)
    r = await client.post(
        "/v1/keys", headers=t.headers, json={"scopes": ["account:admin", "email:send"]}
    )
    assert r.status_code == 201 and r.json()["scopes"] == ["account:admin", "email:send"]
    r = await client.post("/v1/keys", headers=t.headers, json={})
    assert r.status_code == 201 and r.json()["scopes"] == ["email:send"]  # the default


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": "email:send"}, "scopes"),
        ({"scopes": ["email:all"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"name": 5}, "name"),
        ({"name": "x" * 300}, "name"),
        ({"nmae": "typo"}, "nmae"),
        ([1, 2], "body"),
    ],
)
async def test_bad_key_requests_name_the_field(
    client: httpx.AsyncClient, store: Store, admin: Tenant, body: object, field: str
) -> None:
    before = store.keys.all(admin.account_id)
    r = await client.post("/v1/keys", headers=admin.headers, json=body)
    assert r.status_code == 400 and field in detail(r), r.text
    assert store.keys.all(admin.account_id) == before


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"null"])
async def test_unreadable_bodies_are_400(
    client: httpx.AsyncClient, admin: Tenant, raw: bytes
) -> None:
    r = await client.post(
        "/v1/keys", headers={**admin.headers, "Content-Type": "application/json"}, content=raw
    )
    assert r.status_code == 400 and detail(r)


async def test_management_calls_count_against_the_rate_limit(
    client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    t = tenant(store, "slow", "account:admin", rate_limit=2)
    assert (await client.get("/v1/keys", headers=t.headers)).status_code == 200
    assert (await client.get("/v1/account", headers=t.headers)).status_code == 200
    r = await client.get("/v1/keys", headers=t.headers)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and "rate limit" in detail(r)
    clock.advance(1)
    assert (await client.get("/v1/keys", headers=t.headers)).status_code == 200


async def test_suppressions_add_import_remove(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    r = await client.post(
        "/v1/suppressions",
        headers=admin.headers,
        json={"address": "Someone@Bücher.Example", "reason": "asked"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"address": "someone@xn--bcher-kva.example", "reason": "asked"}
    r = await client.post(
        "/v1/suppressions/import",
        headers={**admin.headers, "Content-Type": "text/csv"},
        content=b"address,reason\na@dest.test,left\nnot an address,x\nb@dest.test\n",
    )
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 2 and len(r.json()["problems"]) == 1
    assert "line 3" in r.json()["problems"][0]
    r = await client.post(
        "/v1/suppressions/import", headers=admin.headers, json={"csv": "c@dest.test,x"}
    )
    assert r.json()["added"] == 1
    listed = {s.address: s.reason for s in store.suppressions.all(admin.account_id)}
    assert listed == {
        "someone@xn--bcher-kva.example": "asked",
        "a@dest.test": "left",
        "b@dest.test": "imported",
        "c@dest.test": "x",
    }
    sender = tenant(store, "sender", "email:send")
    store.suppressions.add(sender.account_id, "z@dest.test", reason="r", source="operator")
    r = await client.delete("/v1/suppressions/z@dest.test", headers=sender.headers)
    assert r.status_code == 200 and r.json() == {"address": "z@dest.test", "deleted": True}
    assert store.audit.list(sender.account_id)[0].action == "suppression.remove"
    actions = [e.action for e in store.audit.list(admin.account_id)]
    assert actions == ["suppression.import", "suppression.import", "suppression.add"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"address": "nope"}, "address"),
        ({}, "address"),
        ({"address": "a@b.test", "reason": 1}, "reason"),
    ],
)
async def test_bad_suppressions_name_the_field(
    client: httpx.AsyncClient, store: Store, admin: Tenant, body: object, field: str
) -> None:
    r = await client.post("/v1/suppressions", headers=admin.headers, json=body)
    assert r.status_code == 400 and field in detail(r)
    assert store.suppressions.all(admin.account_id) == []


async def test_import_refuses_what_is_not_utf8_csv(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    for raw in (b"\xff\xfe\x00a", b"", b"x" * 200_000):
        r = await client.post(
            "/v1/suppressions/import",
            headers={**admin.headers, "Content-Type": "text/csv"},
            content=raw,
        )
        assert r.status_code == 400 and "csv" in detail(r), raw[:10]
    assert store.suppressions.all(admin.account_id) == []


async def test_cancel_stops_what_is_not_delivered(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    r = await client.post(f"/v1/messages/{admin.message_id}/cancel", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["cancelled"] == 2
    assert {x["state"] for x in r.json()["recipients"]} == {"cancelled"}
    m = store.messages.get(admin.message_id)
    assert m is not None and {x["state"] for x in m["recipients"]} == {"cancelled"}
    again = await client.post(f"/v1/messages/{admin.message_id}/cancel", headers=admin.headers)
    assert again.json()["cancelled"] == 0
    (entry, *_) = store.audit.list(admin.account_id)
    assert (entry.action, entry.target) == ("message.cancel", admin.message_id)


async def test_content_shows_headers_and_parts(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    r = await client.get(f"/v1/messages/{admin.message_id}/content", headers=admin.headers)
    assert r.status_code == 200, r.text
    data = r.json()
    assert ["Subject", "hello"] in data["headers"] and data["size"] > 0
    assert [(p["type"], p["text"].strip()) for p in data["parts"]] == [
        ("text/plain", "hi there"),
        ("text/html", "<p>hi there</p>"),
    ]
    r = await client.get("/v1/messages/msg_nope/content", headers=admin.headers)
    assert r.status_code == 404


async def test_audit_pages_over_http(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    for n in range(3):
        await client.post("/v1/keys", headers=admin.headers, json={"name": f"k{n}"})
    page = (await client.get("/v1/audit?limit=2", headers=admin.headers)).json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = (
        await client.get(f"/v1/audit?limit=2&cursor={page['next_cursor']}", headers=admin.headers)
    ).json()
    assert [e["detail"]["name"] for e in page["data"] + rest["data"]] == ["k2", "k1", "k0"]
    assert rest["next_cursor"] is None
    for query in ("limit=0", "limit=x", "cursor=abc"):
        r = await client.get(f"/v1/audit?{query}", headers=admin.headers)
        assert r.status_code == 400 and query.split("=")[0] in detail(r)


async def test_a_message_admitted_later_can_be_cancelled(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    mid = admit(store, admin.account_id, "x@dest.test")
    r = await client.post(f"/v1/messages/{mid}/cancel", headers=admin.headers)
    assert r.json()["cancelled"] == 1


async def test_usage_lists_every_day_oldest_first(
    client: httpx.AsyncClient, store: Store, admin: Tenant, clock: FakeClock
) -> None:
    clock.advance(86400)
    admit(store, admin.account_id, "x@dest.test", "y@dest.test")
    r = await client.get("/v1/usage?days=3", headers=admin.headers)
    assert r.status_code == 200, r.text
    days = r.json()["data"]
    assert [d["day"] for d in days] == sorted(d["day"] for d in days) and len(days) == 3
    assert [d["accepted"] for d in days] == [0, 2, 2]  # the fixture's message, then today's
    assert set(days[0]) == {
        "day",
        "accepted",
        "delivered",
        "deferred",
        "bounced",
        "complained",
        "suppressed",
        "opened",
        "clicked",
    }
    assert len((await client.get("/v1/usage", headers=admin.headers)).json()["data"]) == 30
    for bad in ("0", "91", "x"):
        r = await client.get(f"/v1/usage?days={bad}", headers=admin.headers)
        assert r.status_code == 400 and "days" in detail(r)
